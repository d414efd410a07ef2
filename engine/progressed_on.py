"""The progressed-on order check: an ordered agent the disease already progressed on.

CLINICAL.md section 3: "Never re-offer an agent that already failed (progression on it) unless
nothing else is left". Trastuzumab continues beyond progression (parameters.yaml
agents.beyond_progression) and is not flagged. Every line situation counts: a second review found
T-DXd re-ordered after progression on it signed silently while a later line went on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta

from engine.history import history, line_exposures, months_between
from engine.knowledge import Knowledge
from engine.model import (
    DraftOrder,
    Exposure,
    OrderFinding,
    PatientRecord,
    Recommendation,
    TherapyLine,
)
from engine.off_sequence import next_line_words, regimen_replacement
from engine.order_context import drug_label
from engine.warning_text import make_finding


@dataclass(frozen=True)
class Failure:
    """Where the disease progressed on one drug: the latest progression found for it."""

    drug: str
    when: date | None
    approximate: bool
    line: int | None  # None: an early relapse on (neo)adjuvant therapy
    source_ids: tuple[str, ...]
    months: float | None = None  # early relapse: months from the last early dose


def _running_at(e: Exposure, when: date, kb: Knowledge) -> bool:
    """Given when the disease progressed: started before, last dose within its window."""
    last = e.end or e.last_dose
    window = timedelta(days=kb.ongoing_window_days(e.drug))
    return e.start <= when and (e.end is None or last is None or last + window >= when)


def _line_progression(record: PatientRecord, line: TherapyLine) -> tuple[date | None, bool]:
    """(date, approximate) of the line's progression: its progression event, else its end."""
    dates = [p.date for p in record.progressions if p.source_id in line.progression_ids]
    if dates:
        return max(dates), False
    return line.end, True


def _from_lines(record: PatientRecord, kb: Knowledge) -> list[Failure]:
    out: list[Failure] = []
    for line in record.lines:
        exposures = line_exposures(record, line)
        if line.ended_in_progression:
            when, approx = _line_progression(record, line)
            for drug in line.drugs:
                mine = [e for e in exposures if e.drug == drug]
                if when is not None and mine and not any(_running_at(e, when, kb) for e in mine):
                    continue  # stopped long before the progression (chemotherapy before HP)
                ids = (*line.progression_ids, *(s for e in mine for s in e.source_ids))
                out.append(Failure(drug, when, approx, line.number, ids))
        for e in exposures:
            if e.stopped_for_progression:
                stop = e.end or e.last_dose
                out.append(Failure(e.drug, stop, e.end is None, line.number, e.source_ids))
    return out


def _from_early_relapse(record: PatientRecord, kb: Knowledge) -> list[Failure]:
    """Metastatic relapse within the threshold of (neo)adjuvant HER2-directed therapy."""
    hist = history(record, kb)
    met = record.metastatic_since
    if not hist.early_relapse or met is None:
        return []
    agents = kb.agents("early_relapse")
    out = []
    for e in record.early_exposures:
        if e.drug in agents:
            months = months_between(e.end, met) if e.end else None
            out.append(Failure(e.drug, met, False, None, e.source_ids, months))
    return out


def failures(record: PatientRecord, kb: Knowledge) -> dict[str, Failure]:
    """The latest progression on each drug (metastatic lines, stops for no response, early
    relapse), trastuzumab beyond progression excepted."""
    exempt = kb.agents("beyond_progression")
    latest: dict[str, Failure] = {}
    for f in (*_from_early_relapse(record, kb), *_from_lines(record, kb)):
        if kb.family(f.drug) in {kb.family(x) for x in exempt}:
            continue
        key = kb.family(f.drug)
        old = latest.get(key)
        if old is None or (f.when or date.min) >= (old.when or date.min):
            latest[key] = f
    return latest


def _continuing(record: PatientRecord, kb: Knowledge, f: Failure) -> bool:
    """Re-ordering a drug of the ongoing line that started after that progression (the
    re-challenge was already decided and goes on): not flagged on every cycle."""
    last = record.lines[-1] if record.lines else None
    if last is None or not last.ongoing or f.line == last.number:
        return False
    return any(kb.family(d) == kb.family(f.drug) for d in last.drugs) and (
        f.when is None or f.when <= last.start
    )


def progressed_finding(
    record: PatientRecord, kb: Knowledge, order: DraftOrder, rec: Recommendation | None
) -> OrderFinding | None:
    """A warning on an order of an agent the disease progressed on, with the recommended
    regimen (offered in its place when it is due now)."""
    if order.drug is None or not kb.drug(order.drug):
        return None
    f = failures(record, kb).get(kb.family(order.drug))
    if f is None or _continuing(record, kb, f):
        return None
    name = drug_label(kb, order.drug)
    info = kb.drug(f.drug)
    on = info.short if info and info.short else f.drug
    when = f.when.isoformat() if f.when else "date not recorded"
    how = ""
    if f.approximate and f.when:
        when = f"about {when}"
        how = " No progression date is recorded: the date is the last dose, approximate."
    rep = (
        regimen_replacement(kb, rec, ())
        if rec is not None and rec.timing == "now" and order.drug not in rec.preferred.regimen.drugs
        else None
    )
    fields = {
        "drug": name,
        "on": on,
        "when": when,
        "next": how + " " + next_line_words(record, rec, kb),
    }
    if f.line is None:
        months = f"{f.months:.1f} months" if f.months is not None else "within the threshold"
        found = make_finding(
            kb, "off-sequence", "early-relapse", order.resource_id, f.source_ids, rep,
            months=months, **fields,
        )  # fmt: skip
        variant = "early-relapse"
    else:
        found = make_finding(
            kb, "off-sequence", "progressed", order.resource_id, f.source_ids, rep,
            line=f.line, **fields,
        )  # fmt: skip
        variant = "progressed"
    if kb.warning("off-sequence").variants[variant].withholds_order:
        found = dataclasses.replace(found, withhold=(order.drug,))
    return found
