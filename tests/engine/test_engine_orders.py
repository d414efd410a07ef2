"""Order checks (check_orders): which section-4 warnings apply to draft orders, and the fix."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine import check_orders, load_knowledge
from engine.model import DraftOrder, OrderFinding
from tests import builders as b
from tests.engine_builders import drug, her2_story, order, record_of, regimen

THP = ["pertuzumab", "trastuzumab", "docetaxel"]
TDXD = "fam-trastuzumab deruxtecan"
TDM1 = "ado-trastuzumab emtansine"


def _after_thp(*more: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    return her2_story(
        *regimen(THP, "2021-01-15", "2022-06-01"), b.progression("2022-06-01"), *more, **kw
    )


def _check(story: list[dict[str, Any]], as_of: str, *orders: DraftOrder) -> list[OrderFinding]:
    return check_orders(record_of(story, as_of), list(orders), load_knowledge())


def _rule(findings: list[OrderFinding], rule: str) -> OrderFinding:
    found = [f for f in findings if f.rule == rule]
    assert found, f"no {rule} in {[f.rule for f in findings]}"
    return found[0]


def test_tdxd_ordered_with_ild_is_replaced_by_tdm1() -> None:
    """Seed 002: "T-DXd is contraindicated in patients with pre-existing interstitial lung
    disease"; CLINICAL.md: "suggestion replaces the T-DXd order with T-DM1; override reasons"."""
    lvef = b.lvef(60, "2022-06-05")
    findings = _check(
        _after_thp(b.ild("2020-03-01"), lvef), "2022-06-15", order(TDXD, dose=(5.4, "mg/kg"))
    )
    f = _rule(findings, "tdxd-ild")
    assert f.severity == "critical" and f.order_id == "MedicationRequest/draft-1"
    assert f.replacement is not None and f.replacement.drug == TDM1
    assert f.replacement.component.dose == "3.6 mg/kg" and f.replacement.action == "replace"
    assert f.override_reasons and f.source_ids


def test_tdxd_at_gastric_dose_is_corrected() -> None:
    """CLINICAL.md section 4: "T-DXd ordered at a dose other than 5.4 mg/kg (6.4 mg/kg is the
    gastric dose)"."""
    lvef = b.lvef(60, "2022-06-05")
    f = _rule(
        _check(_after_thp(lvef), "2022-06-15", order(TDXD, dose=(6.4, "mg/kg"))), "dose-check"
    )
    assert "6.4 mg/kg is not the breast-cancer dose (5.4 mg/kg)" in f.summary
    assert f.replacement is not None and f.replacement.component.dose_value == 5.4
    assert "dose-reduction" in [o.code for o in f.override_reasons]


def test_tdm1_dose_above_label_warns_and_label_dose_does_not() -> None:
    """Seed 001 / label: T-DM1 3.6 mg/kg; "Do not administer KADCYLA at doses greater than 3.6
    mg/kg"."""
    story = _after_thp(b.lvef(60, "2022-06-05"))
    assert not _check(story, "2022-06-15", order(TDM1, dose=(3.6, "mg/kg")))
    assert not [
        f
        for f in _check(story, "2022-06-15", order(TDM1, dose=(3.0, "mg/kg")))
        if f.rule == "dose-check"
    ]
    _rule(_check(story, "2022-06-15", order(TDM1, dose=(4.0, "mg/kg"))), "dose-check")


def test_code_and_text_naming_different_products_is_critical() -> None:
    """Seed 002: "Never substitute or interchange different trastuzumab products - do not
    substitute trastuzumab for T-DM1 or T-DXd"."""
    mixed = order(TDXD, "trastuzumab 6 mg/kg", text_drug="trastuzumab")
    f = _rule(_check(_after_thp(b.lvef(60, "2022-06-05")), "2022-06-15", mixed), "wrong-product")
    assert f.severity == "critical"
    assert "fam-trastuzumab deruxtecan vs trastuzumab" in f.summary
    # the plan (T-DXd now) names one of the two: the suggestion orders it
    assert f.replacement is not None and f.replacement.drug == TDXD


