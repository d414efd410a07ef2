"""The one path from FHIR data to cards, shared by the HTTP hooks and the command line.

Both take the knowledge set to decide with (`knowledge`): the service passes the one attached
to its app; when not given it is the cached load of the installed files (the command line,
the tests), so every caller from before the knowledge set keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from cards import render_assessment, render_order_findings
from engine import Assessment, assess, check_orders
from engine.model import DraftOrder, OrderFinding, PatientRecord
from fhir_mappers import KnowledgeSet, build_record, draft_orders, load_knowledge_set


@dataclass(frozen=True)
class PatientViewResult:
    assessment: Assessment
    cards: list[dict[str, Any]]


@dataclass(frozen=True)
class OrderResult:
    assessment: Assessment
    orders: list[DraftOrder]
    findings: list[OrderFinding]
    cards: list[dict[str, Any]]


def patient_view(
    data: Any,
    *,
    instance: str,
    patient_id: str | None = None,
    jurisdiction: str = "FDA",
    as_of: date | None = None,
    timeline_url: str | None = None,
    knowledge: KnowledgeSet | None = None,
) -> PatientViewResult:
    ks = knowledge or load_knowledge_set()
    record = _record(data, ks, patient_id, as_of)
    assessment = assess(record, ks.knowledge, jurisdiction)
    cards = render_assessment(
        assessment, instance, timeline_url=timeline_url, what_to_record=ks.what_to_record
    )
    return PatientViewResult(assessment, cards)


def order_check(
    data: Any,
    draft_bundle: Any,
    *,
    instance: str,
    patient_id: str,
    selections: list[str] | None,
    signing: bool,
    jurisdiction: str = "FDA",
    as_of: date | None = None,
    knowledge: KnowledgeSet | None = None,
) -> OrderResult:
    ks = knowledge or load_knowledge_set()
    kb = ks.knowledge
    record = _record(data, ks, patient_id, as_of)
    assessment = assess(record, kb, jurisdiction)
    orders = draft_orders(draft_bundle, selections, knowledge=kb, terminology=ks.terminology)
    checked = [o for o in orders if o.selected]
    if assessment.stale_record:  # only the data-needed card naming the newest data's date
        stale = render_assessment(assessment, instance, what_to_record=ks.what_to_record)
        return OrderResult(assessment, orders, [], stale)
    findings = (
        check_orders(record, checked, kb, jurisdiction=jurisdiction, complete=signing)
        if assessment.in_scope
        else []
    )
    cards = render_order_findings(
        findings, kb.version, patient_id, instance, signing=signing, record=record
    )
    return OrderResult(assessment, orders, findings, cards)


def _record(
    data: Any, ks: KnowledgeSet, patient_id: str | None, as_of: date | None
) -> PatientRecord:
    return build_record(
        data,
        patient_id=patient_id,
        as_of=as_of,
        knowledge=ks.knowledge,
        terminology=ks.terminology,
        line_rules=ks.line_rules,
    )
