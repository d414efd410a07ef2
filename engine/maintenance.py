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
        running = {e.drug for e in line_exposures(record, last) if e.ongoing}
        chemo_running = _classes(kb, running, "chemotherapy")
        endocrine_running = _classes(kb, running, "endocrine")
        on_antibodies = bool(running & antibodies)
        if on_antibodies and chemo_running and not endocrine_running:
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
