"""Medication resources to drug exposures, merged into courses.

MedicationStatement (effective[x]), MedicationRequest (authoredOn, dosage bounds, dispense
validity; one request per cycle is common) and MedicationAdministration (one per dose) all become
point or period exposures, which are then merged per drug into courses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple

from engine.knowledge import Knowledge
from engine.model import DataIssue, Exposure, ProgressionEvent
from fhir_mappers.resources import (
    ResourceSet,
    as_list,
    parse_date,
    ref_id,
    validate,
)
from fhir_mappers.terminology import MedicationMatch, Terminology

_SKIP_STATUS = {
    "MedicationStatement": {"entered-in-error", "not-taken", "intended", "draft"},
    "MedicationRequest": {"entered-in-error", "cancelled", "draft"},
    "MedicationAdministration": {"entered-in-error", "not-done"},
}
_ONGOING_STATUS = {"active", "on-hold", "in-progress", "intended"}
_MED_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")


def _reference(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The Reference to a Medication (R4 medicationReference, R5 medication.reference), as sent:
    read only, never copied."""
    med = resource.get("medication")
    if isinstance(med, dict):
        ref = med.get("reference")
        if isinstance(ref, dict):
            return ref
    ref = resource.get("medicationReference")
    return ref if isinstance(ref, dict) else None


def referenced_medication(resource: dict[str, Any], rs: ResourceSet) -> dict[str, Any] | None:
    """The Medication a resource points to: contained ("#id"), in the bundle, or None."""
    ref = _reference(resource)
    target = ref.get("reference") if ref else None
    if not isinstance(target, str):
        return None
    if target.startswith("#"):
        for c in as_list(resource.get("contained")):
            if isinstance(c, dict) and c.get("id") == target[1:]:
                return c
        return None
    if target.startswith("urn:uuid:"):
        return rs.medications.get(target)
    return rs.medications.get("Medication/" + target.rsplit("Medication/", 1)[-1])


def medication_concept(resource: dict[str, Any], rs: ResourceSet) -> dict[str, Any] | None:
    """The CodeableConcept naming the drug: R4 codeable concept or reference, or R5 shape
    (the resource's own object, read only)."""
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept
    med = resource.get("medication")
    if isinstance(med, dict):
        concept = med.get("concept")
        if isinstance(concept, dict):
            return concept
    found = referenced_medication(resource, rs)
    if found:
        code = found.get("code")
        if isinstance(code, dict):
            return code
    ref = _reference(resource)
    if ref and isinstance(ref.get("display"), str):
        return {"text": ref["display"]}
    return None


