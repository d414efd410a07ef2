"""Pregnancy on record (CLINICAL.md section 1 "pregnancy") and the pregnancy-her2 order check."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from engine.knowledge import Knowledge
from engine.model import ConditionFact, DraftOrder, OrderFinding, PatientRecord
from engine.warning_text import make_finding


def current_pregnancy(record: PatientRecord, kb: Knowledge) -> tuple[ConditionFact, ...]:
    """Active pregnancy facts dated within the window (an undated active one always counts)."""
    days = int(kb.param("scope", "pregnancy_current_days"))
    return tuple(
        c
        for c in record.conditions_of("pregnancy")
        if c.active and (c.onset is None or 0 <= (record.as_of - c.onset).days <= days)
    )


def embryo_fetal_toxic(drugs: Iterable[str | None], kb: Knowledge) -> list[str]:
    """The HER2-directed antibodies and conjugates among `drugs` (parameters agents.pregnancy_her2)."""
    agents = kb.agents("pregnancy_her2")
    return sorted({d for d in drugs if d is not None and d in agents})


def pregnancy_words(facts: Iterable[ConditionFact]) -> str:
    """'Normal pregnancy (since 2026-09-01)' for each fact, for a card's text."""
    return "; ".join(
        dict.fromkeys(
            (c.display or "pregnancy")
            + (f" (since {c.onset.isoformat()})" if c.onset else " (undated)")
            for c in facts
        )
    )


def pregnancy_finding(
    order: DraftOrder, record: PatientRecord, kb: Knowledge
) -> OrderFinding | None:
    """pregnancy-her2: a HER2-directed antibody or conjugate ordered with pregnancy on record."""
    drugs = embryo_fetal_toxic([order.drug, order.text_drug], kb)
    if not drugs:
        return None
    pregnancy = current_pregnancy(record, kb)
    if not pregnancy:
        return None
    return make_finding(
        kb,
        "pregnancy-her2",
        "ordered",
        order.resource_id,
        [c.source_id for c in pregnancy],
        drug=", ".join(drugs),
        pregnancy=pregnancy_words(pregnancy),
    )


def no_antibody_fix_in_pregnancy(
    finding: OrderFinding, record: PatientRecord, kb: Knowledge
) -> OrderFinding:
    """A fix must never order a HER2-directed antibody or conjugate with pregnancy on record."""
    rep = finding.replacement
    if rep is None or not embryo_fetal_toxic([rep.drug], kb) or not current_pregnancy(record, kb):
        return finding
    note = f" No {rep.drug} replacement is offered: pregnancy is on record (embryo-fetal toxicity)."
    return dataclasses.replace(finding, replacement=None, detail=finding.detail + note)
