"""Conditions to facts: breast cancer, HER2/ER/PR diagnoses, metastases, ILD, cardiac disease."""

from __future__ import annotations

from typing import Any

from engine.model import ConditionFact, DataIssue, UncertainFact
from fhir_mappers.resources import coding_codes, concept_text, parse_date, ref_id, validate
from fhir_mappers.staging import stage_summaries
from fhir_mappers.terminology import Terminology
from fhir_mappers.text_match import AFFIRMED

_EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_UNCONFIRMED = frozenset({"unconfirmed", "provisional", "differential"})
_ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
# A cancer Condition whose stage summary states a stage other than IV (record.py reads it as
# non-metastatic staging, like a stage group Observation).
STAGED_NON_METASTATIC = "staged-non-metastatic"


def _onset(cond: dict[str, Any]) -> Any:
    period = cond.get("onsetPeriod")
    return (
        parse_date(cond.get("onsetDateTime"))
        or parse_date(period.get("start") if isinstance(period, dict) else None)
        or parse_date(cond.get("recordedDate"))
    )


def _one(
    cond: dict[str, Any],
    term: Terminology,
    issues: list[DataIssue],
    uncertain: list[UncertainFact],
) -> list[ConditionFact]:
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
        return []  # a coded refutation decides over any text
    sid = ref_id(cond)
    for name, text, concept, phrase in match.uncertain:
        issues.append(
            DataIssue(sid, f"{_quote(text)} in text: uncertain, not counted as {name}; confirm")
        )
        uncertain.append(UncertainFact(concept, phrase, _one_line(text), sid, "uncertain"))
    unconfirmed = next((v for v in verification if v in _UNCONFIRMED), "")
    if match.text_assertion != AFFIRMED and match.concepts:
        # Coded, but its own text negates or doubts it ("pneumonitis ruled out"). A coded
        # "confirmed" decides; otherwise a fact that restricts a drug still counts, stated
        # unconfirmed, and any other is not counted. Said in every case.
        name = match.concepts[0]
        if "confirmed" in verification:
            said = "counted, as coded confirmed"
        elif name in term.negation.safety_concepts:
            unconfirmed = unconfirmed or "unconfirmed"
            said = "counted as unconfirmed"
        else:
            said = "not counted"
        issues.append(
            DataIssue(
                sid,
                f"{name} is coded but its text {_quote(concept_text(code))} reads "
                f"{match.text_assertion}: {said}; confirm the verification status",
            )
        )
        if said == "not counted":
            return []
    if not match.concepts:
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
    display = concept_text(code)
    if unconfirmed:  # counted, and said as unconfirmed wherever it changes advice
        uncertain.extend(
            UncertainFact(concept, display, _one_line(display), sid, unconfirmed, counted=True)
            for concept in match.concepts
        )
    facts = [
        ConditionFact(
            concept=concept,
            display=f"{display} (unconfirmed)" if unconfirmed else display,
            onset=onset,
            active=active,
            source_id=ref_id(cond),
            site=match.site if concept in ("metastasis", "brain-metastasis") else None,
            verification=unconfirmed,
        )
        for concept in match.concepts
    ]
    if "breast-cancer" in match.concepts and "stage" in cond and not unconfirmed:
        facts.extend(_stage_facts(cond, term, facts[0]))
    return facts


def _stage_facts(
    cond: dict[str, Any], term: Terminology, cancer: ConditionFact
) -> list[ConditionFact]:
    """`Condition.stage.summary` (mCODE): stage IV is metastatic disease, known since the
    cancer's onset; another stated stage is non-metastatic staging (CLINICAL.md section 1)."""
    summaries = stage_summaries(cond, term)
    stage_iv = [text for metastatic, text in summaries if metastatic]
    if stage_iv:
        concept, text = "metastasis", stage_iv[0]
    elif summaries:
        concept, text = STAGED_NON_METASTATIC, summaries[0][1]
    else:
        return []
    display = f"{cancer.display}: stage summary {text}"
    return [ConditionFact(concept, display, cancer.onset, cancer.active, cancer.source_id)]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quote(text: str, limit: int = 80) -> str:
    one = _one_line(text)
    return '"' + (one if len(one) <= limit else one[: limit - 3] + "...") + '"'


def condition_facts(
    conditions: list[dict[str, Any]],
    term: Terminology,
    issues: list[DataIssue],
    uncertain: list[UncertainFact] | None = None,
) -> list[ConditionFact]:
    """Map each recognised Condition to one fact per concept it carries; never raise. Mentions
    that are uncertain, and coded facts recorded unconfirmed, go to `uncertain` too."""
    facts: list[ConditionFact] = []
    doubted = uncertain if uncertain is not None else []
    for cond in conditions:
        try:
            facts.extend(_one(cond, term, issues, doubted))
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            issues.append(DataIssue(ref_id(cond), f"condition could not be read: {exc}"))
    return facts
