"""Medication resources to drug exposures, merged into courses.

MedicationStatement (effective[x]), MedicationRequest (authoredOn, dosage bounds, dispense
validity; one request per cycle is common) and MedicationAdministration (one dose on one day)
each say when their drug was given (`Shape`); fhir_mappers.courses merges them per drug into
courses and decides, one way for every shape, whether each is ongoing (CLINICAL.md 2.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from engine.knowledge import Knowledge
from engine.model import DataIssue, Exposure, ProgressionEvent
from fhir_mappers.courses import Point, Shape, merge_courses
from fhir_mappers.medication_drugs import match_drugs, unnamed_reason
from fhir_mappers.resources import (
    MEDICATION_TYPES,
    ResourceSet,
    as_list,
    parse_date,
    ref_id,
    validate,
)
from fhir_mappers.terminology import Terminology

_SKIP_STATUS = {
    "MedicationStatement": {"entered-in-error", "not-taken", "intended", "draft"},
    "MedicationRequest": {"entered-in-error", "cancelled", "draft"},
    "MedicationAdministration": {"entered-in-error", "not-done"},
}
_ONGOING_STATUS = {"active", "on-hold", "in-progress", "intended"}


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


_STOP_STATUS = frozenset({"completed", "stopped"})


def _cap(day: date, start: date, as_of: date) -> date:
    """A day the drug was given: never before the start, never after the record date."""
    return max(start, min(day, as_of))


def _request_period(
    resource: dict[str, Any],
) -> tuple[date | None, date | None, bool, date | None]:
    """(start, stated end, planned course, supplied until) of a MedicationRequest: the end of
    its dosage bounds (`planned`), and how far the supply of its dispense reaches."""
    start = parse_date(resource.get("authoredOn"))
    end: date | None = None
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
    planned = end is not None
    dispense = _dict(resource.get("dispenseRequest"))
    start = start or parse_date(_dict(dispense.get("validityPeriod")).get("start"))
    supply = _dict(dispense.get("expectedSupplyDuration")).get("value")
    supplied: date | None = None
    if end is None and start and isinstance(supply, (int, float)) and supply > 0:
        supplied = start + timedelta(days=int(supply))
    return start, end, planned, supplied


def _period(resource: dict[str, Any], as_of: date, stale_days: int) -> Shape | None:
    """When one resource shows its drug given, the same way for every resource shape.

    An administration is one dose on one day. A statement or order that is active with no end
    in the past claims the drug is given now (unless untouched for over `stale_days`,
    parameters.yaml lines.stale_claim_days: `stale`).
    Otherwise its last day is its stated end, else its start: never a day in the future.
    """
    rtype = resource.get("resourceType")
    status = str(resource.get("status", ""))
    if rtype == "MedicationAdministration":
        start, end = _when(resource)
        if start is None:
            return None
        return Shape(start, _cap(end or start, start, as_of), False, start, False, False)
    if rtype == "MedicationStatement":
        start, end = _when(resource)
        planned, supplied = True, None
        asserted = parse_date(resource.get("dateAsserted"))
    else:
        start, end, planned, supplied = _request_period(resource)
        asserted = None
    if start is None:
        return None
    claimed_on = asserted or start
    reach = end or supplied
    if status in _ONGOING_STATUS and (reach is None or reach >= as_of):
        # An open-ended claim untouched for a year is not evidence of current therapy (a
        # stated end still to come is a plan the resource makes explicit, and stands).
        if reach is None and (as_of - claimed_on).days > stale_days:
            return Shape(start, _cap(claimed_on, start, as_of), False, claimed_on, True, True)
        return Shape(start, None, True, claimed_on, False, False)
    # A per-cycle order marked completed is one cycle given, not the course stopped. A
    # dispensed supply is not a dose: the dispense is the recorded event, the supply how long
    # it may last.
    stop = status == "stopped" or (status in _STOP_STATUS and planned)
    last = _cap(end or start, start, as_of)
    return Shape(start, last, False, claimed_on, stop, False, supplied)


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


def _stop_reason(resource: dict[str, Any], k: _Codes) -> str:
    """The words of a recorded stop reason other than progression (statusReason or the mCODE
    termination-reason extension), for the cards to quote; "" when none is recorded."""
    concepts = list(as_list(resource.get("statusReason")))
    concepts += [
        ext.get("valueCodeableConcept")
        for ext in as_list(resource.get("extension"))
        if isinstance(ext, dict) and ext.get("url") in k.termination_urls
    ]
    for c in concepts:
        if not isinstance(c, dict):
            continue
        codings = [x for x in as_list(c.get("coding")) if isinstance(x, dict)]
        words = c.get("text") or next((x.get("display") for x in codings if x.get("display")), "")
        if isinstance(words, str) and words.strip():
            return words.strip()
    return ""


def exposures(
    rs: ResourceSet,
    term: Terminology,
    knowledge: Knowledge,
    as_of: date,
    issues: list[DataIssue],
    progressions: list[ProgressionEvent] | None = None,
    boundary: date | None = None,
) -> list[Exposure]:
    """All anticancer exposures in the record, one per drug course (fhir_mappers.courses).

    A course never spans `boundary` (the metastatic date): cycles before it and cycles after it
    are separate courses, so one resource is never both early-setting and part of a line.

    A stop for "no response" (statusReason 266721009) is also documented progression: it is
    appended to `progressions` when a list is given, dated at the stop (the order's own end,
    else the course's last dose, said to be approximate), never at its start.
    """
    k = term.derived("medications.codes", _Codes.of)
    points: list[Point] = []
    for rtype in MEDICATION_TYPES:
        for res in rs.of(rtype):
            try:
                _points(res, rs, term, k, knowledge, as_of, issues, points)
            except (AttributeError, TypeError, ValueError, KeyError) as exc:
                issues.append(DataIssue(ref_id(res), f"medication could not be read: {exc}"))
    stops = _no_response_events(points, issues)
    known = [*(progressions or ()), *stops]
    merged = merge_courses(points, knowledge, as_of, known, boundary, issues)
    if progressions is not None:
        progressions.extend(stops)
    return merged


def _no_response_events(points: list[Point], issues: list[DataIssue]) -> list[ProgressionEvent]:
    """Progression at each stop for no response (CLINICAL.md section 1): its stated end, else
    the last dose it covers (its administrations up to the next order or statement of the
    drug) or the date a statement was asserted, said approximate; never the day the course
    began. With no stop date and nothing after the start, the date is unknown: no event (the
    course still ended in progression), and the record is said to lack it."""
    out: list[ProgressionEvent] = []
    seen: set[str] = set()
    for p in points:
        if not p.progression or p.source_id in seen:
            continue
        seen.add(p.source_id)
        if p.stated_end is not None:
            out.append(ProgressionEvent(p.stated_end, p.source_id, "stopped for no response"))
            continue
        same = [q for q in points if q.drug == p.drug]
        cutoff = min(
            (q.start for q in same if q.start > p.start and not _administration(q)),
            default=date.max,
        )
        last = max(
            (
                q.shape.last
                for q in same
                if _administration(q) and p.start <= q.start < cutoff and q.shape.last
            ),
            default=None,
        )
        asserted = None if _administration(p) else p.shape.claimed_on
        after = [d for d in (last, p.shape.last, asserted) if d is not None and d > p.start]
        earlier = any(q.start < p.start for q in same)  # a later cycle: its own day is a dose
        if not after and not earlier:
            issues.append(
                DataIssue(
                    p.source_id,
                    f"stopped for no response, but no stop date and no dose after its start "
                    f"({p.start.isoformat()}) is recorded: the progression date is unknown "
                    "(counted as ended in progression); record when it stopped",
                )
            )
            continue
        when = max(after, default=p.start)
        how = (
            "when the stop was asserted"
            if when == asserted and when != last
            else "at the last dose"
        )
        out.append(
            ProgressionEvent(
                when,
                p.source_id,
                f"stopped for no response (no stop date recorded: dated {how}, approximate)",
            )
        )
    return out


def _administration(p: Point) -> bool:
    return p.source_id.startswith("MedicationAdministration/")


def _points(
    res: dict[str, Any],
    rs: ResourceSet,
    term: Terminology,
    k: _Codes,
    knowledge: Knowledge,
    as_of: date,
    issues: list[DataIssue],
    out: list[Point],
) -> None:
    """Append the resource's points (one per anticancer drug it names) to `out`."""
    rtype = str(res.get("resourceType"))
    if res.get("status") in _SKIP_STATUS[rtype]:
        return
    if rtype == "MedicationRequest" and res.get("intent") in ("proposal", "plan"):
        return
    concept, named = match_drugs(res, rs, term)
    if concept is None:
        issues.append(DataIssue(ref_id(res), unnamed_reason(res)))
        return
    drugs = [d for d in named if knowledge.drug(d) is not None]
    if not drugs:
        return
    validate(res, issues)
    stale_days = int(knowledge.param("lines", "stale_claim_days"))  # parameters.yaml
    shape = _period(res, as_of, stale_days)
    sid = ref_id(res)
    if shape is None:
        issues.append(DataIssue(sid, "medication has no usable date"))
        return
    if shape.stale:
        issues.append(
            DataIssue(
                sid,
                f"status '{res.get('status')}' but not updated for over {stale_days} days: "
                "read as a past course, not current therapy; confirm with the patient",
            )
        )
    # Most resources carry neither element: skip the two readers (they would find nothing).
    has_extension = "extension" in res
    progressed = (has_extension or "statusReason" in res) and _stopped_for_progression(res, term, k)
    stated_end = _explicit_end(res) if progressed else None
    if progressed:  # a stop for no response stops the course, whatever its status says
        shape = shape._replace(
            claim=False, stop=True, last=shape.last or _cap(shape.claimed_on, shape.start, as_of)
        )
    intent = _intent(res, term, k) if has_extension else None
    reason = "" if progressed else _stop_reason(res, k)  # said on the cards, never decided on
    for drug in drugs:
        out.append(Point(drug, shape, sid, intent, progressed, stated_end, reason))


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
