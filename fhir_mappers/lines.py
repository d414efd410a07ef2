"""Lines of therapy in the metastatic setting (CLINICAL.md section 2).

After the line-of-therapy algorithm of Meng et al. 2019, adapted to HER2-positive disease. The
parameters (regimen window, gap) come from engine/knowledge/parameters.yaml; which drug classes
start a new line or join antibody maintenance come from fhir_mappers/terminology/lines.yaml.

1. Only exposures in the metastatic setting count (the caller separates early-setting ones).
2. A line starts with the first drug; drugs first given within the window join its regimen.
3. Same line: dropping chemotherapy (maintenance), adding endocrine / CDK4/6 to antibodies,
   substitutions within a family (trastuzumab forms; paclitaxel/docetaxel/nab-paclitaxel).
4. New line: a new anti-HER2 agent (ADC, TKI, margetuximab) or a new chemotherapy partner after
   the window; any change after documented progression (even a substitution); a restart after
   a gap longer than `gap_new_line_days`.

Every line keeps the ids of the resources behind it and says why it starts (`start_reason`).
The result depends only on the set of exposures and progression events, never on their order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from engine.knowledge import Knowledge
from engine.model import Exposure, ProgressionEvent, TherapyLine
from fhir_mappers.line_rules import LineRules, load_line_rules


@dataclass
class _Building:
    start: date
    exposures: list[Exposure] = field(default_factory=list)
    reason: str = ""

    @property
    def drugs(self) -> set[str]:
        return {e.drug for e in self.exposures}

    @property
    def last_end(self) -> date | None:
        """When the line's last drug ended; None while any is ongoing."""
        if any(e.end is None for e in self.exposures):
            return None
        return max(e.end for e in self.exposures if e.end is not None)


def _why_new(
    exp: Exposure,
    line: _Building,
    progressions: list[ProgressionEvent],
    knowledge: Knowledge,
    rules: LineRules,
) -> str | None:
    """Why `exp` (first given after the regimen window) starts a new line, or None if it doesn't."""
    gap_days = int(knowledge.param("lines", "gap_new_line_days"))
    last_end = line.last_end
    if last_end is not None and (exp.start - last_end).days > gap_days:
        return f"restart after {(exp.start - last_end).days} days without therapy"
    window = knowledge.param("lines", "regimen_window_days")
    families = {knowledge.family(d) for d in line.drugs}
    same_drug = exp.drug in line.drugs or knowledge.family(exp.drug) in families
    progressed = [p for p in progressions if line.start < p.date <= exp.start]
    if progressed and exp.drug not in line.drugs:
        # After documented progression any change is a new line, even a substitution.
        return f"regimen changed after documented progression on {progressed[-1].date.isoformat()}"
    if same_drug:
        return None  # continuation or substitution within a family
    if exp.drug_class in rules.new_line_classes or exp.drug in rules.new_line_drugs:
        return f"new anti-HER2 agent {exp.drug}"
    if exp.drug_class in rules.new_partner_classes:
        return f"new chemotherapy partner {exp.drug} after day {window}"
    maintenance = knowledge.agents("maintenance_antibodies")  # parameters.yaml agents
    antibodies = line.drugs & maintenance
    if exp.drug_class in rules.add_on_classes and antibodies:
        return None  # endocrine / CDK4/6 added to antibody maintenance
    if exp.drug in maintenance and antibodies:
        return None  # pertuzumab added to trastuzumab (or the reverse)
    return f"new drug {exp.drug} after day {window}"


def regimen_for(drugs: set[str], knowledge: Knowledge) -> tuple[str | None, str]:
    """The named regimen a set of drugs matches (taxanes interchangeable), else a plain name."""
    families = {knowledge.family(d) for d in drugs}
    best: tuple[int, str, str] | None = None
    for rid, needed in knowledge.regimen_families.items():
        if needed <= families and (best is None or len(needed) > best[0]):
            best = (len(needed), rid, knowledge.regimens[rid].regimen.name)
    if best is not None and best[0] == len(families):
        return best[1], best[2]
    return None, " + ".join(sorted(drugs))


def build_lines(
    exposures: list[Exposure],
    progressions: list[ProgressionEvent],
    knowledge: Knowledge,
    rules: LineRules | None = None,
) -> tuple[TherapyLine, ...]:
    """Group metastatic exposures into numbered, non-overlapping lines (`rules`: the knowledge
    set's line rules; the cached load when not given, so existing callers keep working)."""
    return settle_lines(exposures, progressions, knowledge, rules or load_line_rules())[1]


def settle_lines(
    exposures: list[Exposure],
    progressions: list[ProgressionEvent],
    knowledge: Knowledge,
    rules: LineRules,
) -> tuple[list[Exposure], tuple[TherapyLine, ...]]:
    """(exposures, lines): the lines, and the exposures with those a later line replaced ended.

    A course ongoing only because its last dose is recent is stopped by a later line it was not
    given in (no dose on or after the new line's start): it ends at its last dose (CLINICAL.md
    2.5, "nothing recorded stopped it"). The lines are then built again from the settled courses.
    """
    progs = sorted(progressions, key=lambda p: (p.date, p.source_id))
    building, superseded = _group(exposures, progs, knowledge, rules)
    if superseded:
        exposures = [
            replace(e, end=e.last_dose or e.start, ongoing_basis="") if e in superseded else e
            for e in exposures
        ]
        building, _ = _group(exposures, progs, knowledge, rules)
    return exposures, tuple(_finish(building, progs, knowledge, rules))


