"""HR-positive maintenance (CLINICAL.md section 3): endocrine therapy joins antibody maintenance
after chemotherapy induction, never at the same time as chemotherapy."""

from __future__ import annotations

from engine.history import History, line_exposures
from engine.knowledge import Knowledge
from engine.model import PatientRecord, ReceptorStatus, RegimenOption


def _classes(kb: Knowledge, drugs: set[str], cls: str) -> set[str]:
    return {d for d in drugs if (info := kb.drug(d)) and info.drug_class == cls}


def maintenance_advice(
    record: PatientRecord, kb: Knowledge, hist: History, preferred: RegimenOption
) -> tuple[str, ...]:
    """What to do about endocrine therapy now, and with the recommended regimen."""
    if record.er.status is ReceptorStatus.UNKNOWN and record.pr.status is ReceptorStatus.UNKNOWN:
        return (
            "Hormone-receptor status (ER/PR) is not recorded: endocrine maintenance could not be "
            "assessed.",
        )
    if not record.hr_positive:
        return ()
    advice: list[str] = []
    antibodies = kb.agents("maintenance_antibodies")
    last = hist.last_line
    if hist.continuing and last is not None:
        exposures = line_exposures(record, last)
        running = {e.drug for e in exposures if e.ongoing}
        chemo_running = _classes(kb, running, "chemotherapy")
        endocrine_running = _classes(kb, running, "endocrine")
        on_antibodies = bool(running & antibodies)
        # endocrine therapy of this line no longer given: said, never "add endocrine therapy"
        # over it (outside review, first pass 5: anastrozole on record, "add" advised)
        stopped: dict[str, str] = {}
        for e in exposures:
            if e.end is not None and e.drug not in running and e.drug_class == "endocrine":
                # an order whose supply ran out: the day it was written, and the supply's end
                # (fourth outside review C-n3: the supply's end was called "last recorded")
                said = (
                    f"last prescribed {e.supply_from.isoformat()}, supply to ~{e.end.isoformat()}"
                    if e.supply_from is not None
                    else f"last recorded {e.end.isoformat()}"
                )
                stopped[e.drug] = max(stopped.get(e.drug, ""), said)
        if on_antibodies and stopped and not endocrine_running:
            named = ", ".join(f"{d} ({said})" for d, said in sorted(stopped.items()))
            advice.append(
                f"HR-positive: {named} was added to the antibody maintenance but is not "
                "recorded as given since, and no stop reason or progression is recorded: "
                "confirm whether it goes on; resume it, or record why it stopped, before "
                "choosing another endocrine therapy."
            )
        elif on_antibodies and chemo_running and not endocrine_running:
            advice.append(
                f"HR-positive: add endocrine therapy to the antibody maintenance when "
                f"{', '.join(sorted(chemo_running))} stops, not at the same time."
            )
        elif on_antibodies and not chemo_running and not endocrine_running:
            advice.append(
                "HR-positive: chemotherapy induction has ended; add endocrine therapy (e.g. an "
                "aromatase inhibitor) to the "
                + " + ".join(sorted(running & antibodies))
                + " maintenance."
            )
        elif endocrine_running and not chemo_running:
            advice.append(
                "HR-positive: endocrine therapy has been added to the maintenance, as recommended."
            )
    induction = [d for d in preferred.regimen.drugs if (i := kb.drug(d)) and i.family == "taxane"]
    if induction:
        advice.append(
            f"HR-positive: with {preferred.regimen.name}, add endocrine therapy to the HER2-directed "
            "maintenance once chemotherapy stops; never give chemotherapy and endocrine therapy "
            "together."
        )
    return tuple(advice)
