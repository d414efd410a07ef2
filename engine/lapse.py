"""HER2-directed drugs of the latest line that stopped with no progression recorded.

CLINICAL.md section 2 rule 5 (a line records its stop reason) and section 4
(her2-blockade-stopped): when the HER2-directed drugs of the current line are no longer given
(no dose within their ongoing window) and no progression is recorded, or the whole line stopped
with no reason, the advice is not "continue the line" and not a silent switch: the cards name
each stopped drug with its last dose, say the reason is not recorded, and ask why (progression:
the next line now; toxicity or a break: resume them). One helper, so the next-line card, the
warning and the order checks word it alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from engine.history import current_exposures, line_exposures
from engine.knowledge import Knowledge
from engine.model import Exposure, PatientRecord, ReceptorStatus, Recommendation, TherapyLine
from engine.regimen_doses import reload_note

# What the record says about why a drug stopped. A stop for progression (statusReason
# 266721009) makes the line progressed, so no lapse; another recorded reason (statusReason or
# mCODE termination reason) is quoted; none is "reason not recorded".
NOT_RECORDED = "reason not recorded"


@dataclass(frozen=True)
class StoppedDrug:
    """A HER2-directed drug of the line with no dose since `last`."""

    drug: str
    last: date
    source_ids: tuple[str, ...]
    reason: str = NOT_RECORDED
    prescribed: date | None = None  # its last order, whose supply ran out on `last`

    def said(self) -> str:
        """ "last dose on 2026-09-25", or for a supply that ran out "no new prescription or
        dose since 2026-10-23 (supply to ~2026-11-13)" (third outside review, M1)."""
        if self.prescribed is None:
            return f"last dose on {self.last.isoformat()}"
        return (
            f"no new prescription or dose since {self.prescribed.isoformat()}, "
            f"supply to ~{self.last.isoformat()}"
        )


@dataclass(frozen=True)
class Lapse:
    """The latest line's HER2-directed drugs that stopped without progression on record."""

    line: TherapyLine
    stopped: tuple[StoppedDrug, ...]
    still: tuple[str, ...]  # drugs of the line still given (none when the whole line stopped)
    whole_line: bool  # the line itself ended, no reason recorded, nothing HER2-directed since
    blockade_left: bool  # a HER2-directed drug of the line is still given
    # (drug still given, its trial) when the stopped drugs are the partner it was studied only
    # with (parameters.yaml requires_partner; third outside review, M3)
    partner: tuple[str, str] | None = None
    reloads: tuple[str, ...] = ()  # the re-load each resumed antibody needs (regimen_doses)
    # stopped drugs never to resume: agents.ild_excluded with ILD on record (CLINICAL.md 3:
    # never re-challenge T-DXd, also when it was given and stopped)
    never_resume: tuple[str, ...] = ()

    @property
    def since(self) -> date:
        """The day each stopped drug was last recorded (an order's written day, not its supply)."""
        return max(s.prescribed or s.last for s in self.stopped)

    @property
    def names(self) -> str:
        """ "trastuzumab and tucatinib" """
        drugs = [s.drug for s in self.stopped]
        return drugs[0] if len(drugs) == 1 else f"{', '.join(drugs[:-1])} and {drugs[-1]}"

    @property
    def pronoun(self) -> str:
        return "it" if len(self.stopped) == 1 else "they"

    @property
    def reason(self) -> str:
        """ "reason not recorded" unless every stopped drug has a recorded reason."""
        if all(s.reason != NOT_RECORDED for s in self.stopped):
            return "reason recorded"
        return NOT_RECORDED

    @property
    def action(self) -> str:
        if self.verb == "not renewed":
            return "confirm the course continues"
        return "ask why" if self.reason == NOT_RECORDED else "review"

    @property
    def resume(self) -> str:
        """ "trastuzumab + tucatinib", with the re-load a long gap needs (third review, C8);
        never a drug of `never_resume`."""
        drugs = " + ".join(s.drug for s in self.stopped if s.drug not in self.never_resume)
        return f"{drugs}, re-loading: {'; '.join(self.reloads)}" if self.reloads else drugs

    def resume_clause(self, gerund: bool = False) -> str:
        """ "resume trastuzumab + tucatinib" ("resuming ..."), or, with ILD on record, never
        T-DXd again (fifth outside review, F1: the card offered to resume it)."""
        verb = "resuming" if gerund else "resume"
        if not self.never_resume:
            return f"{verb} {self.resume}"
        never = " + ".join(self.never_resume)
        why = "interstitial lung disease is on record"
        if all(s.drug in self.never_resume for s in self.stopped):
            no = "not resuming" if gerund else "do not resume"
            return f"{no} {never}: {why} (never re-challenge)"
        return f"{verb} {self.resume} (not {never}: {why})"

    @property
    def last(self) -> date:
        return max(s.last for s in self.stopped)

    @property
    def verb(self) -> str:
        """ "stopped", or "not renewed" when only the supply of each order ran out."""
        return "not renewed" if all(s.prescribed for s in self.stopped) else "stopped"

    def listed(self) -> str:
        """ "trastuzumab (last dose on 2026-09-25, reason not recorded), ..." """
        return ", ".join(f"{s.drug} ({s.said()}, {s.reason})" for s in self.stopped)

    @property
    def source_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i for s in self.stopped for i in s.source_ids))


