"""Observations to facts: receptor results, LVEF series, distant metastasis, progression."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine.model import (
    DataIssue,
    Measurement,
    ProgressionEvent,
    ReceptorResult,
    ReceptorStatus,
    Specimen,
)
from fhir_mappers.resources import (
    as_list,
    coding_codes,
    concept_text,
    parse_date,
    ref_id,
    validate,
)
from fhir_mappers.terminology import LOINC, SNOMED, Terminology

_EXCLUDED_STATUS = frozenset({"entered-in-error", "cancelled", "registered"})


@dataclass
class ObservationFacts:
    her2: list[ReceptorResult] = field(default_factory=list)
    er: list[ReceptorResult] = field(default_factory=list)
    pr: list[ReceptorResult] = field(default_factory=list)
    lvef: list[Measurement] = field(default_factory=list)
    metastatic: list[tuple[date | None, str]] = field(default_factory=list)
    non_metastatic: list[str] = field(default_factory=list)
    progressions: list[ProgressionEvent] = field(default_factory=list)


def _effective(obs: dict[str, Any]) -> date | None:
    period = obs.get("effectivePeriod")
    return (
        parse_date(obs.get("effectiveDateTime"))
        or parse_date(period.get("start") if isinstance(period, dict) else None)
        or parse_date(obs.get("effectiveInstant"))
        or parse_date(obs.get("issued"))
    )


def _answer(value: Any, term: Terminology) -> ReceptorStatus:
    """Read a coded (or string) receptor answer as positive / negative / equivocal / unknown."""
    answers = term.observations["answers"]
    if isinstance(value, dict):
        snomed = set(coding_codes(value, SNOMED))
        loinc = set(coding_codes(value, LOINC))
        for status in ("positive", "equivocal", "negative"):
            spec = answers[status]
            if snomed & set(spec.get("snomed", [])) or loinc & set(spec.get("loinc", [])):
                return ReceptorStatus(status)
        text = concept_text(value)
    elif isinstance(value, str):
        text = value
    else:
        return ReceptorStatus.UNKNOWN
    norm = text.lower().strip()
    for status in ("equivocal", "negative", "positive"):  # "not amplified" before "amplified"
        for phrase in answers[status].get("text", []):
            if norm == phrase or norm.startswith(phrase + " ") or f"({phrase})" in norm:
                return ReceptorStatus(status)
    return ReceptorStatus.UNKNOWN


def _specimen(obs: dict[str, Any]) -> Specimen:
    """Metastatic when the specimen or body site says so; primary when it names the breast."""
    specimen = obs.get("specimen")
    texts = [
        str(specimen.get("display", "")) if isinstance(specimen, dict) else "",
        *(concept_text(b) for b in as_list(obs.get("bodySite"))),
    ]
    joined = " ".join(texts).lower()
    if "metasta" in joined or "liver" in joined or "lymph node" in joined or "brain" in joined:
        return Specimen.METASTATIC
    if "breast" in joined:
        return Specimen.PRIMARY
    return Specimen.UNKNOWN


def observation_facts(
    observations: list[dict[str, Any]], term: Terminology, issues: list[DataIssue]
) -> ObservationFacts:
    """Read every relevant Observation; a malformed one is reported, never raised."""
    out = ObservationFacts()
    for obs in observations:
        try:
            _one(obs, term, issues, out)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            issues.append(DataIssue(ref_id(obs), f"observation could not be read: {exc}"))
    return out


def _lvef_components(
    obs: dict[str, Any], lvef_codes: set[str], term: Terminology
) -> list[dict[str, Any]]:
    """LVEF reported as a component of an echo panel (e.g. 18043-0 inside 34552-0)."""
    return [
        c
        for c in as_list(obs.get("component"))
        if isinstance(c, dict) and term.loinc_codes(c.get("code")) & lvef_codes
    ]


def _one(
    obs: dict[str, Any], term: Terminology, issues: list[DataIssue], out: ObservationFacts
) -> None:
    spec = term.observations["observations"]
    mets = term.observations["metastasis_values"]
    status_values = term.observations["disease_status_values"]
    codes = term.loinc_codes(obs.get("code"))
    if not codes or obs.get("status") in _EXCLUDED_STATUS:
        return
    lvef_codes = set(spec["lvef"])
    receptor = next((r for r in ("her2", "er", "pr") if codes & set(spec[r])), None)
    is_lvef = bool(codes & lvef_codes)
    is_m = bool(codes & set(spec["distant_metastasis"]))
    is_stage = bool(codes & set(spec["stage_group"]))
    is_status = bool(codes & set(spec["disease_status"]))
    components = (
        _lvef_components(obs, lvef_codes, term) if not is_lvef and "component" in obs else []
    )
    if not (receptor or is_lvef or is_m or is_stage or is_status or components):
        return
    validate(obs, issues)
    when = _effective(obs)
    sid = ref_id(obs)
    if receptor:
        method = next(spec[receptor][c] for c in codes if c in spec[receptor])
        value = obs.get("valueCodeableConcept", obs.get("valueString"))
        status = _answer(value, term)
        if status is ReceptorStatus.UNKNOWN:
            issues.append(DataIssue(sid, f"{receptor.upper()} result has no readable value"))
            return
        if when is None:
            issues.append(DataIssue(sid, f"{receptor.upper()} result has no date"))
        getattr(out, receptor).append(
            ReceptorResult(
                status=status,
                date=when,
                method=method,
                source_id=sid,
                display=concept_text(value) if isinstance(value, dict) else str(value),
                specimen=_specimen(obs),
            )
        )
    elif is_lvef or components:
        for holder in [obs] if is_lvef else components:
            q = holder.get("valueQuantity")
            val = q.get("value") if isinstance(q, dict) else None
            if not isinstance(val, (int, float)) or isinstance(val, bool) or when is None:
                issues.append(DataIssue(sid, "LVEF has no numeric value or no date"))
                continue
            unit = str(q.get("unit") or q.get("code") or "%") if isinstance(q, dict) else "%"
            out.lvef.append(Measurement(float(val), unit, when, sid))
    elif is_m or is_stage:
        value = obs.get("valueCodeableConcept")
        codes_v = set(coding_codes(value))
        text = concept_text(value).lower().strip()
        lowered = {c.lower() for c in codes_v}
        m1 = bool(codes_v & set(mets["m1_snomed"])) or text in mets["m1_text"]
        m1 = m1 or bool(lowered & set(mets["m1_text"]))
        iv = bool(codes_v & set(mets["stage_iv_snomed"])) or text in mets["stage_iv_text"]
        iv = iv or bool(lowered & set(mets["stage_iv_text"]))
        if (is_m and m1) or (is_stage and iv):
            if when is None:
                issues.append(DataIssue(sid, "distant metastasis / stage IV has no date"))
            out.metastatic.append((when, sid))
        elif codes_v or text:
            out.non_metastatic.append(sid)
    elif is_status:
        value = obs.get("valueCodeableConcept")
        if set(coding_codes(value, SNOMED)) & set(status_values["progression_snomed"]):
            if when is None:
                issues.append(DataIssue(sid, "progression has no date"))
                return
            out.progressions.append(ProgressionEvent(when, sid, "disease status: worsened"))