def _group(
    exposures: list[Exposure], progs: list[ProgressionEvent], knowledge: Knowledge, rules: LineRules
) -> tuple[list[_Building], set[Exposure]]:
    window = int(knowledge.param("lines", "regimen_window_days"))
    ordered = sorted(exposures, key=lambda e: (e.start, e.drug, e.source_ids))
    building: list[_Building] = []
    superseded: set[Exposure] = set()
    for exp in ordered:
        if not building:
            building.append(
                _Building(exp.start, [exp], "first anticancer therapy in the metastatic setting")
            )
            continue
        line = building[-1]
        if (exp.start - line.start).days <= window:
            line.exposures.append(exp)
            continue
        why = _why_new(exp, line, progs, knowledge, rules)
        if why is None:
            line.exposures.append(exp)
            continue
        new = _Building(exp.start, [exp], why)
        # Drugs still running well into the new line (e.g. trastuzumab continued beyond
        # progression with a new partner) belong to the new line as well.
        for carried in line.exposures:
            if _replaced(carried, exp.start):
                superseded.add(carried)  # not given since the new line started
                continue
            if carried.end is None or carried.end > exp.start + timedelta(days=window):
                new.exposures.append(carried)
        building.append(new)
    return building, superseded


def _replaced(e: Exposure, new_start: date) -> bool:
    """Ongoing only by a recent dose, and not given since a new line started."""
    recent = e.ongoing and e.ongoing_basis == "recent dose"
    return recent and (e.last_dose is None or e.last_dose < new_start)


def _last_given(exposures: list[Exposure], before: date, claims: bool) -> date | None:
    """The last day any of them was given before `before` (claimed-active spans count as
    given up to the day before when `claims`)."""
    best: date | None = None
    for e in exposures:
        for first, last in e.spans or ((e.start, e.last_dose if e.end is None else e.end),):
            if first >= before or (last is None and not claims):
                continue
            day = (
                before - timedelta(days=1)
                if last is None
                else min(last, before - timedelta(days=1))
            )
            best = day if best is None else max(best, day)
    return best


def _short(
    antibodies: frozenset[str], knowledge: Knowledge, rules: LineRules, full: bool
) -> str | None:
    """The maintenance name of these antibodies (lines.yaml), full or short; None if none."""
    names = rules.maintenance_names if full else rules.maintenance_short
    for needed, name in names:
        if frozenset(knowledge.family(d) for d in needed) == antibodies:
            return name
    return None


def _stopped(b: _Building, still: set[str]) -> dict[str, date]:
    """Drugs of an ongoing line no longer given (no course of their family goes on), with the
    day each was last given."""
    out: dict[str, date] = {}
    for e in b.exposures:
        if e.end is not None and e.drug not in still:
            out[e.drug] = max(out.get(e.drug, e.end), e.end)
    return out


def _supply_from(b: _Building, drug: str, day: date) -> date | None:
    return next((e.supply_from for e in b.exposures if e.drug == drug and e.end == day), None)


def _stop_words(b: _Building, stopped: dict[str, date]) -> str:
    """ "tucatinib stopped 2026-09-25", or for orders whose supply ran out (drugs of one course
    together) "capecitabine, tucatinib not renewed since 2026-10-23, supply to ~2026-11-13"
    (third outside review, M1)."""
    words: dict[tuple[date | None, date], list[str]] = {}
    for d, day in sorted(stopped.items()):
        since = _supply_from(b, d, day)
        words.setdefault((since, day), []).append(d)
    return ", ".join(
        f"{', '.join(ds)} stopped {day.isoformat()}"
        if since is None
        else f"{', '.join(ds)} not renewed since {since.isoformat()}, supply to ~{day.isoformat()}"
        for (since, day), ds in sorted(words.items(), key=lambda kv: (kv[0][1], kv[1]))
    )


def _sequence_name(b: _Building, knowledge: Knowledge, rules: LineRules) -> str | None:
    """An ended line whose endocrine / CDK4/6 therapy began after its chemotherapy stopped,
    named in sequence ("THP then HP + letrozole maintenance"): never as if given together."""
    add_ons = [e for e in b.exposures if e.drug_class in rules.add_on_classes]
    chemo = [e for e in b.exposures if e.drug_class == "chemotherapy"]
    if not add_ons or not chemo or any(e.end is None for e in chemo):
        return None
    added = min(e.start for e in add_ons)
    if max(e.end or e.start for e in chemo) > added:
        return None  # given together: the name says so (and the concurrent warning fires)
    maintenance = knowledge.agents("maintenance_antibodies")
    with_add_on = frozenset(
        knowledge.family(e.drug)
        for e in b.exposures
        if e.drug in maintenance and (e.end is None or e.end >= added)
    )
    short = _short(with_add_on, knowledge, rules, full=False)
    if short is None:
        return None
    rid, induction = regimen_for(b.drugs - {e.drug for e in add_ons}, knowledge)
    if rid is not None:
        induction = knowledge.regimens[rid].short or induction
    extra = " + ".join(sorted({e.drug for e in add_ons}))
    return f"{induction} then {short} + {extra} maintenance"


