"""In scope at all (CLINICAL.md section 1), and what the record says about each line's status.

Written from CLINICAL.md, not from the engine: a deceased patient (`deceasedBoolean` true or a
`deceasedDateTime`) or one under 18 at the evaluation date gets no cards; a record whose newest
clinical resource is more than 18 months old is stale (only a data-needed card, no regimen).
A line is ongoing when its last dose is within the dosing interval plus one interval of grace
(CLINICAL.md 2.5); the generator ends a line only when something stopped it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from synthetic.journey import Journey, Line, catalogue

ADULT_AGE = 18
STALE_MONTHS = 18  # CLINICAL.md section 1 ("a parameter"; its default)
STALE_DAYS = round(STALE_MONTHS * 30.4375)
BORDER_DAYS = 30  # within this of the limit either reading is accepted (dates drift in rendering)


def _course_dates(j: Journey) -> list[date]:
    out: list[date] = []
    for c in [*j.early, *(c for ln in j.lines for c in ln.courses)]:
        doses = c.doses(j.record_date)
        out += [c.start, *(doses[-1:]), *([c.end] if c.end else [])]
    return out


def newest_data(j: Journey) -> date:
    """The date of the newest clinical resource the record holds (Condition, medication,
    Observation), as the renderer writes them."""
    dates = [
        *(d for d in (j.diagnosis, j.metastatic_since) if d),
        *(t.when for t in j.her2_tests),
        *(s.onset for s in j.sites),
        *(e.onset for e in j.events),
        *(d for d, _ in j.lvef),
        *(d for d, _ in j.assessments),
        *_course_dates(j),
    ]
    return min(max(dates, default=j.record_date), j.as_of)


def scope(j: Journey) -> tuple[str, bool]:
    """(why out of scope: "deceased" | "under-18" | "", whether the record is stale)."""
    if j.deceased:
        return "deceased", False
    if j.age < ADULT_AGE:
        return "under-18", False
    age_days = (j.as_of - newest_data(j)).days
    return "", age_days > STALE_DAYS


def stale_borderline(j: Journey) -> bool:
    return abs((j.as_of - newest_data(j)).days - STALE_DAYS) <= BORDER_DAYS


def line_facts(j: Journey, ln: Line) -> dict[str, Any]:
    """Ongoing or ended, the last dose, and how it was recorded (for the answer file)."""
    doses = [d for c in ln.courses for d in c.doses(j.record_date)[-1:]]
    last = max(doses) if doses else None
    facts: dict[str, Any] = {
        "ongoing": ln.end is None,
        "last_dose": last.isoformat() if last else None,
    }
    if ln.end is None and j.shape == "admin-only-ongoing" and ln is j.lines[-1]:
        cat = catalogue()["drugs"]
        facts["recorded_as"] = "MedicationAdministration only"
        facts["grace"] = {
            c.drug: {
                "last_dose": c.last_dose.isoformat() if c.last_dose else None,
                "ongoing_if_within_days": _grace(cat[c.drug]),
            }
            for c in ln.courses
            if c.end is None
        }
    return facts


def _grace(info: dict[str, Any]) -> int:
    """CLINICAL.md 2.5: the dosing interval plus one interval; daily oral drugs 30 days."""
    return 30 if info["route"] == "oral" else 2 * int(info["cycle_days"])
