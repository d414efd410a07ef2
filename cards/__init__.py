"""Engine results to CDS Hooks 2.0 cards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cards.alerts import alert_card, data_needed_card
from cards.common import UuidFactory, unbroken_titles
from cards.next_line import next_line_card
from cards.order_checks import order_card
from engine.model import Assessment, OrderFinding, PatientRecord

_ORDER = {"critical": 0, "warning": 1, "info": 2}


def render_assessment(
    assessment: Assessment,
    instance: str,
    *,
    timeline_url: str | None = None,
    what_to_record: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """patient-view cards: data needed, warnings (most severe first), then the next-line card.

    `timeline_url` (absolute) adds a link to the timeline view on the next-line card (once, not
    on every card). `what_to_record` (fhir_mappers.what_to_record: per missing fact, the codes
    that would supply it) is said on data-needed cards. Out-of-scope patients get no cards.
    """
    if not assessment.in_scope:
        return []
    uuids = UuidFactory(instance)
    version = assessment.knowledge_version
    # A warning about the very fact a data-needed card asks for (her2-status when HER2 is
    # unknown) is said once, on the data-needed card.
    by_rule = {a.rule: a for a in assessment.alerts}
    asked = {n.what for n in assessment.data_needs}
    cards = [
        data_needed_card(n, version, uuids, by_rule.get(n.what), assessment.record, what_to_record)
        for n in assessment.data_needs
    ]
    alerts = sorted(
        (a for a in assessment.alerts if a.rule not in asked),
        key=lambda a: _ORDER.get(a.severity, 3),
    )
    cards += [alert_card(a, version, uuids, record=assessment.record) for a in alerts]
    nl = next_line_card(assessment, uuids, timeline_url)
    if nl is not None:
        cards.append(nl)
    return unbroken_titles(cards)


def render_order_findings(
    findings: list[OrderFinding],
    version: str,
    patient_id: str,
    instance: str,
    *,
    signing: bool = False,
    record: PatientRecord | None = None,
) -> list[dict[str, Any]]:
    """order-select / order-sign cards, one per finding; `record` words their "Based on"."""
    uuids = UuidFactory(instance)
    ordered = sorted(findings, key=lambda f: _ORDER.get(f.severity, 3))
    return unbroken_titles(
        [order_card(f, version, patient_id, uuids, signing=signing, record=record) for f in ordered]
    )


__all__ = ["UuidFactory", "render_assessment", "render_order_findings"]
