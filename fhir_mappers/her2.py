"""Receptor status (HER2, ER, PR) from all results: which one decides, and which conflict.

Rules (CLINICAL.md section 1): the latest valid result wins; a result on a metastatic biopsy
outranks an older one on the primary; IHC 2+ is equivocal unless an ISH result is positive.
"""

from __future__ import annotations

from datetime import date

from engine.model import ReceptorAssessment, ReceptorResult, ReceptorStatus, Specimen

_DEFINITIVE = (ReceptorStatus.POSITIVE, ReceptorStatus.NEGATIVE)
_METHOD_RANK = {"ish": 3, "interpretation": 2, "ihc": 1, "condition": 0}


def _key(r: ReceptorResult) -> tuple[int, date, int]:
    return (
        1 if r.specimen is Specimen.METASTATIC else 0,
        r.date or date.min,
        _METHOD_RANK.get(r.method, 0),
    )


def assess_receptor(results: list[ReceptorResult]) -> ReceptorAssessment:
    """Decide the status from all results of one receptor."""
    if not results:
        return ReceptorAssessment()
    ordered = sorted(results, key=_key, reverse=True)
    definitive = [r for r in ordered if r.status in _DEFINITIVE]
    basis = ordered[0]
    if basis.status is ReceptorStatus.EQUIVOCAL:
        # IHC 2+ is resolved by an ISH result of the same or a later date.
        ish = [
            r
            for r in definitive
            if r.method == "ish" and (r.date or date.min) >= (basis.date or date.min)
        ]
        if ish:
            basis = ish[0]
    conflicts = tuple(
        r for r in definitive if r.status is not basis.status and basis.status in _DEFINITIVE
    )
    return ReceptorAssessment(
        status=basis.status, basis=basis, results=tuple(ordered), conflicts=conflicts
    )
