"""Receptor status (HER2, ER, PR) from all results: which one decides, and which conflict.

Rules (CLINICAL.md section 1): the latest valid result wins; a result on a metastatic biopsy
outranks one on the primary tumour (biology can change, and the metastasis is the disease being
treated); IHC 2+ is equivocal unless an ISH result of the same or a later date is positive (a
negative ISH makes it negative). Results that disagree with the deciding one are kept as
conflicts, so a card can say so.
"""

from __future__ import annotations

from datetime import date

from engine.model import ReceptorAssessment, ReceptorResult, ReceptorStatus, Specimen

_DEFINITIVE = (ReceptorStatus.POSITIVE, ReceptorStatus.NEGATIVE)
# On the same day, an ISH result is more specific than an interpretation, which is more
# specific than an IHC score, which is more specific than a diagnosis on the problem list.
# The same rank reads an Observation coded as two methods (observations.py).
METHOD_RANK = {"ish": 3, "interpretation": 2, "ihc": 1, "condition": 0}


def _key(r: ReceptorResult) -> tuple[date, int, str]:
    return (r.date or date.min, METHOD_RANK.get(r.method, 0), r.source_id)


def assess_receptor(results: list[ReceptorResult]) -> ReceptorAssessment:
    """Decide the status from all results of one receptor (order of `results` is irrelevant)."""
    if not results:
        return ReceptorAssessment()
    ordered = sorted(results, key=_key, reverse=True)
    candidates = ordered
    if any(r.specimen is Specimen.METASTATIC for r in ordered):
        candidates = [r for r in ordered if r.specimen is not Specimen.PRIMARY]
    basis = candidates[0]
    if basis.status is ReceptorStatus.EQUIVOCAL:
        ish = [
            r
            for r in candidates
            if r.method == "ish"
            and r.status in _DEFINITIVE
            and (r.date or date.min) >= (basis.date or date.min)
        ]
        if ish:
            basis = ish[0]
    conflicts = tuple(
        r
        for r in ordered
        if r.status in _DEFINITIVE and basis.status in _DEFINITIVE and r.status is not basis.status
    )
    return ReceptorAssessment(
        status=basis.status, basis=basis, results=tuple(ordered), conflicts=conflicts
    )