def ingredient_concepts(medication: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A Medication's ingredients (R4 itemCodeableConcept, R5 item.concept)."""
    out: list[dict[str, Any]] = []
    for ing in as_list((medication or {}).get("ingredient")):
        if not isinstance(ing, dict):
            continue
        item = ing.get("itemCodeableConcept")
        if not isinstance(item, dict) and isinstance(ing.get("item"), dict):
            item = ing["item"].get("concept")
        if isinstance(item, dict):
            out.append(item)
    return out


def _match_drugs(
    res: dict[str, Any], rs: ResourceSet, term: Terminology
) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """(concept, drugs): the drugs a resource names, from its code or its Medication's
    ingredients (a compounded or multi-ingredient Medication without a product code)."""
    concept = medication_concept(res, rs)
    match = term.match_medication(concept) if concept else None
    if match is not None:
        return concept, match.drugs
    if _reference(res) is None:  # no Medication, so no ingredients (most unmatched resources)
        return concept, ()
    drugs: list[str] = []
    for item in ingredient_concepts(referenced_medication(res, rs)):
        found = term.match_medication(item)
        if found:
            drugs.extend(d for d in found.drugs if d not in drugs)
    if drugs and concept is None:
        concept = {"text": " + ".join(drugs)}
    return concept, tuple(drugs)


def match_resource(
    resource: dict[str, Any], rs: ResourceSet, term: Terminology
) -> MedicationMatch | None:
    return term.match_medication(medication_concept(resource, rs))


@dataclass(frozen=True)
class _Codes:
    """The extension URLs and codes the medication mappers read, built once per terminology."""

    intent_urls: tuple[Any, ...]
    curative: frozenset[str]
    palliative: frozenset[str]
    no_response: frozenset[str]
    termination_urls: tuple[Any, ...]

    @classmethod
    def of(cls, term: Terminology) -> _Codes:
        spec = term.observations["intent_extensions"]
        return cls(
            intent_urls=tuple(spec["urls"]),
            curative=frozenset(spec["curative"]),
            palliative=frozenset(spec["palliative"]),
            no_response=frozenset(term.observations.get("no_response_reason_snomed", [])),
            termination_urls=tuple(term.observations.get("termination_reason_extensions", [])),
        )


def _intent(resource: dict[str, Any], term: Terminology, k: _Codes) -> str | None:
    for ext in as_list(resource.get("extension")):
        if isinstance(ext, dict) and ext.get("url") in k.intent_urls:
            codes = term.code_sets(ext.get("valueCodeableConcept")).codes
            if codes & k.curative:
                return "curative"
            if codes & k.palliative:
                return "palliative"
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_UNIT_DAYS = {
    "d": 1,
    "day": 1,
    "days": 1,
    "wk": 7,
    "week": 7,
    "weeks": 7,
    "mo": 30,
    "month": 30,
    "months": 30,
    "a": 365,
    "year": 365,
    "years": 365,
}


def _days(duration: Any) -> int | None:
    """A FHIR Duration (timing.repeat.boundsDuration) in days, when it can be read."""
    d = _dict(duration)
    value, unit = d.get("value"), str(d.get("code") or d.get("unit") or "").lower()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and unit in _UNIT_DAYS:
        days = int(value * _UNIT_DAYS[unit])
        return days if days > 0 else None
    return None


def _when(resource: dict[str, Any]) -> tuple[date | None, date | None]:
    """(start, end) of a statement or administration: R4 effective[x], R5 occurence[x]."""
    for period_key, datetime_key in _WHEN_KEYS:
        period = resource.get(period_key)
        if isinstance(period, dict):
            start = parse_date(period.get("start")) or parse_date(resource.get(datetime_key))
            if start is not None:
                return start, parse_date(period.get("end"))
        else:  # no period: the dateTime, and no end
            start = parse_date(resource.get(datetime_key))
            if start is not None:
                return start, None
    return parse_date(resource.get("dateAsserted")), None


_WHEN_KEYS = tuple((p + "Period", p + "DateTime") for p in ("effective", "occurence", "occurrence"))


_STALE_DAYS = 365


def _period(
    resource: dict[str, Any], default_days: int, as_of: date
) -> tuple[date | None, date | None, bool, bool]:
    """(start, end, ongoing, stale) of one resource, from the fields its type carries.

    `stale`: the resource says 'active' but was not asserted or written for over a year, so it
    is read as one past course, and the caller reports that.
    """
    rtype = resource.get("resourceType")
    status = str(resource.get("status", ""))
    start: date | None = None
    end: date | None = None
    if rtype in ("MedicationStatement", "MedicationAdministration"):
        start, end = _when(resource)
    else:  # MedicationRequest
        start = parse_date(resource.get("authoredOn"))
        duration: int | None = None
        for dosage in as_list(resource.get("dosageInstruction")):
            repeat = _dict(_dict(_dict(dosage).get("timing")).get("repeat"))
            bounds = repeat.get("boundsPeriod")
            if isinstance(bounds, dict):
                start = parse_date(bounds.get("start")) or start
                end = parse_date(bounds.get("end")) or end
            duration = duration or _days(repeat.get("boundsDuration"))
        if end is None and start is not None and duration:
            end = start + timedelta(days=duration)
        dispense = _dict(resource.get("dispenseRequest"))
        validity = _dict(dispense.get("validityPeriod"))
        start = start or parse_date(validity.get("start"))
        supply = _dict(dispense.get("expectedSupplyDuration")).get("value")
        if end is None and start and isinstance(supply, (int, float)) and supply > 0:
            end = start + timedelta(days=int(supply))
    if start is None:
        return None, None, False, False
    active = status in _ONGOING_STATUS
    stale = False
    # An active resource whose supply or planned end reaches today (give or take one cycle
    # off-treatment, e.g. capecitabine 14 days on, 7 off) is therapy in progress.
    ongoing = active and (end is None or end + timedelta(days=default_days) >= as_of)
    if ongoing:
        # How fresh the claim is: a statement by when it was asserted, an order by when it was
        # written. An 'active' claim untouched for a year is not evidence of current therapy.
        claimed = (
            parse_date(resource.get("dateAsserted")) if rtype == "MedicationStatement" else None
        )
        if (as_of - (claimed or start)).days > _STALE_DAYS:
            ongoing = False
            stale = True
        else:
            end = None
    if end is None and not ongoing:
        end = start + timedelta(days=default_days)
    if end is not None and end < start:
        end = start
    return start, end, ongoing, stale


def _stopped_for_progression(resource: dict[str, Any], term: Terminology, k: _Codes) -> bool:
    for reason in as_list(resource.get("statusReason")):
        if term.code_sets(reason).snomed & k.no_response:
            return True
    for ext in as_list(resource.get("extension")):
        if (
            isinstance(ext, dict)
            and ext.get("url") in k.termination_urls
            and term.code_sets(ext.get("valueCodeableConcept")).snomed & k.no_response
        ):
            return True
    return False


class _Point(NamedTuple):
    """One drug of one resource (a tuple: a frozen dataclass cost a microsecond per point)."""

    drug: str
    start: date
    end: date | None
    source_id: str
    intent: str | None
    progression: bool


def exposures(
    rs: ResourceSet,
    term: Terminology,
    knowledge: Knowledge,
    as_of: date,
    issues: list[DataIssue],
    progressions: list[ProgressionEvent] | None = None,
    boundary: date | None = None,
) -> list[Exposure]:
    """All anticancer exposures in the record, one per drug course.

    A course never spans `boundary` (the metastatic date): cycles before it and cycles after it
    are separate courses, so one resource is never both early-setting and part of a line.

    A stop for "no response" (statusReason 266721009) is also documented progression: it is
    appended to `progressions` when a list is given, dated at the stop (the end, else the start).
    """
    default_days = int(knowledge.param("lines", "default_exposure_days"))
    merge_gap = int(knowledge.param("lines", "course_merge_gap_days"))
    k = term.derived("medications.codes", _Codes.of)
    points: list[_Point] = []
    for rtype in _MED_TYPES:
        for res in rs.of(rtype):
            try:
                _points(
                    res, rs, term, k, knowledge, as_of, default_days, issues, progressions, points
                )
            except (AttributeError, TypeError, ValueError, KeyError) as exc:
                issues.append(DataIssue(ref_id(res), f"medication could not be read: {exc}"))
    return _merge(points, knowledge, merge_gap, boundary)


def _points(
    res: dict[str, Any],
    rs: ResourceSet,
    term: Terminology,
    k: _Codes,
    knowledge: Knowledge,
    as_of: date,
    default_days: int,
    issues: list[DataIssue],
    progressions: list[ProgressionEvent] | None,
    out: list[_Point],
) -> None:
    """Append the resource's points (one per anticancer drug it names) to `out`."""
    rtype = str(res.get("resourceType"))
    if res.get("status") in _SKIP_STATUS[rtype]:
        return
    if rtype == "MedicationRequest" and res.get("intent") in ("proposal", "plan"):
        return
    concept, named = _match_drugs(res, rs, term)
    if concept is None:
        issues.append(DataIssue(ref_id(res), _unnamed(res)))
        return
    drugs = [d for d in named if knowledge.drug(d) is not None]
    if not drugs:
        return
    validate(res, issues)
    start, end, ongoing, stale = _period(res, default_days, as_of)
    sid = ref_id(res)
    if start is None:
        issues.append(DataIssue(sid, "medication has no usable date"))
        return
    if stale:
        issues.append(
            DataIssue(
                sid,
                f"status '{res.get('status')}' but not updated for over {_STALE_DAYS} days: "
                "read as a past course, not current therapy; confirm with the patient",
            )
        )
    # Most resources carry neither element: skip the two readers (they would find nothing).
    has_extension = "extension" in res
    progressed = (has_extension or "statusReason" in res) and _stopped_for_progression(res, term, k)
    if progressed and progressions is not None:
        explicit_end = _explicit_end(res)
        progressions.append(ProgressionEvent(explicit_end or start, sid, "stopped for no response"))
    intent = _intent(res, term, k) if has_extension else None
    end = None if ongoing else end
    for drug in drugs:
        out.append(_Point(drug, start, end, sid, intent, progressed))


def _unnamed(res: dict[str, Any]) -> str:
    ref = res.get("medicationReference")
    med = res.get("medication")
    if isinstance(med, dict) and isinstance(med.get("reference"), dict):
        ref = med["reference"]
    if isinstance(ref, dict) and ref.get("reference"):
        return f"medication reference {ref['reference']} not found in the data: drug unknown"
    return "medication names no drug (no code, text or Medication reference)"


def _explicit_end(res: dict[str, Any]) -> date | None:
    """The end a resource states itself (not the default cycle length)."""
    if res.get("resourceType") == "MedicationRequest":
        for dosage in as_list(res.get("dosageInstruction")):
            repeat = _dict(_dict(_dict(dosage).get("timing")).get("repeat"))
            end = parse_date(_dict(repeat.get("boundsPeriod")).get("end"))
            if end is not None:
                return end
        return None
    return _when(res)[1]


class _Course:
    """One drug's course being merged from points (built once at the end: merging by copying
    the tuple of source ids per point was quadratic in the course's length)."""

    def __init__(self, first: _Point, early: bool) -> None:
        self.start = first.start
        self.end = first.end
        self.source_ids = [first.source_id]
        self.intent = first.intent
        self.progression = first.progression
        self.early = early

    def takes(self, p: _Point, merge_gap: int, early: bool) -> bool:
        return (
            (self.end is None or (p.start - self.end).days <= merge_gap)
            and (p.intent == self.intent or None in (p.intent, self.intent))
            and early == self.early
        )

    def add(self, p: _Point) -> None:
        self.end = None if self.end is None or p.end is None else max(self.end, p.end)
        self.source_ids.append(p.source_id)
        self.intent = self.intent or p.intent
        self.progression = self.progression or p.progression

    def exposure(self, drug: str, drug_class: str) -> Exposure:
        return Exposure(
            drug=drug,
            drug_class=drug_class,
            start=self.start,
            end=self.end,
            source_ids=tuple(self.source_ids),
            intent=self.intent,
            stopped_for_progression=self.progression,
        )


def _merge(
    points: list[_Point], knowledge: Knowledge, merge_gap: int, boundary: date | None = None
) -> list[Exposure]:
    """Merge one drug's points into courses when they are no more than `merge_gap` days apart.

    Only points of the same setting merge (early: curative intent or before `boundary`), so a
    course is wholly early or wholly metastatic and no resource ends up on both sides.
    """

    def early(p: _Point) -> bool:
        return p.intent == "curative" or (boundary is not None and p.start < boundary)

    out: list[Exposure] = []
    by_drug: dict[str, list[_Point]] = {}
    for p in points:
        by_drug.setdefault(p.drug, []).append(p)
    for drug, pts in sorted(by_drug.items()):
        pts.sort(key=lambda p: (p.start, p.source_id))
        info = knowledge.drug(drug)
        cls = info.drug_class if info else "unknown"
        course: _Course | None = None
        for p in pts:
            if course is not None and course.takes(p, merge_gap, early(p)):
                course.add(p)
                continue
            if course is not None:
                out.append(course.exposure(drug, cls))
            course = _Course(p, early(p))
        if course is not None:
            out.append(course.exposure(drug, cls))
    out.sort(key=lambda e: (e.start, e.drug))
    return out
