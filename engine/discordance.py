"""HER2 discordance between the primary tumour and a metastasis (CLINICAL.md section 1).

The mappers decide the status and keep the two results that disagree (ReceptorAssessment
`discordance`, `discordant` = (positive, negative)); this rule names both on a card and asks for
tumour-board review.
"""

from __future__ import annotations

from engine.knowledge import Knowledge
from engine.model import Alert, PatientRecord, ReceptorResult, Specimen
from engine.warning_text import make_alert

RULE = "her2-discordance"

# How a HER2 result was obtained, in the words a card uses.
_METHOD_WORDS = {
    "ihc": "IHC",
    "ish": "ISH",
    "interpretation": "HER2 test result",
    "condition": "HER2 diagnosis on the problem list",
}


def _where(result: ReceptorResult) -> str:
    if result.specimen is Specimen.PRIMARY:
        return "the primary tumour"
    if result.specimen is Specimen.METASTATIC:
        return "a metastatic lesion"
    return "a specimen whose site is not recorded"


def describe(result: ReceptorResult) -> str:
    """'the primary tumour (IHC 3+, 2019-03-02, Observation/x)' for a card."""
    what = _METHOD_WORDS.get(result.method, result.method)
    if result.display:
        what = f"{what}: {result.display}"
    when = result.date.isoformat() if result.date else "undated"
    return f"{_where(result)} ({what}, {when}, {result.source_id})"


_SITE = {Specimen.PRIMARY: "the primary tumour", Specimen.METASTATIC: "a metastasis"}


def her2_discordance_alert(record: PatientRecord, kb: Knowledge) -> Alert | None:
    """A card naming both results when a metastasis and another specimen disagree on HER2."""
    her2 = record.her2
    if not her2.discordance or len(her2.discordant) != 2:
        return None
    positive, negative = her2.discordant
    return make_alert(
        kb,
        RULE,
        her2.discordance,
        [positive.source_id, negative.source_id],
        positive=describe(positive),
        negative=describe(negative),
        positive_site=_SITE.get(positive.specimen, "another specimen"),
        negative_site=_SITE.get(negative.specimen, "another specimen"),
    )


def negative_scope_reason(record: PatientRecord) -> str:
    """Why a HER2-negative patient is out of scope, naming a positive result that was outranked
    (e.g. two results on specimens the record does not tell apart), so it is said, not silent."""
    her2 = record.her2
    positive = [r for r in her2.conflicts if r.status is not her2.status]
    if her2.basis is None or not positive:
        return "HER2-negative"
    return (
        f"HER2-negative: the deciding result is {describe(her2.basis)}; a HER2-positive "
        f"result ({describe(positive[0])}) is outranked because the record does not show the two "
        "were on a primary tumour and a metastasis: review if they were different specimens"
    )
