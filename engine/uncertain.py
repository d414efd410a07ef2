"""Uncertain facts said as cards (CLINICAL.md: "never hides uncertainty"; section 1, negated
and uncertain text; outside review 2, N3).

An uncertain mention ("? pneumonitis") is not a fact and a coded Condition recorded
unconfirmed is counted only where it restricts a drug; when such a fact would rule out a drug
or change the regimen (warnings.yaml `uncertain_facts`), the patient-view says so and asks for
confirmation, and an order of a drug it concerns gets a card too (a warning there also holds
that drug's one-click orders: the one-click options pass the same order checks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from engine.history import current_exposures
from engine.knowledge import Knowledge
from engine.knowledge_uncertain import UncertainRule
from engine.model import Alert, DraftOrder, OrderFinding, PatientRecord, UncertainFact
from engine.order_context import OrderCtx
from engine.warning_text import make_alert, make_finding

SUMMARY_LIMIT = 139  # CDS Hooks: a summary under 140 characters
_RANK = {"critical": 0, "warning": 1, "info": 2}


def _settled(record: PatientRecord, rule: UncertainRule) -> bool:
    """An established (not doubted) fact of the same concept makes the doubt moot."""
    return any(
        c.concept == rule.concept and not c.verification and (rule.history_counts or c.active)
        for c in (*record.conditions, *record.metastases)
    )


@dataclass(frozen=True)
class Doubt:
    """One open doubt: the first mention (its words go on the card), its rule, and every
    resource that names the same concept the same way (one card per problem)."""

    fact: UncertainFact
    rule: UncertainRule
    ids: tuple[str, ...]


def open_doubts(record: PatientRecord, kb: Knowledge) -> list[Doubt]:
    """The uncertain facts that would change advice and that nothing established settles,
    once per concept (and counted or not), the most severe for an order first."""
    found: dict[tuple[str, bool], list[UncertainFact]] = {}
    for fact in record.uncertain:
        rule = kb.uncertain_facts.get(fact.concept)
        if rule is not None and not _settled(record, rule):
            found.setdefault((fact.concept, fact.counted), []).append(fact)
    doubts = [
        Doubt(
            facts[0], kb.uncertain_facts[concept], tuple(dict.fromkeys(f.source_id for f in facts))
        )
        for (concept, _), facts in found.items()
    ]
    return sorted(doubts, key=lambda d: _RANK.get(d.rule.order_severity, 3))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _fields(doubt: Doubt, quote: int) -> dict[str, object]:
    fact, rule = doubt.fact, doubt.rule
    finding = fact.phrase or rule.name
    return {
        "finding": finding,
        "Finding": finding[:1].upper() + finding[1:],
        "text": _clip(fact.text, quote).replace("'", "’"),
        "source_id": ", ".join(doubt.ids),
        "name": rule.name,
        "status": fact.status,
        "confirm": rule.confirm,
        "consequence": rule.consequence,
        "if_confirmed": rule.if_confirmed,
        "meanwhile": rule.meanwhile,
    }


def _running(
    record: PatientRecord, kb: Knowledge, rule: UncertainRule
) -> tuple[dict[str, object], list[str]]:
    """The concerned drug running now, as the `active` card names it, and its resources
    (nothing when none is running, or the concept has no `while_on` advice)."""
    on = [e for e in current_exposures(record) if e.drug in rule.drugs]
    if not on or not rule.while_on:
        return {}, []
    first = min(on, key=lambda e: e.start)
    info = kb.drug(first.drug)
    name = (info.short or info.name) if info else first.drug
    fields: dict[str, object] = {
        "drug": name,
        "since": first.start.isoformat(),
        "while_on": rule.while_on,
    }
    return fields, [s for e in on for s in e.source_ids]


def _alert(record: PatientRecord, kb: Knowledge, doubt: Doubt) -> Alert:
    """The resource is named in the summary when it fits (under 140 characters), else in the
    detail and "Based on" only; a long text is quoted shorter."""
    fact, rule = doubt.fact, doubt.rule
    running, on_ids = ({}, []) if fact.counted else _running(record, kb, rule)
    variant = "counted" if fact.counted else ("active" if running else "text")
    ids = [*doubt.ids, *on_ids]
    named = f", {fact.source_id}"
    tries = [
        (quote, recorded, source)
        for quote in (40, 20)
        for recorded, source in ((" recorded", named), ("", named), (" recorded", ""), ("", ""))
    ]
    alerts = (
        make_alert(
            kb,
            "uncertain-fact",
            variant,
            ids,
            None,  # severity: the variant's
            (),  # withhold: nothing
            recorded=recorded,
            source=source,
            **_fields(doubt, quote),
            **running,
        )
        for quote, recorded, source in tries
    )
    alert = _first_fitting(alerts)
    return dataclasses.replace(alert, evidence=rule.evidence)


def _first_fitting(alerts: Iterator[Alert]) -> Alert:
    """The first alert whose summary fits, else the last (then shortened by the card)."""
    last: Alert | None = None
    for last in alerts:
        if len(last.summary) <= SUMMARY_LIMIT:
            return last
    assert last is not None
    return last


def uncertain_alerts(record: PatientRecord, kb: Knowledge) -> list[Alert]:
    """One warning per uncertain fact that would change advice (patient-view)."""
    return [_alert(record, kb, doubt) for doubt in open_doubts(record, kb)]


def uncertain_order_check(order: DraftOrder, ctx: OrderCtx) -> OrderFinding | None:
    """An order of a drug an open doubt concerns ("T-DXd ordered with possible pneumonitis
    recorded"). A doubted fact that is counted already has its own order check (tdxd-ild)."""
    if order.drug is None:
        return None
    for doubt in open_doubts(ctx.record, ctx.kb):
        rule = doubt.rule
        if doubt.fact.counted or order.drug not in rule.drugs:
            continue
        info = ctx.kb.drug(order.drug)
        finding = make_finding(
            ctx.kb,
            "uncertain-fact",
            "ordered",
            order.resource_id,
            doubt.ids,
            None,  # no replacement: the fix is to confirm or exclude the finding first
            rule.order_severity,
            drug=(info.short or info.name) if info else order.drug,
            source="",
            **_fields(doubt, 30),
        )
        return dataclasses.replace(finding, evidence=rule.evidence)
    return None
