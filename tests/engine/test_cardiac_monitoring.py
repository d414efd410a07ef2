"""LVEF and ILD monitoring cards (CLINICAL.md section 4: cardiac-lvef, lvef-due,
tdxd-ild-monitoring; reviews: first pass 11, 12, 13, 15; second pass N9, N13, N14).

Expectations come from CLINICAL.md's "Cardiac rules by label" table and the lvef-due and
tdxd-ild-monitoring rows, never from what the engine returns. FHIR stories go through
build_record and assess / check_orders; the one-card-per-answer rule also over the HTTP client.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import check_orders, load_knowledge
from engine.cardiac import label_monitoring
from engine.model import Alert, Assessment, OrderFinding
from tests import builders as b
from tests.conftest import hook_request
from tests.engine_builders import assess_story, drug, her2_story, order, record_of, regimen

THP = ["pertuzumab", "trastuzumab", "docetaxel"]
HP = ["pertuzumab", "trastuzumab"]
TDXD = "fam-trastuzumab deruxtecan"
TDM1 = "ado-trastuzumab emtansine"
LVEF_RULES = {"cardiac-lvef", "lvef-due"}


def _after_thp(*more: dict[str, Any]) -> list[dict[str, Any]]:
    """THP 2021-01 to 2022-06 ended in progression: T-DXd is the next line, now."""
    return her2_story(*regimen(THP, "2021-01-15", "2022-06-01"), b.progression("2022-06-01"), *more)


def _lvef_alerts(a: Assessment) -> list[Alert]:
    return [al for al in a.alerts if al.rule in LVEF_RULES]


def _one(a: Assessment) -> Alert:
    found = _lvef_alerts(a)
    assert len(found) == 1, [al.summary for al in found]
    return found[0]


def _orders(story: list[dict[str, Any]], as_of: str, *drugs: str) -> list[OrderFinding]:
    drafts = [order(dr, rid=f"MedicationRequest/draft-{i}") for i, dr in enumerate(drugs)]
    return check_orders(record_of(story, as_of), drafts, load_knowledge())


def _lvef_findings(found: list[OrderFinding]) -> list[OrderFinding]:
    return [f for f in found if f.rule in LVEF_RULES]


# -- first-pass 12: each drug's own label -----------------------------------------------------


def test_baseline_lvef_before_tdxd_cites_the_enhertu_label_not_herceptin() -> None:
    """First-pass 12: "Baseline LVEF before starting T-DXd" cited the Herceptin label."""
    alert = _one(assess_story(_after_thp(b.lvef(62, "2021-01-10")), "2022-06-20"))
    assert alert.rule == "lvef-due"
    cited = {e.id for e in alert.evidence}
    assert cited == {"tdxd-label-lvef"}, cited
    assert "ENHERTU" in alert.detail and "HERCEPTIN" not in alert.detail


def test_tdm1_order_cites_kadcyla_and_a_triplet_order_says_tukysa_has_no_lvef_rule() -> None:
    story = _after_thp(b.lvef(62, "2021-01-10"))
    tdm1 = _lvef_findings(_orders(story, "2022-06-20", TDM1))
    assert len(tdm1) == 1 and {e.id for e in tdm1[0].evidence} == {"tdm1-label-lvef"}
    assert "KADCYLA" in tdm1[0].detail
    triplet = _lvef_findings(_orders(story, "2022-06-20", "tucatinib", "trastuzumab"))
    assert len(triplet) == 1
    assert "TUKYSA (tucatinib): its label has no LVEF" in triplet[0].detail
    assert {e.id for e in triplet[0].evidence} == {"trastuzumab-label"}


# -- N13: one LVEF card per answer, none for a drug the answer says not to give -------------


def test_thp_orders_get_one_lvef_finding_naming_both_antibodies() -> None:
    """N13: the THP one-click (loading and maintenance orders of each antibody) gave 4 cards."""
    story = her2_story(b.lvef(63, "2020-06-01"), met="2021-01-01")
    found = _orders(
        story, "2021-02-01", "pertuzumab", "pertuzumab", "trastuzumab", "trastuzumab", "docetaxel"
    )
    lvef = _lvef_findings(found)
    assert len(lvef) == 1, [f.summary for f in lvef]
    assert "pertuzumab" in lvef[0].summary and "trastuzumab" in lvef[0].summary
    assert {e.id for e in lvef[0].evidence} == {"pertuzumab-label", "trastuzumab-label"}


def test_no_lvef_card_for_tdxd_ordered_with_ild_on_record() -> None:
    """N13: "Baseline LVEF before starting T-DXd" beside the critical "do not give T-DXd"."""
    story = _after_thp(b.lvef(62, "2021-01-10"), b.ild("2021-09-01"))
    found = _orders(story, "2022-06-20", TDXD)
    assert [f.rule for f in found if f.severity == "critical"] == ["tdxd-ild"]
    assert not _lvef_findings(found)
    assert "tdxd-ild-monitoring" not in {f.rule for f in found}


def test_patient_view_cardiac_card_carries_the_lvef_due_words() -> None:
    """A label rule met by an LVEF older than 3 months: one card, cardiac-lvef, also lvef-due."""
    story = her2_story(
        *regimen(HP, "2021-06-15"), b.lvef(66, "2021-06-01"), b.lvef(40, "2021-09-01")
    )
    alert = _one(assess_story(story, "2022-03-01"))
    assert alert.rule == "cardiac-lvef" and alert.also == ("lvef-due",)
    assert "LVEF due: none in the last 3 months" in alert.detail


def test_one_lvef_card_over_the_order_select_hook(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: date(2021, 2, 1))
    story = her2_story(b.lvef(63, "2020-06-01"), met="2021-01-01")
    drafts = [
        {
            "resourceType": "MedicationRequest",
            "id": f"d{i}",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {"text": text},
        }
        for i, text in enumerate(["pertuzumab 840 mg IV", "trastuzumab 8 mg/kg IV", "Herceptin"])
    ]
    ctx = {
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": r} for r in drafts]},
        "selections": [f"MedicationRequest/d{i}" for i in range(3)],
    }
    body = hook_request(b.bundle(*story), "order-select", extra_context=ctx)
    cards = client.post("/cds-services/her2-order-select", json=body).get_json()["cards"]
    rules = [c["extension"]["org.her2cds"].get("rule") for c in cards]
    assert sum(r in LVEF_RULES for r in rules) == 1, rules


# -- N9 / N14: wording ------------------------------------------------------------------------


def test_only_the_deciding_tdxd_rule_is_quoted() -> None:
    """N9: "its label's rule is met (drop over 20 ...); its label's rule is met (40-45%:
    continue)" contradicted itself at LVEF 42% after a 26-point drop."""
    story = _after_thp(b.lvef(68, "2022-05-01"), b.lvef(42, "2022-06-10"))
    found = _lvef_findings(_orders(story, "2022-06-20", TDXD))
    assert len(found) == 1 and found[0].rule == "cardiac-lvef"
    detail = found[0].detail
    assert detail.count("label's rule is met") == 1
    assert (
        "more than 20 points" in detail and "(continue; repeat LVEF within 3 weeks)" not in detail
    )


