"""Receptor status (HER2, ER, PR) from all results: which one decides, and which conflict.

Rules (CLINICAL.md section 1): the latest valid result wins; a result on a metastatic biopsy
outranks one on the primary tumour (biology can change, and the metastasis is the disease being
treated); IHC 2+ is equivocal unless an ISH result of the same or a later date is positive (a
negative ISH makes it negative). Results that disagree with the deciding one are kept as
conflicts, so a card can say so.

HER2 discordance (CLINICAL.md section 1): when a primary tumour and a metastasis disagree, the
guidelines consider HER2-directed therapy if any specimen was positive. A positive primary with
a negative metastasis therefore stays HER2-positive ("loss", decided by the positive primary);
a negative primary with a positive metastasis is HER2-positive ("conversion"). Both keep the two
results that disagree, so a card can name them and ask for tumour-board review.
"""

from __future__ import annotations

from dataclasses import replace
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
    return ReceptorAssessment(
        status=basis.status,
        basis=basis,
        results=tuple(ordered),
        conflicts=_conflicts(ordered, basis),
    )


def _conflicts(ordered: list[ReceptorResult], basis: ReceptorResult) -> tuple[ReceptorResult, ...]:
    return tuple(
        r
        for r in ordered
        if r.status in _DEFINITIVE and basis.status in _DEFINITIVE and r.status is not basis.status
    )


def _earlier_specimen(
    results: tuple[ReceptorResult, ...], status: ReceptorStatus, metastatic: ReceptorResult
) -> ReceptorResult | None:
    """The latest result of `status` on another specimen than the deciding metastatic one: the
    primary tumour, or a result whose specimen is not stated dated before the metastatic biopsy
    (in practice the diagnostic biopsy or a HER2-positive carcinoma diagnosis)."""
    primary = [r for r in results if r.status is status and r.specimen is Specimen.PRIMARY]
    if primary:
        return primary[0]  # `results` are newest first
    before = metastatic.date
    unstated = [
        r
        for r in results
        if r.status is status
        and r.specimen is Specimen.UNKNOWN
        and before is not None
        and r.date is not None
        and r.date < before
    ]
    return unstated[0] if unstated else None


def assess_her2(results: list[ReceptorResult]) -> ReceptorAssessment:
    """HER2 status as assess_receptor decides it, then primary/metastasis discordance."""
    found = assess_receptor(results)
    basis = found.basis
    if basis is None or basis.specimen is not Specimen.METASTATIC:
        return found  # no metastatic result decides: nothing to be discordant with
    pos, neg = ReceptorStatus.POSITIVE, ReceptorStatus.NEGATIVE
    ordered = found.results
    if basis.status is pos:
        primary = _earlier_specimen(ordered, neg, basis)
        if primary is None:
            return found
        return replace(found, discordance="conversion", discordant=(primary, basis))
    if basis.status is neg:
        primary = _earlier_specimen(ordered, pos, basis)
        if primary is None:
            return found
        return replace(
            found,
            status=pos,
            basis=primary,
            conflicts=_conflicts(list(ordered), primary),
            discordance="loss",
            discordant=(primary, basis),
        )
    return found