def _ended_name(b: _Building, knowledge: Knowledge, rules: LineRules) -> tuple[str | None, str]:
    regimen_id, name = regimen_for(b.drugs, knowledge)
    return regimen_id, _sequence_name(b, knowledge, rules) or name


def _name(
    b: _Building, knowledge: Knowledge, rules: LineRules
) -> tuple[str | None, str, tuple[str, ...]]:
    """(regimen id, name, drugs still given): an ongoing line is named by what is still given
    (THP after its taxane stopped is HP maintenance, CLINICAL.md 2.5); a drug that stopped
    other than the chemotherapy of antibody maintenance is named with its last day."""
    drugs = b.drugs
    regimen_id, name = regimen_for(drugs, knowledge)
    if b.last_end is not None:
        return (*_ended_name(b, knowledge, rules), ())
    still = {e.drug for e in b.exposures if e.ongoing}
    if still == drugs:
        return regimen_id, name, tuple(sorted(still))
    stopped = _stopped(b, still)
    still_families = {knowledge.family(d) for d in still}
    stopped = {d: day for d, day in stopped.items() if knowledge.family(d) not in still_families}
    classes = {e.drug: e.drug_class for e in b.exposures}
    add_ons = sorted(d for d in still if classes[d] in rules.add_on_classes)
    maintenance = knowledge.agents("maintenance_antibodies")
    antibodies = frozenset(knowledge.family(d) for d in still if d in maintenance)
    name = regimen_for(still, knowledge)[1]
    if still <= maintenance | set(add_ons):
        # chemotherapy dropped while antibodies (or endocrine therapy) go on: maintenance
        # (CLINICAL.md 2.3), not worth a word
        # (unless its order ran out with a stopped drug's: one course, judged together)
        together = {
            _supply_from(b, d, day) for d, day in stopped.items() if classes[d] != "chemotherapy"
        }
        together.discard(None)
        stopped = {
            d: day
            for d, day in stopped.items()
            if classes[d] != "chemotherapy" or _supply_from(b, d, day) in together
        }
        base = _short(antibodies, knowledge, rules, full=not add_ons) if antibodies else None
        if base is not None:
            name = f"{base} + {' + '.join(add_ons)} maintenance" if add_ons else base
    if stopped:
        name += "; " + _stop_words(b, stopped)
    return regimen_id, name, tuple(sorted(still))


def _finish(
    building: list[_Building], progs: list[ProgressionEvent], knowledge: Knowledge, rules: LineRules
) -> list[TherapyLine]:
    lines: list[TherapyLine] = []
    for i, b in enumerate(building):
        nxt = building[i + 1] if i + 1 < len(building) else None
        end = b.last_end
        last_dose = max((e.last_dose for e in b.exposures if e.last_dose), default=None)
        if nxt is not None:
            # A line a later line replaced ends at its last dose before the new line.
            end = _last_given(b.exposures, nxt.start, True) or b.start
            end = max(end, b.start)
            last_dose = _last_given(b.exposures, nxt.start, False)
        upper = nxt.start if nxt is not None else date.max
        in_line = [p for p in progs if b.start < p.date <= upper]
        # A course stopped for no response counts for the line in which it stopped (a course
        # carried over from the previous line may have stopped in this one, or vice versa).
        progressed = bool(in_line) or any(
            e.stopped_for_progression and b.start <= (e.end or e.start) <= upper
            for e in b.exposures
        )
        drugs = b.drugs
        regimen_id, regimen_name, still = (
            _name(b, knowledge, rules) if nxt is None else (*_ended_name(b, knowledge, rules), ())
        )
        stop_reason: str | None = None
        if progressed:
            stop_reason = "progression"
        elif nxt is not None:
            stop_reason = f"line {i + 2} started ({nxt.reason})"
        elif end is not None:
            stop_reason = "stopped (reason not recorded)"
        sources = tuple(sorted({s for e in b.exposures for s in e.source_ids}))
        lines.append(
            TherapyLine(
                number=i + 1,
                start=b.start,
                end=end,
                drugs=tuple(sorted(drugs)),
                regimen_id=regimen_id,
                regimen_name=regimen_name,
                ended_in_progression=progressed,
                stop_reason=stop_reason,
                source_ids=sources,
                her2_directed=any(knowledge.is_her2_directed(d) for d in drugs),
                progression_ids=tuple(p.source_id for p in in_line),
                start_reason=b.reason,
                last_dose=last_dose,
                current_drugs=still,
            )
        )
    return lines
