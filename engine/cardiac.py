"""Cardiac safety (CLINICAL.md section 4): monitored drugs, LVEF due, anthracycline overlap.

The per-drug LVEF rules are judged in engine.cardiac_rules (cardiac.yaml); thresholds come from
parameters.yaml (`cardiac`, `anthracycline`); words from warnings.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from engine.cardiac_rules import Concerned
from engine.history import DAYS_PER_MONTH, current_exposures
from engine.knowledge import Knowledge
from engine.model import Evidence, Exposure, PatientRecord


def monitored_exposures(record: PatientRecord, kb: Knowledge) -> list[Exposure]:
    """Exposures running now to drugs whose label asks for LVEF monitoring."""
    drugs = kb.agents("cardiac_monitored")
    return [e for e in current_exposures(record) if e.drug in drugs]


def running_concerned(record: PatientRecord, kb: Knowledge) -> list[Concerned]:
    """Each monitored drug running now, with the start of its current course."""
    starts: dict[str, date] = {}
    for e in monitored_exposures(record, kb):
        starts[e.drug] = min(starts.get(e.drug, e.start), e.start)
    return [Concerned(d, "running", s) for d, s in sorted(starts.items())]


def lvef_overdue(record: PatientRecord, kb: Knowledge) -> tuple[bool, str, tuple[str, ...]]:
    """(overdue, words about the last LVEF, its id) for the LVEF-every-3-months rule."""
    days = int(kb.param("cardiac", "lvef_due_days"))
    series = sorted(record.lvef, key=lambda m: m.date)
    if not series:
        return True, "No LVEF is on record", ()
    last = series[-1]
    overdue = last.date < record.as_of - timedelta(days=days)
    return overdue, f"Last LVEF {last.value:g}% on {last.date.isoformat()}", (last.source_id,)


def label_monitoring(kb: Knowledge, drugs: list[str]) -> tuple[str, tuple[Evidence, ...]]:
    """What each drug's own label says about LVEF monitoring (once per label), and the labels
    to cite; a HER2-directed drug whose label has no LVEF rule is said to have none."""
    ck = kb.cardiac
    said: dict[str, str] = {}
    cite: list[str] = []
    for drug in dict.fromkeys(drugs):
        label = ck.label_for(drug)
        none = ck.no_lvef_rule.get(drug)
        if label is not None:
            words = ck.say("monitoring", label=label.label, monitoring=label.monitoring)
            mark = "" if label.monitoring_verified else " " + ck.say("monitoring_unverified")
            said.setdefault(label.label, words + mark)
            cite.append(label.evidence)
        elif none is not None:
            mark = "" if none.verified else " " + ck.say("monitoring_unverified")
            said.setdefault(none.label, f"{none.label}: {none.says}{mark}.")
    return " ".join(said.values()), tuple(kb.evidence[e] for e in dict.fromkeys(cite))


def due_months(kb: Knowledge) -> int:
    return round(int(kb.param("cardiac", "lvef_due_days")) / DAYS_PER_MONTH)


@dataclass(frozen=True)
class AnthracyclineOverlap:
    how: str
    facts: str
    source_ids: tuple[str, ...]


def _is(kb: Knowledge, drug: str, attr: str) -> bool:
    info = kb.drug(drug)
    return bool(info and getattr(info, attr))


def is_anthracycline(kb: Knowledge, drug: str | None) -> bool:
    info = kb.drug(drug) if drug else None
    return bool(info and info.family == "anthracycline")


def is_trastuzumab_containing(kb: Knowledge, drug: str | None) -> bool:
    return bool(drug) and _is(kb, str(drug), "trastuzumab_containing")


def washout_days(kb: Knowledge) -> int:
    return round(float(kb.param("anthracycline", "washout_months")) * DAYS_PER_MONTH)


def anthracycline_with_trastuzumab(
    record: PatientRecord, kb: Knowledge, anthracycline_start: date | None = None
) -> AnthracyclineOverlap | None:
    """Ongoing (or planned, from `anthracycline_start`) anthracycline near trastuzumab exposure."""
    washout = washout_days(kb)
    exps = list(record.exposures)
    tras = [e for e in exps if is_trastuzumab_containing(kb, e.drug)]
    anthra = [e for e in exps if is_anthracycline(kb, e.drug)]
    starts = [
        (e.start, e.end, e.drug, e.source_ids)
        for e in anthra
        if e.end is None or e.end >= record.as_of
    ]
    if anthracycline_start is not None:
        starts.append((anthracycline_start, None, "the ordered anthracycline", ()))
    for a_start, a_end, a_drug, a_ids in starts:
        for t in tras:
            t_end = t.end or date.max
            a_stop = a_end or date.max
            if t.start <= a_stop and a_start <= t_end:
                return AnthracyclineOverlap(
                    "given at the same time",
                    f"{a_drug} (from {a_start.isoformat()}) overlaps {t.drug} "
                    f"(from {t.start.isoformat()}"
                    + (f" to {t.end.isoformat()})" if t.end else ", ongoing)"),
                    (*a_ids, *t.source_ids),
                )
            if t.end is not None and timedelta(0) <= a_start - t.end <= timedelta(days=washout):
                months = (a_start - t.end).days / DAYS_PER_MONTH
                return AnthracyclineOverlap(
                    f"{months:.1f} months after the last trastuzumab",
                    f"{a_drug} starts {a_start.isoformat()}, {months:.1f} months after the last "
                    f"dose of {t.drug} on {t.end.isoformat()} (within the washout)",
                    (*a_ids, *t.source_ids),
                )
    return None
