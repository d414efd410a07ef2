"""Receptor status (HER2, ER, PR) from all results: which one decides, and which conflict.

Rules (CLINICAL.md section 1): the latest valid result wins; a result on a metastatic biopsy
outranks one on the primary tumour (biology can change, and the metastasis is the disease being
treated); IHC 2+ is equivocal unless an ISH result of the same or a later date is positive (a
negative ISH makes it negative). Results that disagree with the deciding one are kept as
conflicts, so a card can say so.

HER2 discordance (CLINICAL.md section 1): when results on different specimens disagree and one
of them is a metastasis, the guidelines consider HER2-directed therapy if any specimen was
positive. A positive primary (or earlier biopsy) with a negative metastasis therefore stays
HER2-positive ("loss", decided by the positive result); a positive metastasis after a negative
primary is HER2-positive ("conversion"). Both keep the two results that disagree, so a card can
name them and ask for tumour-board review. Two results are on different specimens when their
sites differ (primary, metastatic) or, when a site is not stated, when their dates differ; on
the same day a result of unstated site may be the same specimen, so it is not discordant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date

from engine.model import ReceptorAssessment, ReceptorResult, ReceptorStatus, Specimen

_DEFINITIVE = (ReceptorStatus.POSITIVE, ReceptorStatus.NEGATIVE)


def assess_receptor(results: list[ReceptorResult], rank: Mapping[str, int]) -> ReceptorAssessment:
    """Decide the status from all results of one receptor (order of `results` is irrelevant).
    `rank`: on the same day the most specific method decides (observations.yaml method_rank)."""
    if not results:
        return ReceptorAssessment()

    def key(r: ReceptorResult) -> tuple[date, int, str]:
        return (r.date or date.min, rank.get(r.method, 0), r.source_id)

    ordered = sorted(results, key=key, reverse=True)
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


def _different_specimens(a: ReceptorResult, b: ReceptorResult) -> bool:
    if Specimen.METASTATIC not in (a.specimen, b.specimen):
        return False  # discordance is about a metastasis (CLINICAL.md section 1)
    if Specimen.UNKNOWN not in (a.specimen, b.specimen) and a.specimen is not b.specimen:
        return True
    return a.date is not None and b.date is not None and a.date != b.date


def _newest_first(results: list[ReceptorResult], first: Specimen) -> list[ReceptorResult]:
    """Results on `first` specimens (newest first), then the others (newest first)."""
    return [r for r in results if r.specimen is first] + [
        r for r in results if r.specimen is not first
    ]


def _pair(
    negatives: list[ReceptorResult], positives: list[ReceptorResult]
) -> tuple[ReceptorResult, ReceptorResult] | None:
    """The first (positive, negative) on different specimens, in the orders given."""
    for n in negatives:
        for p in positives:
            if _different_specimens(p, n):
                return p, n
    return None


def assess_her2(results: list[ReceptorResult], rank: Mapping[str, int]) -> ReceptorAssessment:
    """HER2 status as assess_receptor decides it, then discordance with a metastasis."""
    found = assess_receptor(results, rank)
    basis = found.basis
    ordered = list(found.results)  # newest first
    if basis is None or not any(r.specimen is Specimen.METASTATIC for r in ordered):
        return found
    pos = [r for r in ordered if r.status is ReceptorStatus.POSITIVE]
    neg = [r for r in ordered if r.status is ReceptorStatus.NEGATIVE]
    if basis.status is ReceptorStatus.NEGATIVE:
        # prefer the negative metastasis and the positive primary: the pair CLINICAL.md names
        pair = _pair(_newest_first(neg, Specimen.METASTATIC), _newest_first(pos, Specimen.PRIMARY))
        if pair is None:
            return found
        positive, negative = pair
        return replace(
            found,
            status=ReceptorStatus.POSITIVE,
            basis=positive,
            conflicts=_conflicts(ordered, positive),
            discordance="loss",
            discordant=(positive, negative),
        )
    if basis.status is ReceptorStatus.POSITIVE:
        others = [r for r in pos if r is not basis]
        pair = _pair(_newest_first(neg, Specimen.PRIMARY), [basis, *others])
        if pair is None:
            return found
        positive, negative = pair
        converted = positive is basis and basis.specimen is Specimen.METASTATIC
        return replace(
            found,
            discordance="conversion" if converted else "loss",
            discordant=(positive, negative),
        )
    return found