def test_plain_trastuzumab_while_tdm1_ongoing_is_wrong_product() -> None:
    """CLINICAL.md section 4: "a plain trastuzumab order where T-DM1/T-DXd was planned" (or is
    ongoing): "products are not interchangeable"."""
    story = _after_thp(drug(TDM1, "2022-06-10"), b.lvef(60, "2022-08-01"))
    f = _rule(
        _check(story, "2022-09-01", order("trastuzumab", dose=(3.6, "mg/kg"))), "wrong-product"
    )
    assert "is ongoing" in f.summary
    assert f.replacement is not None and f.replacement.drug == TDM1


def test_plain_trastuzumab_when_tdxd_is_the_next_regimen() -> None:
    """Seed 002: "do not substitute trastuzumab for T-DM1 or T-DXd" (T-DXd is recommended now)."""
    f = _rule(
        _check(_after_thp(b.lvef(60, "2022-06-05")), "2022-06-15", order("trastuzumab")),
        "wrong-product",
    )
    assert f.replacement is not None and f.replacement.drug == TDXD


def test_trastuzumab_with_new_chemotherapy_partner_is_not_a_product_error() -> None:
    """Seed 001: "Trastuzumab beyond progression with different chemotherapy partners"."""
    findings = _check(
        _after_thp(b.lvef(60, "2022-06-05")),
        "2022-06-15",
        order("trastuzumab", rid="MedicationRequest/a"),
        order("vinorelbine", rid="MedicationRequest/b"),
    )
    assert "wrong-product" not in [f.rule for f in findings]


def test_anthracycline_ordered_with_trastuzumab_is_critical() -> None:
    """Seed 002: "Do not combine trastuzumab with anthracyclines (27% risk of cardiac dysfunction
    vs 8% with sequential therapy)"."""
    findings = _check(
        her2_story(b.lvef(62, "2021-01-05")),
        "2021-01-10",
        order("doxorubicin", rid="MedicationRequest/a"),
        order("trastuzumab", rid="MedicationRequest/b"),
    )
    f = _rule(findings, "anthracycline-concurrent")
    assert f.severity == "critical" and f.order_id == "MedicationRequest/a"
    assert f.replacement is None and "No replacement order is offered" in f.detail


def test_anthracycline_ordered_within_seven_months_of_trastuzumab() -> None:
    """Seed 003: "allow up to 7 months washout after stopping trastuzumab"."""
    story = her2_story(drug("trastuzumab", "2021-01-15", "2021-06-01"))
    f = _rule(_check(story, "2021-10-01", order("doxorubicin")), "anthracycline-concurrent")
    assert "4.0 months after the last trastuzumab" in f.summary
    later = _check(story, "2022-03-01", order("doxorubicin"))  # 9 months: outside the washout
    assert "anthracycline-concurrent" not in [f.rule for f in later]


def test_trastuzumab_ordered_with_low_lvef() -> None:
    """CLINICAL.md section 4: cardiac-lvef "while on or ordering trastuzumab/pertuzumab/T-DM1/T-DXd"
    ... "withhold and repeat LVEF in 4 weeks"."""
    story = her2_story(b.lvef(65, "2020-12-01"), b.lvef(45, "2021-01-05"))
    f = _rule(_check(story, "2021-01-10", order("trastuzumab")), "cardiac-lvef")
    assert f.severity == "warning" and "LVEF 45%" in f.summary and "4 weeks" in f.detail


def test_her2_therapy_ordered_without_recent_lvef() -> None:
    """Seed 002: "Evaluate left ventricular ejection fraction (LVEF) prior to treatment
    initiation"."""
    f = _rule(_check(her2_story(), "2021-01-10", order("pertuzumab")), "lvef-due")
    assert f.severity == "info" and "No LVEF is on record" in f.detail


def test_tki_ordered_right_after_a_tki_line() -> None:
    """Seed 001: "Do not sequence a tyrosine kinase inhibitor after another TKI without
    intervening therapy"."""
    story = _after_thp(
        *regimen([TDXD], "2022-06-10", "2023-09-01"),
        b.progression("2023-09-01"),
        *regimen(["tucatinib", "trastuzumab", "capecitabine"], "2023-09-10", "2024-08-01"),
        b.progression("2024-08-01"),
        b.lvef(60, "2024-08-05"),
    )
    found = _check(story, "2024-08-15", order("neratinib"))
    f = _rule(found, "tki-after-tki")
    assert "after a TKI (tucatinib)" in f.summary
    # neratinib alone is off-sequence too: T-DM1 is offered once, on the off-sequence card
    fixes = [x.replacement.drug for x in found if x.replacement is not None]
    assert fixes == [TDM1] and _rule(found, "off-sequence").replacement is not None
    assert "offered on the off-sequence card" in f.detail