def test_heart_failure_at_normal_lvef_is_said_once_and_offers_no_hold_for_a_new_drug() -> None:
    """N14: "review with cardiology before HER2-directed therapy: review with cardiology before
    starting ..."; "the fix is to hold the drug, not to swap it" for a drug not started."""
    hf = b.condition("84114007", "Heart failure", "2021-08-01")
    story = _after_thp(b.lvef(64, "2022-05-01"), b.lvef(60, "2022-06-10"), hf)
    found = _lvef_findings(_orders(story, "2022-06-20", TDXD))
    assert len(found) == 1 and found[0].severity == "warning"
    assert found[0].detail.count("review with cardiology") == 1
    assert "not to swap" not in found[0].detail


def test_hold_not_swap_is_said_for_a_drug_being_given() -> None:
    story = her2_story(
        *regimen(HP, "2021-06-15"), b.lvef(66, "2021-06-01"), b.lvef(44, "2022-02-20")
    )
    found = _lvef_findings(_orders(story, "2022-03-01", "trastuzumab"))
    assert len(found) == 1 and "the fix is to hold trastuzumab, not to swap" in found[0].detail


def test_title_never_says_zero_points_below_baseline() -> None:
    """N14: "0 points below baseline 61%"."""
    hf = b.condition("85898001", "Cardiomyopathy", "2021-08-01")
    story = _after_thp(b.lvef(61, "2021-01-10"), b.lvef(61, "2022-06-10"), hf)
    alert = _one(assess_story(story, "2022-06-20"))
    assert "0 points" not in alert.summary and "as at baseline" in alert.summary