def _progressed(record: PatientRecord, line: TherapyLine) -> bool:
    return line.ended_in_progression or any(p.date > line.start for p in record.progressions)


def line_lapse(record: PatientRecord, kb: Knowledge) -> Lapse | None:
    """The lapse of the latest line, if its HER2-directed drugs (some or all) stopped with no
    progression recorded; None otherwise (and for a line ended by a later one or by progression)."""
    if record.her2.status is not ReceptorStatus.POSITIVE or not record.metastatic:
        return None
    line = record.lines[-1] if record.lines else None
    if line is None or not line.her2_directed or _progressed(record, line):
        return None
    exposures = line_exposures(record, line)
    her2 = [e for e in exposures if kb.is_her2_directed(e.drug)]
    if line.ongoing:
        still = sorted({e.drug for e in exposures if e.ongoing})
        going = {kb.family(d) for d in still}
        ended = [e for e in her2 if e.end is not None and kb.family(e.drug) not in going]
        whole = False
    else:
        if any(kb.is_her2_directed(e.drug) for e in current_exposures(record)):
            return None
        if line.stop_reason is None or line.stop_reason.startswith("line "):
            return None
        still, ended, whole = [], her2, True
    last: dict[str, StoppedDrug] = {}
    for e in ended:
        day = e.end or e.start
        seen = last.get(e.drug)
        if seen is None or day > seen.last:
            ids = (*(seen.source_ids if seen else ()), *e.source_ids)
            why = f"stop reason recorded: {e.stop_reason}" if e.stop_reason else NOT_RECORDED
            last[e.drug] = StoppedDrug(e.drug, day, ids, why, e.supply_from)
    partner = None
    if not last and line.ongoing:
        partner, ended = _partner_lapse(kb, exposures, still)
        last = {e.drug: _stopped_drug(e) for e in ended}
    if not last:
        return None
    return Lapse(
        line=line,
        stopped=tuple(sorted(last.values(), key=lambda s: (s.last, s.drug))),
        still=tuple(still),
        whole_line=whole,
        blockade_left=any(kb.is_her2_directed(d) for d in still),
        partner=partner,
        reloads=tuple(n for d in sorted(last) if (n := reload_note(record, kb, d))),
        never_resume=tuple(
            sorted(set(last) & kb.agents("ild_excluded")) if record.conditions_of("ild") else ()
        ),
    )


def _stopped_drug(e: Exposure) -> StoppedDrug:
    why = f"stop reason recorded: {e.stop_reason}" if e.stop_reason else NOT_RECORDED
    return StoppedDrug(e.drug, e.end or e.start, e.source_ids, why, e.supply_from)


def _partner_lapse(
    kb: Knowledge, exposures: Sequence[Exposure], still: Sequence[str]
) -> tuple[tuple[str, str] | None, list[Exposure]]:
    """A drug still given that was studied only with a partner class (requires_partner) whose
    drugs of the line all ended: (that drug, its trial) and the partner's last courses."""
    needs: dict[str, dict[str, str]] = kb.parameters.get("requires_partner", {})
    for drug in still:
        rule = needs.get(drug)
        if rule is None:
            continue
        partners = [e for e in exposures if e.drug_class == rule["partner_class"]]
        if partners and not any(e.ongoing for e in partners):
            latest: dict[str, Exposure] = {}
            for e in partners:
                if e.drug not in latest or (e.end or e.start) > (
                    latest[e.drug].end or latest[e.drug].start
                ):
                    latest[e.drug] = e
            return (drug, rule["trial"]), list(latest.values())
    return None, []