def test_capecitabine_alone_where_tdxd_is_due_names_tdxd_and_offers_it() -> None:
    """CLINICAL.md section 4 off-sequence: capecitabine alone where T-DXd is recommended names
    the recommended regimen and offers it (no longer only "add trastuzumab", which steered away
    from T-DXd without naming it); the missing HER2 blockade is still said."""
    findings = _check(_after_thp(b.lvef(60, "2022-06-05")), "2022-06-15", order("capecitabine"))
    f = _rule(findings, "off-sequence")
    assert f.severity == "warning"
    assert "T-DXd" in f.summary and "capecitabine" in f.summary
    assert "no HER2-directed agent" in f.detail
    assert f.replacement is not None and f.replacement.drug == TDXD
    assert f.replacement.action == "replace"
    assert "her2-blockade-stopped" not in {x.rule for x in findings}  # said once, by off-sequence


def test_lapatinib_alone_where_tdxd_is_due_is_off_sequence() -> None:
    f = _rule(
        _check(_after_thp(b.lvef(60, "2022-06-05")), "2022-06-15", order("lapatinib")),
        "off-sequence",
    )
    assert "trastuzumab deruxtecan (T-DXd)" in f.summary
    assert f.replacement is not None and f.replacement.drug == TDXD


def test_a_ranked_alternative_regimen_is_not_off_sequence_nor_a_wrong_product() -> None:
    """tucatinib + trastuzumab + capecitabine is a ranked alternative after THP: no off-sequence,
    and its trastuzumab is not "plain trastuzumab where T-DM1/T-DXd is planned"."""
    triplet = [
        order(d, rid=f"MedicationRequest/t{i}")
        for i, d in enumerate(("tucatinib", "trastuzumab", "capecitabine"))
    ]
    findings = _check(_after_thp(b.lvef(60, "2022-06-05")), "2022-06-15", *triplet)
    assert not {"off-sequence", "wrong-product"} & {f.rule for f in findings}


def test_a_fix_that_would_itself_be_flagged_is_not_offered() -> None:
    """Doxorubicin ordered shortly after trastuzumab: adding trastuzumab (the blockade fix)
    would be flagged by the anthracycline check, so no fix is one click away."""
    findings = _check(_after_thp(b.lvef(60, "2022-06-05")), "2022-06-15", order("doxorubicin"))
    assert any(f.rule == "anthracycline-concurrent" for f in findings)
    for f in findings:
        rep = f.replacement
        assert rep is None or "trastuzumab" not in {
            c.drug for c in (rep.components or (rep.component,))
        }


def test_endocrine_ordered_during_chemotherapy() -> None:
    """Seed 002: "Never give chemotherapy and endocrine therapy concurrently in HR-positive
    disease"."""
    story = her2_story(*regimen(THP, "2021-01-15"), b.lvef(60, "2021-02-01"), er=True)
    f = _rule(_check(story, "2021-03-01", order("letrozole")), "chemo-endocrine-concurrent")
    assert "letrozole ordered with docetaxel" in f.summary


def test_clean_order_has_no_findings() -> None:
    """The recommended regimen, at its dose, with a recent normal LVEF, raises no warning; a
    T-DXd order gets only the tdxd-ild-monitoring info (CLINICAL.md section 4: "on T-DXd")."""
    found = _check(
        _after_thp(b.lvef(60, "2022-06-05")), "2022-06-15", order(TDXD, dose=(5.4, "mg/kg"))
    )
    assert [(f.rule, f.severity) for f in found] == [("tdxd-ild-monitoring", "info")]


def test_trastuzumab_with_new_partner_after_tdm1_progression_is_not_a_mix_up() -> None:
    """Seed 003: "Continue HER2 blockade with subsequent lines of chemotherapy, even if switching
    the specific HER2-targeted agent"."""
    story = _after_thp(
        drug(TDM1, "2022-06-10"), b.progression("2022-10-01"), b.lvef(60, "2022-09-20")
    )
    findings = _check(
        story,
        "2022-10-05",
        order("trastuzumab", rid="MedicationRequest/a"),
        order("vinorelbine", rid="MedicationRequest/b"),
    )
    assert "wrong-product" not in [f.rule for f in findings]


