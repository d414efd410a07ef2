"""Clinical constants moved out of Python (issue 21): the behaviour follows the knowledge data.

Each test changes one item in a copy of the loaded Knowledge (dataclasses.replace) and checks
that the outcome changes with it, so a constant left in code makes the test fail.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from cards import render_assessment
from engine import assess, load_knowledge
from engine.knowledge import Knowledge
from engine.model import Assessment, Recommendation
from tests.engine_builders import direct_line, direct_record

AFTER_THP = [
    direct_line(
        1, ("docetaxel", "pertuzumab", "trastuzumab"), date(2021, 2, 1), date(2022, 1, 1), True
    )
]
TRIPLET = "tucatinib-trastuzumab-capecitabine"


def _rec(a: Assessment) -> Recommendation:
    assert a.recommendation is not None
    return a.recommendation


def _with_brain(kb: Knowledge, **changes: object) -> Knowledge:
    nl = kb.next_line
    return replace(kb, next_line=replace(nl, brain=replace(nl.brain, **changes)))


def _with_words(kb: Knowledge, group: str, **changes: str) -> Knowledge:
    nl = kb.next_line
    return replace(kb, next_line=replace(nl, **{group: {**getattr(nl, group), **changes}}))


def test_cns_preferred_regimen_is_the_data_s() -> None:
    """CLINICAL.md 3: predominantly CNS disease prefers the tucatinib triplet, as next_line.yaml says."""
    kb = load_knowledge()
    record = direct_record(lines=AFTER_THP, brain=True, extracranial=False)
    rec = _rec(assess(record, kb))
    assert rec.preferred.regimen.id == TRIPLET
    assert kb.next_line.brain.caveat in rec.preferred.caveats
    assert kb.next_line.brain.predominant in rec.reasons
    other = _with_brain(kb, cns_preferred="tdm1", caveat="CNS choice (test)")
    moved = _rec(assess(record, other))
    assert moved.preferred.regimen.id == "tdm1"
    assert "CNS choice (test)" in moved.preferred.caveats


def test_extracranial_rank_is_the_data_s() -> None:
    """With extracranial disease beside the brain, the triplet's rank in the row is data."""
    kb = load_knowledge()
    record = direct_record(lines=AFTER_THP, brain=True, extracranial=True)
    rec = _rec(assess(record, kb))
    assert rec.preferred.regimen.id == "tdxd"
    assert rec.alternatives[0].regimen.id == TRIPLET
    assert kb.next_line.brain.extracranial in rec.reasons
    later = _rec(assess(record, _with_brain(kb, extracranial_rank=5.0)))
    assert later.alternatives[0].regimen.id == "tdm1"


def test_ild_words_are_the_data_s() -> None:
    """ILD on record: the exclusion and the replacement reason come from next_line.yaml."""
    kb = load_knowledge()
    record = direct_record(lines=AFTER_THP, ild=True)
    rec = _rec(assess(record, kb))
    assert dict(rec.excluded)["tdxd"] == (
        "interstitial lung disease / pneumonitis on record: T-DXd is not recommended"
    )
    assert any(r.startswith("T-DXd would otherwise be preferred") for r in rec.reasons)
    other = _with_words(
        kb, "ild", excluded="ILD ({agents}) test", replaced="{replaced} -> {preferred} test"
    )
    changed = _rec(assess(record, other))
    assert dict(changed.excluded)["tdxd"] == "ILD (T-DXd) test"
    assert f"T-DXd -> {changed.preferred.regimen.name} test" in changed.reasons


def test_exclusion_words_are_the_data_s() -> None:
    """An HR-positive-only regimen left out for HR-negative disease says the data's words."""
    kb = load_knowledge()
    hr_only = [rid for rid, r in kb.regimens.items() if r.hr_positive_only]
    assert hr_only
    step = kb.sequence[-1]
    lines = [
        direct_line(
            1, ("docetaxel", "pertuzumab", "trastuzumab"), date(2021, 2, 1), date(2022, 1, 1), True
        ),
        direct_line(2, ("fam-trastuzumab deruxtecan",), date(2022, 1, 10), date(2023, 1, 1), True),
        direct_line(
            3,
            ("tucatinib", "trastuzumab", "capecitabine"),
            date(2023, 1, 10),
            date(2024, 1, 1),
            True,
        ),
    ]
    record = direct_record(lines=lines, hr_positive=False)
    assert any(r in (step.preferred, *step.alternatives) for r in hr_only)
    changed = _rec(
        assess(record, _with_words(kb, "exclusions", hr_positive_only="HR+ only (test)"))
    )
    assert {why for rid, why in changed.excluded if rid in hr_only} == {"HR+ only (test)"}


def test_jurisdictions_are_the_data_s() -> None:
    """The jurisdictions the engine accepts are next_line.yaml's list."""
    kb = load_knowledge()
    record = direct_record(lines=AFTER_THP)
    with pytest.raises(ValueError, match="jurisdiction"):
        assess(record, kb, "PMDA")
    wider = replace(kb, next_line=replace(kb.next_line, jurisdictions=("FDA", "EMA", "PMDA")))
    rec = _rec(assess(record, wider, "PMDA"))
    assert not rec.preferred.approved  # no regimen records a PMDA approval
    assert "No option approved by the PMDA is left." in rec.reasons
    narrower = replace(kb, next_line=replace(kb.next_line, jurisdictions=("FDA",)))
    with pytest.raises(ValueError, match="jurisdiction"):
        assess(record, narrower, "EMA")


def test_next_line_override_reasons_are_the_data_s() -> None:
    """The next-line card's overrideReasons are next_line.yaml's, in its order."""
    kb = load_knowledge()
    record = direct_record(lines=AFTER_THP)

    def reasons(k: Knowledge) -> list[tuple[str, str]]:
        cards = render_assessment(assess(record, k), "test")
        card = next(c for c in cards if next(iter(c["extension"].values()))["kind"] == "next-line")
        return [(o["code"], o["display"]) for o in card["overrideReasons"]]

    assert reasons(kb) == list(kb.next_line.override_reasons)
    assert reasons(kb)[0] == ("clinical-trial", "Patient enrolling in a clinical trial")
    other = replace(kb, next_line=replace(kb.next_line, override_reasons=(("x-test", "Test"),)))
    assert reasons(other) == [("x-test", "Test")]
