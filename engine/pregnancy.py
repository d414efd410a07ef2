"""Pregnancy on record (CLINICAL.md section 1 "pregnancy"), for the pregnancy-her2 rule."""

from __future__ import annotations

from collections.abc import Iterable

from engine.knowledge import Knowledge
from engine.model import ConditionFact, PatientRecord


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