def test_no_fix_ever_orders_tdxd_with_ild_on_record() -> None:
    """CLINICAL.md section 3: with ILD "T-DXd (alone or with pertuzumab) is not offered" - not
    even as the corrected dose or the clarified product of an order (found by the property
    test)."""
    story = _after_thp(b.ild("2020-03-01"), b.lvef(60, "2022-06-05"))
    wrong_dose = _check(story, "2022-06-15", order(TDXD, dose=(3.6, "mg/kg")))
    assert [f.rule for f in wrong_dose] == ["tdxd-ild"]
    assert wrong_dose[0].replacement is not None and wrong_dose[0].replacement.drug == TDM1
    mixed = order("trastuzumab", "Enhertu 5.4 mg/kg", dose=(5.4, "mg/kg"), text_drug=TDXD)
    for f in _check(story, "2022-06-15", mixed):
        assert f.replacement is None or f.replacement.drug != TDXD


def test_order_whose_drug_cannot_be_read_is_said_unchecked_not_passed_silently() -> None:
    """Safety first: a draft naming its drug through a Medication the request does not carry
    could be T-DXd for a patient with ILD; it gets a card saying it was not checked. An empty
    draft still being composed (the sandbox's first order-select call) gets none."""
    from cds_service.pipeline import order_check
    from tests import builders as b

    story = b.bundle(
        b.patient(), b.breast_cancer(), b.her2(True), b.metastasis(onset="2021-01-01"), b.ild()
    )
    unresolved = {
        "resourceType": "MedicationRequest",
        "id": "r1",
        "status": "draft",
        "intent": "order",
        "medicationReference": {"reference": "Medication/not-sent"},
    }
    empty = {"resourceType": "MedicationRequest", "id": "r2", "status": "draft", "intent": "order"}
    drafts = {"resourceType": "Bundle", "entry": [{"resource": unresolved}, {"resource": empty}]}
    # Judged while the record is current (its newest data is from 2021): a stale record gets
    # only the data-needed card (CLINICAL.md section 1, "in scope at all").
    result = order_check(
        story,
        drafts,
        instance="i",
        patient_id="p1",
        selections=None,
        signing=True,
        as_of=date(2021, 6, 1),
    )
    assert [(f.rule, f.order_id) for f in result.findings] == [
        ("order-not-checked", "MedicationRequest/r1")
    ]
    (card,) = result.cards
    assert "Medication/not-sent is not included" in card["detail"]
    assert card["indicator"] == "warning"


def test_order_select_flags_a_single_drug_and_names_the_regimen_it_may_become() -> None:
    """Second outside review N2: lapatinib alone passed silently at order-select because it
    might still become lapatinib + capecitabine. A set being entered is flagged like a signed
    one (section 4 off-sequence); the card says which offered regimen it is part of."""
    record = record_of(_after_thp(b.lvef(60, "2022-06-05")), "2022-06-15")

    def off(drug_id: str, complete: bool) -> OrderFinding:
        found = check_orders(record, [order(drug_id)], load_knowledge(), complete=complete)
        return _rule(found, "off-sequence")

    for complete in (False, True):
        f = off("tucatinib", complete)
        assert f.summary.startswith("tucatinib alone is not a recommended regimen")
        assert "part of tucatinib + trastuzumab + capecitabine" in f.detail
        assert "part of" not in off("lapatinib", complete).detail  # part of nothing offered


def test_off_sequence_while_a_line_goes_on_says_continue_and_offers_nothing_in_its_place() -> None:
    """Status first (CLINICAL.md section 3): an ongoing line without progression continues; an
    order of another regimen is off-sequence, and no regimen is offered to replace it."""
    story = her2_story(*regimen(THP, "2022-03-01"), b.lvef(60, "2022-06-01"))
    f = _rule(_check(story, "2022-06-15", order("lapatinib")), "off-sequence")
    assert "continue line 1" in f.summary
    assert f.replacement is None
    assert not [
        x for x in _check(story, "2022-06-15", order("trastuzumab")) if x.rule == "off-sequence"
    ]
