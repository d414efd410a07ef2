"""What the rules need to know about the treatment so far (CLINICAL.md sections 2 and 3).

Prior HER2-directed lines (plus one for an early relapse, with the threshold used), the agents
received and failed, the current line and the drugs running now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.knowledge import Knowledge
from engine.model import Exposure, PatientRecord, TherapyLine

DAYS_PER_MONTH = 30.4375


def months_between(a: date, b: date) -> float:
    return (b - a).days / DAYS_PER_MONTH


@dataclass(frozen=True)
class History:
    """The treatment history as the line table reads it."""

    prior_her2_lines: int
    early_relapse: bool
    relapse_threshold: float | None  # months, when an early relapse was judged
    received: frozenset[str]
    failed: frozenset[str]
    last_line: TherapyLine | None
    continuing: bool  # the latest line is ongoing with no progression since it started
    reasons: tuple[str, ...]
    source_ids: tuple[str, ...]
    refractory: frozenset[str] = frozenset()  # early-relapse agents (relapse, not progression)


# The rules ask these of the same record several times per assessment; each keeps its last
# (record, answer), compared by identity (records are immutable; one slot, so at most one old
# record is kept alive).
_last_metastatic: tuple[PatientRecord | None, tuple[Exposure, ...]] = (None, ())
_last_current: tuple[PatientRecord | None, tuple[Exposure, ...]] = (None, ())


def metastatic_exposures(record: PatientRecord) -> tuple[Exposure, ...]:
    global _last_metastatic
    seen, answer = _last_metastatic
    if seen is record:
        return answer
    early = set(record.early_exposures)
    answer = tuple(e for e in record.exposures if e not in early)
    _last_metastatic = (record, answer)
    return answer


def current_exposures(record: PatientRecord) -> tuple[Exposure, ...]:
    """Anticancer exposures running now: the metastatic courses the mappers found ongoing.

    One definition of "ongoing" everywhere (CLINICAL.md 2.5): the mappers decide it (an active
    statement or order with no end in the past, or a last dose within the dosing interval plus
    grace, with nothing recorded stopping it) and set `end` to None; the rules only read that.
    """
    global _last_current
    seen, answer = _last_current
    if seen is record:
        return answer
    answer = tuple(e for e in metastatic_exposures(record) if e.ongoing and e.start <= record.as_of)
    _last_current = (record, answer)
    return answer


def current_drugs(record: PatientRecord) -> set[str]:
    return {e.drug for e in current_exposures(record)}


def line_exposures(record: PatientRecord, line: TherapyLine) -> tuple[Exposure, ...]:
    ids = set(line.source_ids)
    return tuple(e for e in metastatic_exposures(record) if ids & set(e.source_ids))


def tki_drugs(drugs: set[str] | tuple[str, ...], kb: Knowledge) -> list[str]:
    return sorted(d for d in drugs if (info := kb.drug(d)) and info.drug_class == "her2-tki")


def _early_relapse(
    record: PatientRecord, kb: Knowledge
) -> tuple[bool, float | None, list[str], frozenset[str], tuple[str, ...]]:
    """CLINICAL.md section 2 rule 6: metastatic disease within the threshold of the last
    (neo)adjuvant HER2-directed dose (parameters.yaml agents.early_relapse: trastuzumab,
    pertuzumab, T-DM1, T-DXd, neratinib) is one prior line; those agents count as received and
    failed, so a relapse soon after adjuvant T-DM1 gets T-DXd, neither THP nor T-DM1 again."""
    agents = kb.agents("early_relapse")
    adjuvant = [e for e in record.early_exposures if e.drug in agents]
    if not adjuvant:
        return False, None, [], frozenset(), ()
    if record.metastatic_since is None:
        return (
            False,
            None,
            [
                "(Neo)adjuvant anti-HER2 therapy is recorded but the date of metastatic disease "
                "is not: whether this is an early relapse could not be judged."
            ],
            frozenset(),
            (),
        )
    met = record.metastatic_since
    last_end = max((e.end or met) for e in adjuvant)
    only_trastuzumab = {e.drug for e in adjuvant} == {"trastuzumab"}
    key = "early_relapse_months_trastuzumab_only" if only_trastuzumab else "early_relapse_months"
    threshold = float(kb.param("lines", key))
    months = months_between(last_end, met)
    drugs = " + ".join(sorted({e.drug for e in adjuvant}))
    ids = tuple(s for e in adjuvant for s in e.source_ids)
    rule = f"threshold {threshold:g} months, parameter lines.{key}"
    if months <= threshold:
        when = (
            "while it was still being given"
            if last_end >= met
            else f"{months:.1f} months after the last dose"
        )
        return (
            True,
            threshold,
            [
                f"Metastatic disease {when} of (neo)adjuvant {drugs} ({rule}): early relapse, "
                "counted as one prior HER2-directed line (trastuzumab-refractory); "
                f"{drugs} counted as received."
            ],
            frozenset(e.drug for e in adjuvant),
            ids,
        )
    return (
        False,
        threshold,
        [
            f"Metastatic disease {months:.1f} months after (neo)adjuvant {drugs} ({rule}): "
            "late relapse, first-line rules apply."
        ],
        frozenset(),
        ids,
    )


def history(record: PatientRecord, kb: Knowledge) -> History:
    her2_lines = [ln for ln in record.lines if ln.her2_directed]
    early_relapse, threshold, reasons, refractory, relapse_ids = _early_relapse(record, kb)
    prior = len(her2_lines) + (1 if early_relapse else 0)
    counted_early = kb.agents("early_setting_received")
    early_received = {e.drug for e in record.early_exposures if e.drug in counted_early}
    received = frozenset(
        {e.drug for e in metastatic_exposures(record)} | early_received | refractory
    )
    for drug in sorted(early_received):
        reasons.append(f"{drug} given in the early setting counts as already received.")
    failed = frozenset(
        {d for ln in record.lines if ln.ended_in_progression for d in ln.drugs}
        | {e.drug for e in record.exposures if e.stopped_for_progression}
        | refractory
    )
    failed = frozenset(d for d in failed if kb.is_her2_directed(d))
    last = record.lines[-1] if record.lines else None
    continuing = False
    if last is not None and last.ongoing:
        progressed = last.ended_in_progression or any(
            p.date > last.start for p in record.progressions
        )
        continuing = not progressed
    return History(
        prior_her2_lines=prior,
        early_relapse=early_relapse,
        relapse_threshold=threshold,
        received=received,
        failed=failed,
        last_line=last,
        continuing=continuing,
        reasons=tuple(reasons),
        source_ids=relapse_ids,
        refractory=refractory,
    )