def next_words(next_line: int | None, regimen: str | None) -> str:
    """ "line 3 (T-DM1)", or "the next line" when no regimen is chosen."""
    if next_line is None:
        return "the next line"
    return f"line {next_line} ({regimen})" if regimen else f"line {next_line}"


def ask_why(lapse: Lapse, next_line: int | None, regimen: str | None) -> str:
    """The question the clinician must answer (CLINICAL.md section 2 rule 5, section 4)."""
    going = ""
    if any(s.prescribed for s in lapse.stopped):
        going = f"if {lapse.pronoun} goes on, record the new prescription; "
    return going + (
        f"if {lapse.pronoun} stopped for progression, record the progression and start "
        f"{next_words(next_line, regimen)} now; if for toxicity or a break, {lapse.resume_clause()}"
    )


def status_reason(lapse: Lapse | None, last: TherapyLine, next_line: int, regimen: str) -> str:
    """The "Why this regimen" sentence on the status of the latest ongoing line."""
    if lapse is None or lapse.whole_line:
        return (
            f"Line {last.number} ({last.regimen_name}) is ongoing with no progression recorded: "
            "continue it until progression or unacceptable toxicity; the regimen below is for "
            "the next line, on progression."
        )
    return (
        f"Review line {last.number}: no progression is recorded, but {lapse.listed()} "
        f"{lapse.verb}. "
        f"Ask why: {ask_why(lapse, next_line, regimen)}. The regimen below is line {next_line}."
    )


def what_would_change(lapse: Lapse | None, last: TherapyLine, next_line: int, regimen: str) -> str:
    """The "What would change this advice" sentence on the status of the latest line."""
    if lapse is None:
        return (
            f"Documented progression on line {last.number} ({last.regimen_name}) moves the "
            f"recommendation from continuing it to starting line {next_line} now."
        )
    return (
        f"Why {lapse.names} stopped: progression makes line {next_line} ({regimen}) due now; "
        f"toxicity or a break means {lapse.resume_clause(gerund=True)} instead."
    )


def on_hold(
    rec: Recommendation, record: PatientRecord, kb: Knowledge, holding: tuple[tuple[str, str], ...]
) -> Recommendation:
    """When warnings hold every HER2-directed drug still given in the ongoing line, the line is
    reviewed, not continued (second outside review, N9): the status sentences say so."""
    last = record.lines[-1] if record.lines else None
    if rec.timing != "on-progression" or last is None or not last.ongoing or not holding:
        return rec
    held = {d.strip() for drugs, _ in holding for d in drugs.split(",")}
    her2 = sorted(d for d in (last.current_drugs or last.drugs) if kb.is_her2_directed(d))
    if not her2 or not set(her2) <= held:
        return rec
    cards = " and the ".join(dict.fromkeys(card for _, card in holding))
    drugs = " + ".join(her2)
    regimen = kb.regimens[rec.preferred.regimen.id].short
    nxt = rec.line
    old_reason = status_reason(None, last, nxt, regimen)
    new_reason = (
        f"Review line {last.number} ({last.regimen_name}): the {cards} card says to hold "
        f"{drugs}, which leaves no HER2-directed drug of the line given; no progression is "
        f"recorded. Resume {drugs} once the reason to hold is resolved; on progression, "
        f"line {nxt} ({regimen})."
    )
    old_change = what_would_change(None, last, nxt, regimen)
    new_change = (
        f"Resolving the reason to hold {drugs} (see the {cards} card) allows resuming line "
        f"{last.number}; documented progression makes line {nxt} ({regimen}) due now."
    )
    return replace(
        rec,
        reasons=tuple(new_reason if r == old_reason else r for r in rec.reasons),
        changes_advice=tuple(new_change if c == old_change else c for c in rec.changes_advice),
    )