# -- first-pass 15 / N9: repeat LVEF overdue ----------------------------------------------------


def test_repeat_lvef_overdue_after_the_label_interval() -> None:
    """LVEF 42% on HP (a 24-point drop): pertuzumab's repeat in about 3 weeks (21 days) is
    overdue 5 weeks later; trastuzumab's 4 weeks would be later."""
    story = her2_story(
        *regimen(HP, "2021-06-15"), b.lvef(66, "2021-06-01"), b.lvef(42, "2022-01-10")
    )
    alert = _one(assess_story(story, "2022-02-15"))
    assert "repeat overdue since 2022-01-31" in alert.summary
    assert "Repeat LVEF overdue since 2022-01-31" in alert.detail


def test_repeat_lvef_not_overdue_within_the_interval() -> None:
    story = her2_story(
        *regimen(HP, "2021-06-15"), b.lvef(66, "2021-06-01"), b.lvef(42, "2022-01-10")
    )
    alert = _one(assess_story(story, "2022-01-25"))
    assert "overdue" not in alert.summary and "Repeat LVEF in about 3 weeks" in alert.detail


def test_tdxd_continue_and_repeat_row_is_overdue_too() -> None:
    """ENHERTU: LVEF 40-45% with a drop under 10 points: continue, repeat within 3 weeks."""
    story = _after_thp(drug(TDXD, "2022-06-10"), b.lvef(49, "2022-06-05"), b.lvef(43, "2022-08-01"))
    alert = _one(assess_story(story, "2022-09-01"))
    assert alert.rule == "cardiac-lvef" and alert.severity == "info"
    assert "repeat overdue since 2022-08-22" in alert.summary


# -- first-pass 11: lvef-due for the next regimen ---------------------------------------------


def test_lvef_due_names_the_antibody_of_the_next_line_recommended_on_progression() -> None:
    """First-pass 11: no lvef-due card while T-DM1 was the next line and the last LVEF was 6
    months old. Here capecitabine alone goes on after T-DXd; the next line holds an ADC or
    trastuzumab, and CLINICAL.md asks for a baseline before starting it."""
    story = her2_story(
        *regimen(THP, "2021-01-15", "2021-09-01"),
        b.progression("2021-09-01"),
        drug(TDXD, "2021-09-10", "2022-03-01"),
        b.progression("2022-03-01"),
        drug("capecitabine", "2022-03-10"),
        b.lvef(60, "2021-09-05"),
    )
    a = assess_story(story, "2022-06-01")
    alert = _one(a)
    assert alert.rule == "lvef-due"
    rec = a.recommendation
    assert rec is not None
    given = set(rec.preferred.regimen.drugs) & load_knowledge().agents("lvef_baseline")
    assert given and all(dr in alert.summary for dr in given)


# -- first-pass 13: tdxd-ild-monitoring ---------------------------------------------------------


