"""Scenario tests for the regimen table and the modifiers of CLINICAL.md section 3.

Each test tells one clinical story as FHIR resources, builds the record with build_record and
asks the engine; its docstring quotes the seed sentence (shared/seeds) it encodes.
"""

from __future__ import annotations

from typing import Any

from engine.model import Recommendation
from tests import builders as b
from tests.engine_builders import assess_story, drug, her2_story, regimen

THP = ["pertuzumab", "trastuzumab", "docetaxel"]
TDXD = "fam-trastuzumab deruxtecan"


def _rec(resources: list[dict[str, Any]], as_of: str, jurisdiction: str = "FDA") -> Recommendation:
    a = assess_story(resources, as_of, jurisdiction)
    assert a.recommendation is not None, a.data_needs
    return a.recommendation


def _ids(rec: Recommendation) -> list[str]:
    return [rec.preferred.regimen.id, *(o.regimen.id for o in rec.alternatives)]


def _after_thp(*more: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    return her2_story(
        *regimen(THP, "2021-01-15", "2022-06-01"), b.progression("2022-06-01"), *more, **kw
    )


def test_de_novo_gets_thp_with_tdxd_pertuzumab_as_alternative() -> None:
    """Seed 002: "For patients with HER2-positive metastatic breast cancer who have not received
    prior anti-HER2 therapy or chemotherapy for metastatic disease, the standard of care is
    trastuzumab plus pertuzumab plus a taxane (docetaxel or paclitaxel)." Seed 000: "trastuzumab
    deruxtecan + pertuzumab as first-line therapy ... Median PFS: 40.7 months versus 26.9 months"."""
    rec = _rec(her2_story(), "2021-01-10")
    assert (rec.line, rec.timing, rec.prior_her2_lines) == (1, "now", 0)
    assert rec.preferred.regimen.id == "thp"
    # T-DXd + pertuzumab first; weekly paclitaxel with HP as its own choice (seed 002: "a taxane
    # (docetaxel or paclitaxel)"; review 3, C6)
    assert [o.regimen.id for o in rec.alternatives] == [
        "tdxd-pertuzumab",
        "pertuzumab-trastuzumab-chemo",
    ]
    thp = {c.drug: c.dose for c in rec.preferred.regimen.components}
    assert thp["pertuzumab"].startswith("840 mg") and "420 mg" in thp["pertuzumab"]
    assert thp["trastuzumab"].startswith("8 mg/kg") and "6 mg/kg" in thp["trastuzumab"]
    assert "cleopatra" in [e.id for e in rec.preferred.regimen.evidence]
    assert "40.7" in rec.alternatives[0].regimen.evidence[0].summary


def test_after_thp_gets_tdxd_then_tdm1() -> None:
    """Seed 000: "Trastuzumab deruxtecan (T-DXd) 5.4 mg/kg IV every 3 weeks is the standard of
    care". CLINICAL.md section 3 row 1: "12-month PFS 75.8% vs 34.1%, HR 0.28 (95% CI 0.22-0.37)
    ... (Cortés, NEJM 2022); updated median PFS 28.8 vs 6.8 months, HR 0.33, OS HR 0.64 (Hurvitz,
    Lancet 2023). Never quote the 28.8-month median with HR 0.28"."""
    rec = _rec(_after_thp(), "2022-06-15")
    assert (rec.line, rec.prior_her2_lines) == (2, 1)
    assert _ids(rec)[:2] == ["tdxd", "tdm1"]
    assert rec.preferred.regimen.components[0].dose == "5.4 mg/kg"
    evidence = {e.id: e for e in rec.preferred.regimen.evidence}
    db03, update = evidence["destiny-breast03"], evidence["destiny-breast03-update"]
    assert "75.8% vs 34.1%" in db03.summary and "HR 0.28; 95% CI 0.22-0.37" in db03.summary
    assert "Cortés" in db03.citation and "28.8" not in db03.summary and db03.verified
    assert "28.8 vs 6.8" in update.summary and "HR 0.33" in update.summary
    assert "HR 0.64" in update.summary and "Hurvitz" in update.citation
    assert "0.28" not in update.summary


def test_after_thp_and_tdxd_gets_tucatinib_triplet_and_never_tdxd_again() -> None:
    """Seed 000: "The tucatinib + trastuzumab + capecitabine combination is the preferred
    third-line regimen following second-line T-DXd" and "T-DM1 if not previously administered"."""
    rec = _rec(
        _after_thp(*regimen([TDXD], "2022-06-10", "2023-09-01"), b.progression("2023-09-01")),
        "2023-09-20",
    )
    assert (rec.line, rec.prior_her2_lines) == (3, 2)
    assert rec.preferred.regimen.id == "tucatinib-trastuzumab-capecitabine"
    assert _ids(rec)[1] == "tdm1"
    assert "tdxd" not in _ids(rec)
    assert ("tdxd", "not re-offered: disease progressed on fam-trastuzumab deruxtecan") in (
        rec.excluded
    )


def test_later_lines_offer_what_was_not_yet_given() -> None:
    """CLINICAL.md section 3, row "3 or more": "whatever of the above was not yet given"; seed 001:
    "Trastuzumab beyond progression with different chemotherapy partners"."""
    story = _after_thp(
        *regimen([TDXD], "2022-06-10", "2023-09-01"),
        b.progression("2023-09-01"),
        *regimen(["tucatinib", "trastuzumab", "capecitabine"], "2023-09-10", "2024-08-01"),
        b.progression("2024-08-01"),
        *regimen(["ado-trastuzumab emtansine"], "2024-08-10", "2025-03-01"),
        b.progression("2025-03-01"),
    )
    rec = _rec(story, "2025-03-15")
    assert (rec.line, rec.prior_her2_lines) == (5, 4)
    offered = _ids(rec)
    for failed in ("tdxd", "tdm1", "tucatinib-trastuzumab-capecitabine", "thp"):
        assert failed not in offered
    # the first regimen of the row-2 list not yet given; T-DM1 came between the two TKIs
    assert rec.preferred.regimen.id == "neratinib-capecitabine"
    assert not any("TKI" in c for c in rec.preferred.caveats)
    for later in ("lapatinib-capecitabine", "trastuzumab-chemo", "margetuximab-chemo"):
        assert later in offered
    assert "endocrine-her2" not in offered  # HR-negative


def test_early_relapse_after_adjuvant_tch_counts_as_one_line() -> None:
    """Seed 003: "If the patient completed trastuzumab-based adjuvant treatment ≤12 months before
    recurrence, follow second-line therapy recommendations immediately"."""
    tch = regimen(["docetaxel", "carboplatin", "trastuzumab"], "2019-07-01", "2020-07-01")
    rec = _rec(her2_story(*tch, met="2021-03-01"), "2021-03-10")
    assert rec.early_relapse and rec.prior_her2_lines == 1
    assert rec.preferred.regimen.id == "tdxd"
    assert rec.early_relapse_threshold_months == 12
    said = " ".join(rec.reasons)
    assert "early_relapse_months_trastuzumab_only" in said and "threshold 12 months" in said
    assert rec.line == 1  # no metastatic line yet: the line number counts metastatic lines


def test_late_relapse_after_adjuvant_tch_restarts_first_line() -> None:
    """Seed 003: "If recurrence occurs >12 months after completing adjuvant trastuzumab,
    restarting first-line therapy (pertuzumab, trastuzumab, taxane) is appropriate"."""
    tch = regimen(["docetaxel", "carboplatin", "trastuzumab"], "2018-01-01", "2019-01-01")
    rec = _rec(her2_story(*tch, met="2021-03-01"), "2021-03-10")
    assert not rec.early_relapse and rec.prior_her2_lines == 0
    assert rec.preferred.regimen.id == "thp"
    assert "late relapse, first-line rules apply" in " ".join(rec.reasons)
    assert not rec.preferred.caveats  # adjuvant pertuzumab/trastuzumab do not demote THP


def test_ild_puts_tdm1_in_tdxd_place_and_says_why() -> None:
    """Seed 000: "T-DM1 should only be used when T-DXd is unavailable or contraindicated (e.g.,
    patients with pre-existing interstitial lung disease)" and "Do not use T-DXd in patients with
    pre-existing interstitial lung disease—use T-DM1 instead"."""
    a = assess_story(_after_thp(b.ild("2020-03-01")), "2022-06-15")
    rec = a.recommendation
    assert rec is not None
    assert rec.preferred.regimen.id == "tdm1" and rec.ild_replaced == "tdxd"
    assert all(
        "fam-trastuzumab deruxtecan" not in o.regimen.drugs
        for o in (rec.preferred, *rec.alternatives)
    )
    assert "takes its place" in " ".join(rec.reasons)
    ild = next(al for al in a.alerts if al.rule == "tdxd-ild")
    assert ild.severity == "warning"  # it explains a replaced recommendation
    # CLINICAL.md section 4: each ILD figure credited to its own source
    assert "10.5% of patients on trastuzumab deruxtecan (T-DXd) in DESTINY-Breast03" in ild.detail
    assert "13.6% in DESTINY-Breast01" in ild.detail
    assert "15.4% across nine T-DXd studies, fatal (grade 5) in 2.2%" in ild.detail
    assert "10.5-13.6%" not in ild.detail
    assert {"tdxd-ild-pooled", "tdxd-label"} <= {e.id for e in ild.evidence}


def test_ild_first_line_never_offers_tdxd_pertuzumab() -> None:
    """CLINICAL.md section 3: "ILD/pneumonitis ever: T-DXd (alone or with pertuzumab) is not
    offered"."""
    a = assess_story(her2_story(b.ild("2020-03-01")), "2021-01-10")
    rec = a.recommendation
    assert rec is not None and rec.preferred.regimen.id == "thp"
    assert [o.regimen.id for o in rec.alternatives] == ["pertuzumab-trastuzumab-chemo"]
    assert rec.ild_replaced is None
    assert (
        "tdxd-pertuzumab",
        "interstitial lung disease / pneumonitis on record: T-DXd is not recommended",
    ) in rec.excluded
    assert "tdxd-ild" not in [al.rule for al in a.alerts]  # T-DXd was not going to be preferred


def test_brain_metastases_only_prefers_tucatinib_triplet() -> None:
    """Seed 002: "For patients with predominantly CNS disease burden, consider tucatinib +
    trastuzumab + capecitabine as second-line therapy instead of T-DXd"."""
    story = _after_thp(site=("94225005", "Secondary malignant neoplasm of brain"))
    rec = _rec(story, "2022-06-15")
    assert rec.preferred.regimen.id == "tucatinib-trastuzumab-capecitabine"
    assert _ids(rec)[1] == "tdxd"
    assert "HER2CLIMB" in " ".join(rec.reasons)


def test_brain_metastases_with_extracranial_disease_keep_tdxd() -> None:
    """Seed 002: "For patients with predominantly extracranial disease despite brain metastases
    present, T-DXd remains preferred" ... "12-month OS rate of 86.1% (95% CI 77.6-91.5) in
    DESTINY-Breast12"."""
    story = _after_thp(b.metastasis("94225005", onset="2022-05-01", display="Brain metastasis"))
    rec = _rec(story, "2022-06-15")
    assert _ids(rec)[:2] == ["tdxd", "tucatinib-trastuzumab-capecitabine"]
    assert "DESTINY-Breast12" in " ".join(rec.reasons)
    assert "destiny-breast12" in [e.id for e in rec.preferred.regimen.evidence]


def test_hr_positive_maintenance_adds_endocrine_after_chemotherapy() -> None:
    """Seed 002: "For hormone receptor-positive disease, add endocrine therapy as maintenance
    after chemotherapy completion"; "After stopping chemotherapy, continue HER2-targeted therapy
    (trastuzumab + pertuzumab) until disease progression"."""
    story = her2_story(
        drug("pertuzumab", "2021-01-15"),
        drug("trastuzumab", "2021-01-15"),
        drug("docetaxel", "2021-01-15", "2021-06-15"),
        er=True,
    )
    rec = _rec(story, "2021-09-01")
    assert rec.timing == "on-progression"
    assert any("add endocrine therapy" in m and "maintenance" in m for m in rec.maintenance)
    assert any("chemotherapy induction has ended" in r for r in rec.reasons)


def test_hr_positive_with_chemotherapy_running_waits_for_it_to_stop() -> None:
    """Seed 002: "Never give chemotherapy and endocrine therapy concurrently in HR-positive
    disease - give sequentially with endocrine therapy after chemotherapy"."""
    rec = _rec(her2_story(*regimen(THP, "2021-01-15"), er=True), "2021-03-01")
    assert any("when docetaxel stops, not at the same time" in m for m in rec.maintenance)


def test_hr_status_missing_is_said() -> None:
    """CLINICAL.md section 3: "Missing data is said, not guessed"."""
    rec = _rec(her2_story(er=None), "2021-01-10")
    assert any("Hormone-receptor status (ER/PR) is not recorded" in m for m in rec.maintenance)


def test_tki_after_tki_demotes_tki_regimens_and_warns() -> None:
    """Seed 001: "Do not sequence a tyrosine kinase inhibitor after another TKI without
    intervening therapy, as there is no evidence supporting this approach"."""
    story = _after_thp(
        *regimen([TDXD], "2022-06-10", "2023-09-01"),
        b.progression("2023-09-01"),
        *regimen(["lapatinib", "capecitabine"], "2023-09-10", "2024-03-01"),
        b.progression("2024-03-01"),
    )
    a = assess_story(story, "2024-03-10")
    rec = a.recommendation
    assert rec is not None
    offered = _ids(rec)
    assert rec.preferred.regimen.id == "tdm1"
    assert offered.index("tucatinib-trastuzumab-capecitabine") > offered.index("tdm1")
    tucatinib = next(
        o for o in rec.alternatives if o.regimen.id == "tucatinib-trastuzumab-capecitabine"
    )
    assert any("no evidence supports a second TKI" in c for c in tucatinib.caveats)
    alert = next(al for al in a.alerts if al.rule == "tki-after-tki")
    assert alert.severity == "warning" and "lapatinib" in alert.summary


def test_her2_unknown_gets_no_regimen_but_a_request() -> None:
    """Seed 000: "Re-biopsy accessible metastatic lesions to confirm HER2 status, as receptor
    status can change during disease progression"; CLINICAL.md: "unknown HER2 status gives no
    regimen, only a card asking for it"."""
    a = assess_story(her2_story(her2=None), "2021-01-10")
    assert a.in_scope and a.recommendation is None
    assert [n.what for n in a.data_needs] == ["her2-status"]
    status = next(al for al in a.alerts if al.rule == "her2-status")
    assert status.severity == "info" and "metastatic lesion" in status.detail


def test_ongoing_line_continues_with_next_line_on_progression() -> None:
    """Seed 000: "HER2-targeted therapy should continue until disease progression or unacceptable
    toxicity, not just until chemotherapy completion"."""
    rec = _rec(her2_story(*regimen(THP, "2021-01-15")), "2021-04-01")
    assert (rec.timing, rec.line, rec.prior_her2_lines) == ("on-progression", 2, 1)
    assert rec.preferred.regimen.id == "tdxd"
    assert "continue it until progression or unacceptable toxicity" in " ".join(rec.reasons)


def test_progression_on_ongoing_line_means_now() -> None:
    """CLINICAL.md section 3: "if the latest line is ongoing with no progression recorded since it
    started ... Otherwise the next line is recommended now"."""
    rec = _rec(her2_story(*regimen(THP, "2021-01-15"), b.progression("2021-10-01")), "2021-10-05")
    assert rec.timing == "now" and rec.preferred.regimen.id == "tdxd"


def test_early_setting_tdm1_counts_as_received() -> None:
    """CLINICAL.md section 3: "T-DM1 or T-DXd given in the early setting (e.g. KATHERINE) counts as
    received"."""
    early = [
        *regimen(["docetaxel", "trastuzumab"], "2018-01-01", "2018-06-01"),
        drug("ado-trastuzumab emtansine", "2018-07-01", "2019-05-01"),
    ]
    rec = _rec(
        her2_story(*early, *regimen(THP, "2021-01-15", "2022-06-01"), b.progression("2022-06-01")),
        "2022-06-15",
    )
    tdm1 = next(o for o in rec.alternatives if o.regimen.id == "tdm1")
    assert "ado-trastuzumab emtansine already given" in tdm1.caveats
    assert any("given in the early setting counts as already received" in r for r in rec.reasons)


def _fourth_line(jurisdiction: str) -> Recommendation:
    story = _after_thp(
        *regimen([TDXD], "2022-06-10", "2023-09-01"),
        b.progression("2023-09-01"),
        *regimen(["tucatinib", "trastuzumab", "capecitabine"], "2023-09-10", "2024-08-01"),
        b.progression("2024-08-01"),
        *regimen(["ado-trastuzumab emtansine"], "2024-08-10", "2025-03-01"),
        b.progression("2025-03-01"),
    )
    return _rec(story, "2025-03-15", jurisdiction)


def test_fda_marks_lapatinib_trastuzumab_as_not_approved() -> None:
    """Seed 001: "Neratinib plus capecitabine (FDA approved, not EMA approved ...)" and
    "Margetuximab plus chemotherapy (FDA approved, not EMA approved ...)"; CLINICAL.md: lapatinib +
    trastuzumab: EMA only."""
    rec = _fourth_line("FDA")
    by_id = {o.regimen.id: o for o in (rec.preferred, *rec.alternatives)}
    assert not by_id["lapatinib-trastuzumab"].approved
    assert by_id["margetuximab-chemo"].approved and by_id["neratinib-capecitabine"].approved
    assert rec.preferred.approved


def test_ema_marks_neratinib_and_margetuximab_and_never_prefers_them() -> None:
    """Seed 003: "Neratinib and margetuximab are FDA-approved options for heavily pretreated
    patients, though not EMA-approved"."""
    rec = _fourth_line("EMA")
    options = (rec.preferred, *rec.alternatives)
    by_id = {o.regimen.id: o for o in options}
    assert not by_id["neratinib-capecitabine"].approved
    assert not by_id["margetuximab-chemo"].approved
    assert by_id["lapatinib-trastuzumab"].approved
    assert rec.preferred.approved
    flags = [o.approved for o in options]
    assert flags == sorted(flags, reverse=True)  # every unapproved option after every approved one
    assert any(
        "not approved for this use by the EMA" in c for c in by_id["margetuximab-chemo"].caveats
    )


def test_unknown_jurisdiction_is_refused() -> None:
    """CLINICAL.md section 3: jurisdiction is configuration (FDA or EMA), never guessed."""
    import pytest

    with pytest.raises(ValueError):
        assess_story(her2_story(), "2021-01-10", "XYZ")


def test_nccn_six_month_threshold_is_a_parameter_and_is_said() -> None:
    """CLINICAL.md section 2: "NCCN allows 6 months for trastuzumab-only adjuvant therapy: make
    the threshold a parameter and say which one was used"."""
    import dataclasses

    from engine import assess, load_knowledge
    from tests.engine_builders import record_of

    kb = load_knowledge()
    params = {**kb.parameters, "lines": {**kb.parameters["lines"]}}
    params["lines"]["early_relapse_months_trastuzumab_only"] = 6
    nccn = dataclasses.replace(kb, parameters=params)
    tch = regimen(["docetaxel", "carboplatin", "trastuzumab"], "2019-07-01", "2020-06-01")
    record = record_of(her2_story(*tch, met="2021-03-01"), "2021-03-10")
    default = assess(record, kb).recommendation
    six = assess(record, nccn).recommendation
    assert default is not None and six is not None
    assert default.early_relapse and default.preferred.regimen.id == "tdxd"
    assert not six.early_relapse and six.preferred.regimen.id == "thp"
    assert six.early_relapse_threshold_months == 6
    assert "threshold 6 months, parameter lines.early_relapse_months_trastuzumab_only" in " ".join(
        six.reasons
    )


def test_chemotherapy_only_line_counts_in_line_number_not_in_table() -> None:
    """CLINICAL.md section 3: "chemotherapy-only lines do not move the patient along this table,
    but they do count in the line number reported"."""
    story = her2_story(
        drug("capecitabine", "2021-01-15", "2021-06-01"), b.progression("2021-06-01")
    )
    rec = _rec(story, "2021-06-10")
    assert (rec.line, rec.prior_her2_lines) == (2, 0)
    assert rec.preferred.regimen.id == "thp"


def test_brain_metastases_at_first_line_keep_thp_and_say_so() -> None:
    """Seed 001 places the tucatinib triplet after trastuzumab-based therapy ("prioritized as an
    alternative second-line option"); first line stays THP."""
    rec = _rec(her2_story(site=("94225005", "Secondary malignant neoplasm of brain")), "2021-01-10")
    assert rec.preferred.regimen.id == "thp"
    assert "later-line option" in " ".join(rec.reasons)


def test_hr_positive_de_novo_thp_plans_endocrine_after_the_taxane() -> None:
    """Seed 000: "Endocrine therapy should be added after chemotherapy completion or at
    progression"; the THP recommendation says so for HR-positive disease."""
    rec = _rec(her2_story(er=True), "2021-01-10")
    assert rec.preferred.regimen.id == "thp"
    assert any("once chemotherapy stops" in m for m in rec.maintenance)
    hr_negative = _rec(her2_story(er=False), "2021-01-10")
    assert not hr_negative.maintenance


def test_brain_metastases_with_extracranial_disease_after_tdxd_cite_no_destiny_breast12() -> None:
    """Fifth outside review F2: "Evidence text fits the patient" (CLINICAL.md 5). After THP
    and T-DXd, active brain metastases beside liver metastases: the triplet is the next line
    (CLINICAL.md 3), so DESTINY-Breast12's "T-DXd stays preferred" does not fit."""
    story = _after_thp(
        *regimen([TDXD], "2022-06-20", "2023-09-01"),
        b.progression("2023-09-01"),
        b.metastasis("94225005", onset="2023-08-20", display="Brain metastasis"),
    )
    rec = _rec(story, "2023-09-15")
    assert rec.preferred.regimen.id == "tucatinib-trastuzumab-capecitabine"
    said = " ".join(rec.reasons)
    assert "T-DXd stays preferred" not in said and "DESTINY-Breast12" not in said
    assert "HER2CLIMB" in said


def test_brain_metastases_with_extracranial_disease_and_ild_cite_no_destiny_breast12() -> None:
    """CLINICAL.md 3: ILD rules T-DXd out (T-DM1 takes its place); the brain-metastasis sentence
    may not say T-DXd stays preferred."""
    story = _after_thp(
        b.metastasis("94225005", onset="2022-05-01", display="Brain metastasis"),
        b.ild("2021-06-01"),
    )
    rec = _rec(story, "2022-06-15")
    assert "tdxd" not in [o.regimen.id for o in [rec.preferred, *rec.alternatives]]
    assert "T-DXd stays preferred" not in " ".join(rec.reasons)
