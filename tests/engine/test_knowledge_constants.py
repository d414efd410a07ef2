"""Clinical constants moved out of Python (issue 21): the behaviour follows the knowledge data.

Each test changes one item in a copy of the loaded Knowledge (dataclasses.replace) and checks
that the outcome changes with it, so a constant left in code makes the test fail.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from cards import render_assessment
from engine import assess, check_orders, load_knowledge
from engine.knowledge import Knowledge
from engine.model import Assessment, OrderFinding, ReceptorStatus, Recommendation
from fhir_mappers import build_record
from fhir_mappers.terminology import TerminologyError, load_terminology, read_terminology_file
from fhir_mappers.what_to_record import what_to_record
from tests import builders as b
from tests.engine_builders import direct_line, direct_record, order

AFTER_THP = [
    direct_line(
        1, ("docetaxel", "pertuzumab", "trastuzumab"), date(2021, 2, 1), date(2022, 1, 1), True
    )
]
TRIPLET = "tucatinib-trastuzumab-capecitabine"


def _rec(a: Assessment) -> Recommendation:
    assert a.recommendation is not None
    return a.recommendation


def _with_brain(kb: Knowledge, **changes: Any) -> Knowledge:
    nl = kb.next_line
    return replace(kb, next_line=replace(nl, brain=replace(nl.brain, **changes)))


def _with_words(kb: Knowledge, group: str, **changes: str) -> Knowledge:
    nl = kb.next_line
    words: dict[str, Any] = {group: {**getattr(nl, group), **changes}}
    return replace(kb, next_line=replace(nl, **words))


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


# --- order checks: the T-DXd / T-DM1 rules read their agents and doses from parameters.yaml --


def _with_params(kb: Knowledge, section: str, **changes: object) -> Knowledge:
    params = {**kb.parameters, section: {**kb.parameters[section], **changes}}
    return replace(kb, parameters=params)


def _rules(findings: list[OrderFinding]) -> list[str]:
    return [f.rule for f in findings]


def test_ild_replacement_is_the_data_s() -> None:
    """T-DXd ordered with ILD and no next-line card (HER2 unknown): the order offered instead is
    agents.ild_replacement's (T-DM1, CLINICAL.md section 3), with its dose words."""
    kb = load_knowledge()
    record = direct_record(her2=ReceptorStatus.UNKNOWN, ild=True)
    tdxd = [order("fam-trastuzumab deruxtecan", dose=(5.4, "mg/kg"))]
    found = next(f for f in check_orders(record, tdxd, kb) if f.rule == "tdxd-ild")
    assert "T-DM1 3.6 mg/kg IV q3w" in found.detail
    other = _with_params(
        kb, "agents", ild_replacement={"regimen": "lapatinib-capecitabine", "drug": "lapatinib"}
    )
    changed = next(f for f in check_orders(record, tdxd, other) if f.rule == "tdxd-ild")
    assert "T-DM1" not in changed.detail
    assert "lapatinib" in changed.detail


def test_dose_limit_is_the_data_s() -> None:
    """CLINICAL.md dose-check: T-DM1 is flagged only above 3.6 mg/kg (limit: maximum), T-DXd at
    any dose other than 5.4 (limit: exact); the fix orders the drug's own regimen."""
    kb = load_knowledge()
    record = direct_record(lines=AFTER_THP)
    tdm1_low = [order("ado-trastuzumab emtansine", dose=(3.3, "mg/kg"))]
    tdxd_low = [order("fam-trastuzumab deruxtecan", dose=(5.0, "mg/kg"))]
    assert "dose-check" not in _rules(check_orders(record, tdm1_low, kb))
    flagged = next(f for f in check_orders(record, tdxd_low, kb) if f.rule == "dose-check")
    assert flagged.replacement is not None
    assert flagged.replacement.component.dose_value == 5.4
    doses = kb.parameters["doses"]
    swapped = _with_params(
        kb,
        "doses",
        **{
            "ado-trastuzumab emtansine": {**doses["ado-trastuzumab emtansine"], "limit": "exact"},
            "fam-trastuzumab deruxtecan": {
                **doses["fam-trastuzumab deruxtecan"],
                "limit": "maximum",
            },
        },
    )
    assert "dose-check" in _rules(check_orders(record, tdm1_low, swapped))
    assert "dose-check" not in _rules(check_orders(record, tdxd_low, swapped))


def test_ild_restart_agents_are_the_data_s() -> None:
    """ild-restart: T-DM1 re-ordered with ILD after a course that stopped with no reason asks
    first; the agents it concerns are agents.ild_restart, and the card names it by its short name."""
    kb = load_knowledge()
    stopped = direct_line(
        2, ("ado-trastuzumab emtansine",), date(2022, 2, 1), date(2023, 1, 1), False
    )
    record = direct_record(lines=[*AFTER_THP, stopped], ild=True)
    tdm1 = [order("ado-trastuzumab emtansine", dose=(3.6, "mg/kg"))]
    found = next(f for f in check_orders(record, tdm1, kb) if f.rule == "ild-restart")
    assert "T-DM1" in found.summary + found.detail
    none = _with_params(kb, "agents", ild_restart=[])
    assert "ild-restart" not in _rules(check_orders(record, tdm1, none))