def test_tdxd_order_without_ild_gets_the_ild_monitoring_advice() -> None:
    found = _orders(_after_thp(b.lvef(60, "2022-06-05")), "2022-06-20", TDXD, TDXD)
    mon = [f for f in found if f.rule == "tdxd-ild-monitoring"]
    assert len(mon) == 1 and mon[0].severity == "info"
    for words in ("cough", "dyspnoea", "fever", "chest CT", "UNVERIFIED", "grade 2 or more"):
        assert words in mon[0].detail, words


def test_tdxd_running_gets_the_ild_monitoring_advice_with_ct() -> None:
    story = _after_thp(drug(TDXD, "2022-06-10"), b.lvef(60, "2022-08-01"))
    alert = next(
        al for al in assess_story(story, "2022-09-01").alerts if al.rule == "tdxd-ild-monitoring"
    )
    assert "cough" in alert.detail and "restaging CT" in alert.detail


# -- invariant: at most one LVEF card per answer ------------------------------------------------

_DRUGS = ["pertuzumab", "trastuzumab", TDM1, TDXD, "margetuximab", "lapatinib", "tucatinib"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.integers(25, 75), min_size=0, max_size=3),
    ordered=st.lists(st.sampled_from(_DRUGS), min_size=1, max_size=5),
    on_hp=st.booleans(),
    hf=st.booleans(),
)
def test_at_most_one_lvef_card_per_answer(
    values: list[int], ordered: list[str], on_hp: bool, hf: bool
) -> None:
    """For any LVEF series, heart-failure record and order set: at most one LVEF card in the
    patient-view answer and one in the order answer."""
    extra: list[dict[str, Any]] = [
        b.lvef(v, f"2021-{3 * i + 2:02d}-10") for i, v in enumerate(values)
    ]
    if hf:
        extra.append(b.condition("84114007", "Heart failure", "2021-02-01"))
    story = her2_story(*(regimen(HP, "2021-01-15") if on_hp else []), *extra)
    assert len(_lvef_alerts(assess_story(story, "2022-03-01"))) <= 1
    assert len(_lvef_findings(_orders(story, "2022-03-01", *ordered))) <= 1


def test_labels_without_an_lvef_rule_name_known_unmonitored_drugs() -> None:
    """Every "no LVEF rule" entry is a HER2-directed drug the cardiac rules do not judge, and
    every label's monitoring words are shown marked unverified until checked."""
    kb = load_knowledge()
    assert {"tucatinib", "neratinib"} <= set(kb.cardiac.no_lvef_rule)
    for drug_id in kb.cardiac.no_lvef_rule:
        assert kb.drug(drug_id) is not None and kb.is_her2_directed(drug_id), drug_id
        assert drug_id not in kb.agents("cardiac_monitored"), drug_id
    for drug_id, label in kb.cardiac.labels.items():
        words, cited = label_monitoring(kb, [drug_id])
        assert label.monitoring in words and [e.id for e in cited] == [label.evidence]
        assert label.monitoring_verified or "unverified" in words, drug_id


def test_lvef_due_on_hp_cites_each_label_and_the_next_lines_baseline() -> None:
    """On HP with no recent LVEF: PERJETA's and HERCEPTIN's words; T-DXd, the next line on
    progression, needs that LVEF as its baseline too (ENHERTU cited)."""
    story = her2_story(*regimen(HP, "2021-06-15"), b.lvef(64, "2021-06-01"))
    alert = _one(assess_story(story, "2022-03-01"))
    assert alert.rule == "lvef-due" and "on pertuzumab, trastuzumab" in alert.summary
    cited = {e.id for e in alert.evidence}
    assert cited == {"pertuzumab-label", "trastuzumab-label", "tdxd-label-lvef"}
    assert "PERJETA" in alert.detail and "HERCEPTIN" in alert.detail
    assert f"The next regimen contains {TDXD}" in alert.detail
