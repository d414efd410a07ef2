"""Regimen orders that fit this patient: antibody re-loading after a gap, and no endocrine agent
that already failed (outside clinical review, second pass N11).

Trastuzumab and pertuzumab start with their loading dose unless the last recorded dose of the
same plain drug is recent enough for the label's "give the usual maintenance dose" (drugs.yaml
`reload`). An endocrine component is never an agent the disease progressed on: the seeds name no
next endocrine agent, so the class is named and the regimen is not one click away.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from engine.knowledge import Knowledge
from engine.model import Component, PatientRecord, Regimen

ENDOCRINE = "endocrine"
ENDOCRINE_PLACEHOLDER = "an endocrine agent not yet received"


@dataclass(frozen=True)
class Dosed:
    """The regimen as this patient's orders would give it, with what was changed and why."""

    regimen: Regimen
    notes: tuple[str, ...] = ()
    not_orderable: str = ""  # why no one-click order can carry it ("" when it can)


def last_dose(record: PatientRecord, drug: str) -> tuple[date | None, bool]:
    """(the last recorded dose of this plain drug, or None when unknown; whether it was given).

    A course claimed active with no dose date makes the last dose unknown."""
    courses = [e for e in record.exposures if e.drug == drug and e.start <= record.as_of]
    if not courses:
        return None, False
    if any(e.ongoing and e.last_dose is None for e in courses):
        return None, True
    dates = [d for e in courses if (d := e.last_dose or e.end) is not None]
    return (min(max(dates), record.as_of) if dates else None), True


def _name(kb: Knowledge, drug: str) -> str:
    info = kb.drug(drug)
    return (info.short or info.name) if info else drug


def _reload(
    record: PatientRecord, kb: Knowledge, comp: Component, now: bool
) -> tuple[Component, str]:
    rule = kb.reload.get(comp.drug)
    if rule is None:
        return comp, ""
    load, keep, unit = float(rule["loading_dose"]), float(rule["maintenance_dose"]), rule["unit"]
    loaded = replace(
        comp,
        dose=f"{load:g} {unit} loading, then {keep:g} {unit}",
        loading_dose_value=load,
        dose_value=keep,
        dose_unit=unit,
    )
    last, given = last_dose(record, comp.drug)
    if not given:
        return loaded, ""
    if last is None:
        return loaded, (
            f"{comp.drug}: date of the last dose not recorded, so the order starts with the "
            f"{load:g} {unit} loading dose ({rule['label']} label: re-load when {rule['when']})"
        )
    gap = (record.as_of - last).days
    if gap >= int(rule["reload_from_days"]):
        return loaded, (
            f"{comp.drug} last given on {last.isoformat()} ({gap} days ago), {rule['when']}: "
            f"re-load {load:g} {unit}, then {keep:g} {unit} ({rule['label']} label)"
        )
    if not now:
        return comp, ""
    kept = replace(comp, dose=f"{keep:g} {unit}", loading_dose_value=None, dose_value=keep)
    return kept, (
        f"{comp.drug} last given on {last.isoformat()} ({gap} days ago), on schedule: "
        f"{keep:g} {unit} without a re-load ({rule['label']} label: re-load only when "
        f"{rule['when']})"
    )


def endocrine_failed(
    record: PatientRecord, kb: Knowledge, failing: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Endocrine agents the disease progressed on (drug -> where), `failing` counted too (the
    drugs of the ongoing line, when the next line is for progression on it)."""
    out: dict[str, str] = {}
    for ln in record.lines:
        if ln.ended_in_progression:
            for d in ln.drugs:
                out.setdefault(d, f"disease progressed on it in line {ln.number}")
    for e in record.exposures:
        if e.stopped_for_progression:
            out.setdefault(e.drug, "stopped for progression")
    for d in failing:
        out.setdefault(d, "part of the current line, which the next line follows")
    return {d: w for d, w in out.items() if (i := kb.drug(d)) and i.drug_class == ENDOCRINE}


def dosed(
    record: PatientRecord,
    kb: Knowledge,
    regimen: Regimen,
    now: bool,
    failing: frozenset[str] = frozenset(),
) -> Dosed:
    """The regimen's components re-loaded as the labels say, its endocrine agent never a failed
    one (`now`: the order would be placed today; otherwise only a needed re-load is added)."""
    notes: list[str] = []
    comps: list[Component] = []
    not_orderable = ""
    failed = endocrine_failed(record, kb, failing)
    for comp in regimen.components:
        info = kb.drug(comp.drug)
        if info is not None and info.drug_class == ENDOCRINE and comp.drug in failed:
            # CLINICAL.md and the seeds name no next endocrine agent: say the class, never
            # order one that failed
            why = "; ".join(f"{_name(kb, d)}: {w}" for d, w in sorted(failed.items()))
            comps.append(
                Component(
                    drug=ENDOCRINE_PLACEHOLDER,
                    dose="(chosen by the clinician)",
                    route="",
                    schedule="",
                )
            )
            notes.append(f"endocrine agent: {ENDOCRINE_PLACEHOLDER} (not {why})")
            not_orderable = (
                f"the endocrine agent must be one not yet received ({why}); choose it by hand"
            )
            continue
        comp2, note = _reload(record, kb, comp, now)
        comps.append(comp2)
        if note and comp2 != comp:  # said only where the order differs from the regimen's
            notes.append(note)
    if tuple(comps) == regimen.components:
        return Dosed(regimen, tuple(notes), not_orderable)
    return Dosed(replace(regimen, components=tuple(comps)), tuple(notes), not_orderable)


def reload_note(record: PatientRecord, kb: Knowledge, drug: str) -> str:
    """Why resuming this drug needs its loading dose again ("" when not), worded as the orders'
    re-load note (third outside review, C8: "resume trastuzumab" after a long gap)."""
    plain = Component(drug=drug, dose="", route="", schedule="")
    comp, note = _reload(record, kb, plain, False)
    return note if comp != plain else ""