def test_ild_monitoring_agents_are_the_data_s() -> None:
    """tdxd-ild-monitoring on an order concerns the agents of agents.ild_excluded."""
    kb = load_knowledge()
    record = direct_record(lines=AFTER_THP)
    tdxd = [order("fam-trastuzumab deruxtecan", dose=(5.4, "mg/kg"))]
    assert "tdxd-ild-monitoring" in _rules(check_orders(record, tdxd, kb))
    none = _with_params(kb, "agents", ild_excluded=[])
    assert "tdxd-ild-monitoring" not in _rules(check_orders(record, tdxd, none))


# --- mappers: HER2 method rank, stale claims, maintenance antibodies ------------------------


def _story(*resources: dict[str, Any]) -> dict[str, Any]:
    return b.bundle(b.patient(), b.breast_cancer("2019-06-01"), *resources)


def test_her2_method_rank_is_the_terminology_s() -> None:
    """Same-day HER2 results: the most specific method decides, by observations.yaml
    method_rank (ISH over an interpretation), not by a table in Python."""
    term = load_terminology()
    ish_negative = b.observation(
        "85318-4", when="2021-01-05", value_code="260385009", value_display="Negative"
    )
    interp_positive = b.observation(
        "48676-1", when="2021-01-05", value_code="10828004", value_display="Positive"
    )
    bundle = _story(ish_negative, interp_positive)
    as_of = date(2021, 2, 1)
    record = build_record(bundle, as_of=as_of, terminology=term)
    assert record.her2.basis is not None and record.her2.basis.method == "ish"
    assert record.her2.status is ReceptorStatus.NEGATIVE
    rank = {**term.method_rank, "interpretation": 9}
    other = replace(term, observations={**term.observations, "method_rank": rank})
    swapped = build_record(bundle, as_of=as_of, terminology=other)
    assert swapped.her2.basis is not None and swapped.her2.basis.method == "interpretation"
    assert swapped.her2.status is ReceptorStatus.POSITIVE


def test_stale_claim_days_is_the_data_s() -> None:
    """An active statement untouched for longer than lines.stale_claim_days is a past course,
    with a data issue naming the number of days."""
    kb = load_knowledge()
    days = int(kb.param("lines", "stale_claim_days"))
    assert days == 365
    bundle = _story(b.statement("224905", "trastuzumab", "2021-01-01", rid="ms-old"))
    as_of = date(2022, 3, 1)  # 424 days after the claim
    record = build_record(bundle, as_of=as_of, knowledge=kb)
    stale = [i for i in record.data_issues if "not updated" in i.message]
    assert stale and f"over {days} days" in stale[0].message
    assert all(e.end is not None for e in record.exposures)
    longer = _with_params(kb, "lines", stale_claim_days=500)
    kept = build_record(bundle, as_of=as_of, knowledge=longer)
    assert not [i for i in kept.data_issues if "not updated" in i.message]
    assert any(e.end is None for e in kept.exposures)


def test_maintenance_antibodies_one_list() -> None:
    """Pertuzumab added to trastuzumab after the regimen window stays in the line because both
    are parameters.yaml agents.maintenance_antibodies (the line builder reads that one list)."""
    kb = load_knowledge()
    bundle = _story(
        b.her2(True, when="2020-12-20"),
        b.metastasis("94381002", onset="2021-01-01", display="Liver metastasis"),
        b.statement("224905", "trastuzumab", "2021-01-10"),
        b.statement("1298944", "pertuzumab", "2021-03-15"),
    )
    as_of = date(2021, 6, 1)
    assert len(build_record(bundle, as_of=as_of, knowledge=kb).lines) == 1
    none = _with_params(kb, "agents", maintenance_antibodies=[])
    assert len(build_record(bundle, as_of=as_of, knowledge=none).lines) == 2


# --- data-needed cards: what to record, with the codes from the terminology -----------------


def test_what_to_record_takes_its_codes_from_the_terminology() -> None:
    """The data-needed card's "What is missing" names the codes the mappers read: a code moved
    in observations.yaml / conditions.yaml moves in the text; a field no table answers is an error."""
    templates = read_terminology_file("what_to_record.yaml")
    obs = read_terminology_file("observations.yaml")
    conds = read_terminology_file("conditions.yaml")
    texts = what_to_record(templates, obs, conds)
    assert "HER2 IHC score (LOINC 85319-2)" in texts["her2-status"]
    assert "liver 94381002" in texts["metastatic-status"]
    her2 = {"72383-3": "ihc", **obs["observations"]["her2"]}  # another IHC code listed first
    moved = what_to_record(
        templates, {**obs, "observations": {**obs["observations"], "her2": her2}}, conds
    )
    assert "HER2 IHC score (LOINC 72383-3)" in moved["her2-status"]
    with pytest.raises(TerminologyError, match="observation:her2:nope"):
        what_to_record({"facts": {"x": "LOINC {observation:her2:nope}"}}, obs, conds)
    record = direct_record(her2=ReceptorStatus.UNKNOWN)
    cards = render_assessment(
        assess(record, load_knowledge()), "t", what_to_record={"her2-status": "TEST"}
    )
    assert "### What is missing\n- TEST" in cards[0]["detail"]
