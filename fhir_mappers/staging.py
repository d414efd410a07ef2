"""mCODE staging shapes (CLINICAL.md section 1 "mCODE shapes"), read the same everywhere.

A stage group or M category value says metastatic (stage IV, M1) or not (any other stated
value); `Condition.stage.summary` is read like a stage group. A data-absent-reason value other
than "not-applicable" (the IG's pM for a non-metastatic cancer) states nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_mappers.resources import as_list, concept_text
from fhir_mappers.terminology import Terminology

_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_STATED_ABSENT = frozenset({"not-applicable"})


@dataclass(frozen=True)
class StageCodes:
    """The values that mean M1 and stage IV, built once per terminology."""

    m1_snomed: frozenset[str]
    m1_text: frozenset[str]
    stage_iv_snomed: frozenset[str]
    stage_iv_text: frozenset[str]

    @classmethod
    def of(cls, term: Terminology) -> StageCodes:
        mets = term.observations["metastasis_values"]
        return cls(
            m1_snomed=frozenset(mets["m1_snomed"]),
            m1_text=frozenset(mets["m1_text"]),
            stage_iv_snomed=frozenset(mets["stage_iv_snomed"]),
            stage_iv_text=frozenset(t.lower() for t in mets["stage_iv_text"]),
        )


def _states_nothing(value: Any) -> bool:
    if not isinstance(value, dict):
        return True
    codings = [c for c in as_list(value.get("coding")) if isinstance(c, dict)]
    absent = [c for c in codings if c.get("system") == _ABSENT]
    return (
        bool(codings)
        and len(absent) == len(codings)
        and not any(c.get("code") in _STATED_ABSENT for c in absent)
    )


def says_metastatic(value: Any, term: Terminology, *, category: bool) -> bool | None:
    """True when an M category (`category`) or stage group value says M1 / stage IV, False
    when it states another value, None when it states none."""
    if _states_nothing(value):
        return None
    k = term.derived("staging.codes", StageCodes.of)
    codes, texts = (k.m1_snomed, k.m1_text) if category else (k.stage_iv_snomed, k.stage_iv_text)
    sets = term.code_sets(value)
    text = concept_text(value).lower().strip()
    if sets.codes & codes or text in texts or {c.lower() for c in sets.codes} & texts:
        return True
    return False if sets.codes or text else None


def stage_summaries(cond: dict[str, Any], term: Terminology) -> list[tuple[bool, str]]:
    """(metastatic, text) of each `Condition.stage.summary` that states a stage."""
    out: list[tuple[bool, str]] = []
    for stage in as_list(cond.get("stage")):
        if not isinstance(stage, dict):
            continue
        summary = stage.get("summary")
        found = says_metastatic(summary, term, category=False)
        if found is not None:
            out.append((found, concept_text(summary) or "stage summary"))
    return out
