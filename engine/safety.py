"""Safety warnings (CLINICAL.md section 4) on the patient picture and the recommendation."""

from __future__ import annotations

from engine.knowledge import Knowledge
from engine.model import Alert, Coding, PatientRecord, ReceptorStatus, Recommendation, Specimen

OVERRIDE_SYSTEM = "http://her2cds.org/CodeSystem/override-reason"


def override(code: str, display: str) -> Coding:
    return Coding(OVERRIDE_SYSTEM, code, display)


def current_drugs(record: PatientRecord) -> set[str]:
    """Drugs of the ongoing line, if any."""
    if record.lines and record.lines[-1].ongoing:
        return set(record.lines[-1].drugs)
    return set()


def ild_alert(record: PatientRecord, kb: Knowledge, rec: Recommendation | None) -> Alert | None:
    ild = record.conditions_of("ild")
    if not ild:
        return None
    on_tdxd = "fam-trastuzumab deruxtecan" in current_drugs(record)
    replaced = rec is not None and any(
        "fam-trastuzumab deruxtecan" in kb.regimens[rid].regimen.drugs
        for rid, _ in rec.excluded
        if rid in kb.regimens
    )
    if not (on_tdxd or replaced):
        return None
    names = ", ".join(sorted({c.display or c.concept for c in ild}))
    return Alert(
        rule="tdxd-ild",
        severity="critical" if on_tdxd else "warning",
        summary=(
            "T-DXd is active despite interstitial lung disease on record"
            if on_tdxd
            else "T-DXd not recommended: interstitial lung disease on record"
        ),
        detail=(
            f"Recorded: {names}. Interstitial lung disease / pneumonitis occurs in 10.5-13.6% of "
            "patients on trastuzumab deruxtecan, fatal (grade 5) in 2.2%. Patients with "
            "pre-existing ILD were excluded from the T-DXd trials; the label lists no formal "
            "contraindication. Use T-DM1 (ado-trastuzumab emtansine) in its place."
        ),
        source_ids=tuple(c.source_id for c in ild),
        evidence=tuple(
            kb.evidence[i] for i in ("tdxd-ild-pooled", "tdxd-label") if i in kb.evidence
        ),
        override_reasons=(
            override("ild-resolved", "ILD resolved / not drug-related, benefit outweighs risk"),
            override("pulmonology-cleared", "Cleared by pulmonology"),
        ),
    )


def her2_status_alert(record: PatientRecord) -> Alert | None:
    her2 = record.her2
    if her2.status is ReceptorStatus.POSITIVE and her2.basis is not None:
        if her2.basis.specimen is Specimen.METASTATIC:
            return None
        when = her2.basis.date.isoformat() if her2.basis.date else "an unknown date"
        return Alert(
            rule="her2-status",
            severity="info",
            summary="HER2 status is from the primary tumour only: consider re-biopsy",
            detail=(
                f"HER2 positive by {her2.basis.method} on {when}, not shown to be from a "
                "metastatic lesion. Receptor status can change between the primary tumour and "
                "metastases: re-biopsy an accessible metastatic lesion when feasible."
            ),
            source_ids=her2.source_ids,
        )
    return None


def alerts(record: PatientRecord, kb: Knowledge, rec: Recommendation | None) -> tuple[Alert, ...]:
    found = [a for a in (ild_alert(record, kb, rec), her2_status_alert(record)) if a is not None]
    return tuple(found)
