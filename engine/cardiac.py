"""Cardiac safety (CLINICAL.md section 4): LVEF criteria, LVEF due, anthracycline overlap.

Thresholds come from parameters.yaml (`cardiac`, `anthracycline`); words from warnings.yaml.
The baseline LVEF is the last value on or before the start of the current HER2-directed therapy
(the label's "pre-treatment value"); without one, the earliest value in the series, said as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from engine.history import DAYS_PER_MONTH, metastatic_exposures
from engine.knowledge import Knowledge
from engine.model import ConditionFact, Exposure, Measurement, PatientRecord


@dataclass(frozen=True)
class CardiacFinding:
    """Why cardiac function is a concern: criteria met, severity, the words and the evidence ids."""

    criteria: tuple[str, ...]
    severity: str
    series: str
    criteria_detail: str
    source_ids: tuple[str, ...]


def monitored_exposures(record: PatientRecord, kb: Knowledge) -> list[Exposure]:
    """Ongoing exposures to drugs whose label asks for LVEF monitoring."""
    drugs = kb.agents("cardiac_monitored")
    return [
        e
        for e in metastatic_exposures(record)
        if e.drug in drugs and (e.end is None or e.end >= record.as_of)
    ]


def _baseline(series: list[Measurement], start: date | None) -> tuple[Measurement, bool]:
    if start is not None:
        before = [m for m in series if m.date <= start]
        if before:
            return before[-1], True
    return series[0], False


def _symptomatic(cond: ConditionFact, kb: Knowledge) -> bool:
    terms = kb.param("cardiac_terms", "symptomatic_heart_failure")
    text = (cond.display or "").lower()
    return cond.active and any(t in text for t in terms)


def cardiac_finding(
    record: PatientRecord, kb: Knowledge, therapy_start: date | None = None
) -> CardiacFinding | None:
    """The LVEF / heart-failure criteria the record meets, or None."""
    p = kb.parameters["cardiac"]
    hf = list(record.conditions_of("heart-failure"))
    series = sorted(record.lvef, key=lambda m: (m.date, m.source_id))
    criteria: list[str] = []
    details: list[str] = []
    ids: list[str] = []
    severity = "warning"
    series_text = "No LVEF on record"
    if series:
        latest = series[-1]
        base, pre_treatment = _baseline(series, therapy_start)
        drop = base.value - latest.value
        series_text = "LVEF series: " + ", ".join(
            f"{m.value:g}% ({m.date.isoformat()})" for m in series[-6:]
        )
        base_text = (
            f"baseline {base.value:g}% on {base.date.isoformat()} (before this therapy)"
            if pre_treatment
            else f"baseline {base.value:g}% on {base.date.isoformat()} (earliest recorded; "
            "no value before this therapy)"
        )
        if latest.value < p["lvef_low"]:
            criteria.append(f"LVEF {latest.value:g}% (under {p['lvef_low']:g}%)")
        if drop >= p["drop_absolute"]:
            criteria.append(f"LVEF fell {drop:g} points from baseline")
        elif latest.value < p["lvef_low"] and drop >= p["drop_with_low"]:
            criteria.append(f"LVEF under {p['lvef_low']:g}% and {drop:g} points below baseline")
        if criteria:
            details.append(f"Latest {latest.value:g}% on {latest.date.isoformat()}; {base_text}.")
            ids += [latest.source_id, base.source_id]
        if latest.value < p["lvef_critical"]:
            severity = "critical"
    if hf:
        names = ", ".join(sorted({c.display or c.concept for c in hf}))
        criteria.append(f"heart failure / LV dysfunction on record ({names})")
        ids += [c.source_id for c in hf]
        if any(_symptomatic(c, kb) for c in hf):
            severity = "critical"
            details.append("Symptomatic (active) heart failure is recorded.")
    if not criteria:
        return None
    return CardiacFinding(
        criteria=tuple(criteria),
        severity=severity,
        series=series_text,
        criteria_detail=" ".join(details),
        source_ids=tuple(dict.fromkeys(ids)),
    )


def lvef_overdue(record: PatientRecord, kb: Knowledge) -> tuple[bool, str, tuple[str, ...]]:
    """(overdue, words about the last LVEF, its id) for the LVEF-every-3-months rule."""
    days = int(kb.param("cardiac", "lvef_due_days"))
    series = sorted(record.lvef, key=lambda m: m.date)
    if not series:
        return True, "No LVEF is on record", ()
    last = series[-1]
    overdue = last.date < record.as_of - timedelta(days=days)
    return overdue, f"Last LVEF {last.value:g}% on {last.date.isoformat()}", (last.source_id,)


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
