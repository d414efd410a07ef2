"""Who is in scope at all (CLINICAL.md section 1): alive, adult, and a current record.

Decided before any card is built: a deceased or under-18 patient gets no cards; a stale record
gets only a data-needed card naming the date of its newest data.
"""

from __future__ import annotations

import calendar
from datetime import date

from engine.knowledge import Knowledge
from engine.model import DataNeed, PatientRecord


def age_on(birth: date, day: date) -> int:
    """Completed years from `birth` to `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (the month's last day when it is shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# Why an Assessment holds no regimen (`Assessment.reason_code`), stable for reports and exports:
# out of scope (no cards), then in scope with only a data-needed card.
REASON_CODES = (
    "deceased",
    "under-age",
    "not-breast-cancer",
    "her2-negative",
    "early-stage",
    "not-her2-positive-metastatic",
    "stale-record",
    "her2-unknown",
    "her2-equivocal",
    "metastatic-unknown",
    "knowledge-gap",
)


def not_in_scope(record: PatientRecord, kb: Knowledge) -> str:
    """Why this patient gets no cards at all ("" when alive and adult, or of unknown age)."""
    return not_in_scope_coded(record, kb)[1]


def not_in_scope_coded(record: PatientRecord, kb: Knowledge) -> tuple[str, str]:
    """(code, why) this patient gets no cards at all (("", "") when alive and adult, or of
    unknown age)."""
    if record.deceased:
        died = record.deceased_date
        when = f" on {died.isoformat()}" if died else ""
        newest = record.newest_data_date
        # not a card (a deceased patient gets none), but the contradiction is said wherever the
        # reason is shown (CLI, population results); the data issue names the resource
        later = (
            f"; inconsistent: clinical data is dated up to {newest.isoformat()}, after the death"
            if died is not None and newest is not None and newest > died
            else ""
        )
        return "deceased", f"deceased (the Patient record says the patient died{when}{later})"
    adult = int(kb.param("scope", "adult_age_years"))
    birth = record.birth_date
    if birth is not None and age_on(birth, record.as_of) < adult:
        age = max(age_on(birth, record.as_of), 0)
        return "under-age", (
            f"under {adult} years old (aged {age} on {record.as_of.isoformat()} from the "
            f"birthDate; this service advises on adults)"
        )
    return "", ""


def stale_record(record: PatientRecord, kb: Knowledge) -> DataNeed | None:
    """A data-needed card when the newest clinical data is older than the parameter allows."""
    newest = record.newest_data_date
    months = int(kb.param("scope", "record_current_months"))
    if newest is None or newest >= months_before(record.as_of, months):
        return None
    when = newest.isoformat()
    return DataNeed(
        what="stale-record",
        summary=f"Record not current: newest clinical data is from {when}; no advice given",
        detail=(
            f"The newest Condition, medication or Observation in this record is dated {when}, "
            f"more than {months} months before {record.as_of.isoformat()}. Advice on the next "
            "line of therapy needs the current picture (HER2 status, staging, therapy since then, "
            "progression, LVEF): no regimen is recommended, no one-click order is offered, and "
            "orders are not checked against this record. Bring the record up to date (or make "
            "the recent data available to this service) to get advice and order checks."
        ),
        source_ids=tuple(s for s in (record.newest_data_source_id, record.patient_source_id) if s),
    )
