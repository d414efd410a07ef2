"""Conditions to facts: breast cancer, HER2 status diagnoses, metastases, ILD, cardiac disease."""

from __future__ import annotations

from typing import Any

from engine.model import ConditionFact, DataIssue
from fhir_mappers.resources import coding_codes, concept_text, parse_date, ref_id, validate
from fhir_mappers.terminology import Terminology

_EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})


def condition_facts(
    conditions: list[dict[str, Any]], term: Terminology, issues: list[DataIssue]
) -> list[ConditionFact]:
    """Map each recognised Condition to one fact per concept it carries."""
    facts: list[ConditionFact] = []
    for cond in conditions:
        match = term.match_condition(cond.get("code"))
        if match is None:
            continue
        verification = coding_codes(cond.get("verificationStatus"))
        if any(v in _EXCLUDED_VERIFICATION for v in verification):
            continue
        validate(cond, issues)
        clinical = coding_codes(cond.get("clinicalStatus"))
        # No clinicalStatus: treat as active (a problem-list entry without status is current).
        active = not clinical or any(c in _ACTIVE_CLINICAL for c in clinical)
        onset = (
            parse_date(cond.get("onsetDateTime"))
            or parse_date((cond.get("onsetPeriod") or {}).get("start"))
            or parse_date(cond.get("recordedDate"))
        )
        if onset is None:
            issues.append(DataIssue(ref_id(cond), "condition has no onset or recorded date"))
        for concept in match.concepts:
            facts.append(
                ConditionFact(
                    concept=concept,
                    display=concept_text(cond.get("code")),
                    onset=onset,
                    active=active,
                    source_id=ref_id(cond),
                    site=match.site if concept in ("metastasis", "brain-metastasis") else None,
                )
            )
    return facts
