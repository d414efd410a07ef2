"""The Patient resource and the record's currency: what decides whether a patient is in scope.

CLINICAL.md section 1, "in scope at all": alive, adult (from birthDate), and a current record
(the newest Condition, medication or Observation). The engine decides; this module only reads.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from engine.model import DataIssue
from fhir_mappers.resources import ResourceSet, as_list, parse_date, ref_id

_PARTIAL = re.compile(r"^\s*(\d{4})(?:-(\d{2}))?\s*$")
# The date fields that say when a clinical resource happened or was recorded, per type (R4, R4B
# and the R5 spellings of MedicationAdministration.occurence[x]). meta.lastUpdated is system
# time, not clinical time, and is not read.
_DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "Condition": ("recordedDate", "onsetDateTime", "abatementDateTime"),
    "Observation": ("effectiveDateTime", "effectiveInstant", "issued"),
    "MedicationStatement": ("effectiveDateTime", "dateAsserted"),
    "MedicationRequest": ("authoredOn",),
    "MedicationAdministration": ("effectiveDateTime", "occurenceDateTime"),
}
_PERIOD_FIELDS: dict[str, tuple[str, ...]] = {
    "Condition": ("onsetPeriod", "abatementPeriod"),
    "Observation": ("effectivePeriod",),
    "MedicationStatement": ("effectivePeriod",),
    "MedicationAdministration": ("effectivePeriod", "occurencePeriod"),
}


@dataclass(frozen=True)
class PatientFacts:
    birth_date: date | None = None
    deceased: bool = False
    deceased_date: date | None = None
    source_id: str = ""


def _latest_birth_day(value: Any) -> date | None:
    """A birthDate as a date; a partial one (YYYY, YYYY-MM) as the LAST day it allows, so that
    a patient who may still be under 18 is not taken for an adult."""
    if not isinstance(value, str):
        return None
    m = _PARTIAL.match(value)
    if m:
        year, month = int(m.group(1)), int(m.group(2) or 12)
        if not 1 <= month <= 12:
            return None
        return date(year, month, calendar.monthrange(year, month)[1])
    return parse_date(value)


def _the_patient(rs: ResourceSet, patient_id: str | None) -> dict[str, Any] | None:
    patients = rs.of("Patient")
    for p in patients:
        if patient_id is not None and str(p.get("id")) == patient_id:
            return p
    return patients[0] if patients else None


def patient_facts(rs: ResourceSet, patient_id: str | None, issues: list[DataIssue]) -> PatientFacts:
    """Birth date and death from the Patient resource; none sent means nothing is known."""
    p = _the_patient(rs, patient_id)
    if p is None:
        return PatientFacts()
    sid = ref_id(p)
    raw_birth = p.get("birthDate")
    birth = _latest_birth_day(raw_birth)
    if raw_birth not in (None, "") and birth is None:
        issues.append(DataIssue(sid, f"birthDate {raw_birth!r} cannot be read: age unknown"))
    raw_death = p.get("deceasedDateTime")
    flag = p.get("deceasedBoolean")
    # A malformed "true" (a string) still says so; any deceasedDateTime, even unreadable, does.
    deceased = flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")
    deceased = deceased or raw_death not in (None, "")
    death = parse_date(raw_death)
    if raw_death not in (None, "") and death is None:
        issues.append(DataIssue(sid, f"deceasedDateTime {raw_death!r} cannot be read"))
    return PatientFacts(birth, deceased, death, sid)


def _dates_of(resource: dict[str, Any], rtype: str) -> list[date]:
    found = [parse_date(resource.get(k)) for k in _DATE_FIELDS.get(rtype, ())]
    for key in _PERIOD_FIELDS.get(rtype, ()):
        period = resource.get(key)
        if isinstance(period, dict):
            found += [parse_date(period.get("start")), parse_date(period.get("end"))]
    if rtype == "MedicationRequest":
        for dosage in as_list(resource.get("dosageInstruction")):
            timing = dosage.get("timing") if isinstance(dosage, dict) else None
            bounds = (
                (timing.get("repeat") or {}).get("boundsPeriod")
                if isinstance(timing, dict)
                else None
            )
            if isinstance(bounds, dict):
                found.append(parse_date(bounds.get("start")))
    return [d for d in found if d is not None]


def newest_data(rs: ResourceSet, as_of: date) -> tuple[date | None, str]:
    """The newest date of any Condition, medication or Observation on or before `as_of`, and
    the resource it is on.

    Dates after the evaluation date (a planned end, a future appointment) do not make an old
    record current; entered-in-error resources do not count."""
    newest: date | None = None
    source = ""
    for rtype in _DATE_FIELDS:
        for resource in rs.of(rtype):
            if resource.get("status") == "entered-in-error":
                continue
            try:
                found = _dates_of(resource, rtype)
            except (AttributeError, TypeError, ValueError):
                continue  # a malformed date field is reported by the mapper that reads it
            for d in found:
                if d <= as_of and (newest is None or d > newest):
                    newest, source = d, ref_id(resource)
    return newest, source


def death_issues(person: PatientFacts, newest: date | None, newest_id: str) -> list[DataIssue]:
    """Clinical data dated after the recorded death: the record contradicts itself (a wrong
    death date, or another patient's data). Said as a data issue, never as a card."""
    if person.deceased_date is None or newest is None or newest <= person.deceased_date:
        return []
    return [
        DataIssue(
            person.source_id,
            f"inconsistent record: deceasedDateTime {person.deceased_date.isoformat()}, but "
            f"clinical data is dated up to {newest.isoformat()} ({newest_id}); check the death "
            "date and whether the data belong to this patient",
        )
    ]
