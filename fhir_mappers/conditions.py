"""Conditions to facts: breast cancer, HER2/ER/PR diagnoses, metastases, ILD, cardiac disease."""

from __future__ import annotations

from typing import Any

from engine.model import ConditionFact, DataIssue
from fhir_mappers.resources import coding_codes, concept_text, parse_date, ref_id, validate
from fhir_mappers.terminology import Terminology

_EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})


def _onset(cond: dict[str, Any]) -> Any:
    period = cond.get("onsetPeriod")
    return (
        parse_date(cond.get("onsetDateTime"))
        or parse_date(period.get("start") if isinstance(period, dict) else None)
        or parse_date(cond.get("recordedDate"))
    )


def _one(cond: dict[str, Any], term: Terminology, issues: list[DataIssue]) -> list[ConditionFact]:
    code = cond.get("code")
    if isinstance(code, str) and code.strip():
        # A bare string where a CodeableConcept belongs: read it as text, and say so.
        issues.append(DataIssue(ref_id(cond), "condition code is a plain string, read as text"))
        code = {"text": code}
    match = term.match_condition(code)
    if match is None:
        return []
    verification = coding_codes(cond.get("verificationStatus"))
    if any(v in _EXCLUDED_VERIFICATION for v in verification):
        return []
    # Validation is reported, not enforced: a malformed ILD or heart-failure entry whose code
    # and date can be read is still a safety fact.
    validate(cond, issues)
    clinical = coding_codes(cond.get("clinicalStatus"))
    # No clinicalStatus: active unless an abatement is recorded (a problem-list entry without
    # status is current; one with an abatement date or flag has resolved).
    abated = any(
        cond.get(k) not in (None, False, "")
        for k in (
            "abatementDateTime",
            "abatementPeriod",
            "abatementAge",
            "abatementString",
            "abatementBoolean",
            "abatementRange",
        )
    )
    active = any(c in _ACTIVE_CLINICAL for c in clinical) if clinical else not abated
    onset = _onset(cond)
    if onset is None:
        issues.append(DataIssue(ref_id(cond), "condition has no onset or recorded date"))
    return [
        ConditionFact(
            concept=concept,
            display=concept_text(code),
            onset=onset,
            active=active,
            source_id=ref_id(cond),
            site=match.site if concept in ("metastasis", "brain-metastasis") else None,
        )
        for concept in match.concepts
    ]


def condition_facts(
    conditions: list[dict[str, Any]], term: Terminology, issues: list[DataIssue]
) -> list[ConditionFact]:
    """Map each recognised Condition to one fact per concept it carries; never raise."""
    facts: list[ConditionFact] = []
    for cond in conditions:
        try:
            facts.extend(_one(cond, term, issues))
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            issues.append(DataIssue(ref_id(cond), f"condition could not be read: {exc}"))
    return facts
