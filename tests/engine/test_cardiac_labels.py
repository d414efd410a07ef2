"""Cardiac rules by label (CLINICAL.md section 4): each drug judged by its own label.

Expectations come from CLINICAL.md's table "Cardiac rules by label" and the cardiac-lvef /
lvef-due rows, never from what the engine returns. FHIR stories go through build_record and
assess; order-sign goes over the HTTP client.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.knowledge as knowledge
from engine import check_orders, load_knowledge
from engine.knowledge import KnowledgeError
from engine.model import Alert, Assessment
from tests import builders as b
from tests.conftest import hook_request
from tests.engine_builders import assess_story, her2_story, order, record_of, regimen

THP = ["pertuzumab", "trastuzumab", "docetaxel"]
TDXD = "fam-trastuzumab deruxtecan"
TDM1 = "ado-trastuzumab emtansine"
START = "2022-07-01"  # the drug under test starts here; the baseline LVEF is taken just before
AS_OF = "2022-10-20"


def _cardiac(a: Assessment) -> Alert | None:
    found = [al for al in a.alerts if al.rule == "cardiac-lvef"]
    return found[0] if found else None


def _alert(a: Assessment, rule: str) -> Alert:
    found = [al for al in a.alerts if al.rule == rule]
    assert found, f"no {rule} alert in {[al.rule for al in a.alerts]}"
    return found[0]


def _on(
    drugs: list[str], baseline: float, *later: float, extra: tuple[Any, ...] = ()
) -> Assessment:
    """On `drugs` since START (first metastatic line, ongoing); LVEF `baseline` before the
    start, then each of `later` about monthly, the last one a few days before AS_OF."""
    lvefs = [b.lvef(baseline, "2022-06-25")]
    last = date.fromisoformat(AS_OF) - timedelta(days=5)
    room = (last - date.fromisoformat(START)).days - 7  # all on the drug, after its start
    step = min(30, room // max(len(later) - 1, 1))
    for i, value in enumerate(later):
        when = last - timedelta(days=step * (len(later) - 1 - i))
        lvefs.append(b.lvef(value, when.isoformat()))
    story = her2_story(*regimen(drugs, START), *lvefs, *extra, met="2022-06-01")
    return assess_story(story, AS_OF)


def _must(a: Assessment) -> Alert:
    alert = _cardiac(a)
    assert alert is not None, f"no cardiac-lvef alert in {[al.rule for al in a.alerts]}"
    return alert


# --- the table, drug by drug -----------------------------------------------------------------


def test_tdxd_60_to_42_interrupts_by_the_tdxd_rule_with_3_week_recheck() -> None:
    """T-DXd: "40-45% with a drop of 10-20: interrupt"; recheck 3 weeks. Drop 18 from 60."""
    alert = _must(_on([TDXD], 60, 42))
    assert alert.severity == "warning"
    assert alert.withhold == (TDXD,)
    assert "interrupt" in alert.summary.lower()
    assert "40-45% with a drop of 10-20" in alert.detail
    assert "ENHERTU" in alert.detail and "3 weeks" in alert.detail
    assert "4 weeks" not in alert.detail  # not the trastuzumab rule
    assert "verified" in alert.detail  # the label rule is not yet checked against DailyMed
    assert [e.id for e in alert.evidence] == ["tdxd-label-lvef"]  # its own label, not all six


def test_trastuzumab_60_to_45_withholds_under_lln_with_drop_of_10_or_more() -> None:
    """Trastuzumab: "under the lower limit of normal with a drop of 10 or more" (drop 15)."""
    alert = _must(_on(["trastuzumab", "docetaxel"], 60, 45))
    assert alert.withhold == ("trastuzumab",)
    assert alert.severity == "warning"
    assert "withhold trastuzumab" in alert.summary and "4 weeks" in alert.detail


def test_trastuzumab_65_to_49_withholds_for_a_drop_of_16() -> None:
    alert = _must(_on(["trastuzumab", "docetaxel"], 65, 49))
    assert alert.withhold == ("trastuzumab",) and "4 weeks" in alert.detail


def test_tdm1_under_40_is_critical() -> None:
    """T-DM1: "under 40%: hold"; CLINICAL.md: critical under 40%."""
    alert = _must(_on([TDM1], 55, 38))
    assert alert.severity == "critical" and alert.withhold == (TDM1,)
    assert "KADCYLA" in alert.detail and "3 weeks" in alert.detail


def test_pertuzumab_47_with_drop_of_10_withholds_with_3_week_recheck() -> None:
    """Pertuzumab: "45-49% with a drop of 10 or more: withhold; about 3 weeks"."""
    alert = _must(_on(["pertuzumab"], 57, 47))
    assert alert.withhold == ("pertuzumab",)
    assert "about 3 weeks" in alert.detail


def test_thp_reports_each_drugs_own_rule() -> None:
    """LVEF 50 -> 44 (drop 6): under 45% meets pertuzumab's rule; trastuzumab's needs a drop
    of 10 under the LLN, or 16: not met. Each drug's verdict is said, and only pertuzumab held."""
    alert = _must(_on(THP, 50, 44))
    assert alert.withhold == ("pertuzumab",)
    assert alert.summary.endswith(": withhold pertuzumab")
    assert "trastuzumab: its label's rule is not met" in alert.detail
    assert "about 3 weeks" in alert.detail


def test_thp_with_both_rules_met_withholds_both() -> None:
    alert = _must(_on(THP, 58, 46))  # drop 12: pertuzumab 45-49 drop>=10; trastuzumab <LLN drop>=10
    assert set(alert.withhold) == {"pertuzumab", "trastuzumab"}
    assert "4 weeks" in alert.detail and "about 3 weeks" in alert.detail


def test_lapatinib_under_lln_is_discontinued_and_critical() -> None:
    """Lapatinib: "under the lower limit of normal: discontinue" (drop only 6)."""
    alert = _must(_on(["lapatinib", "capecitabine"], 54, 48))
    assert alert.withhold == ("lapatinib",)
    assert alert.severity == "critical"
    assert "discontinue lapatinib" in alert.summary


def test_margetuximab_is_monitored_like_trastuzumab() -> None:
    alert = _must(_on(["margetuximab", "capecitabine"], 62, 46))  # drop 16
    assert alert.withhold == ("margetuximab",)
    assert "4 weeks" in alert.detail and "MARGENZA" in alert.detail


def test_symptomatic_heart_failure_is_critical() -> None:
    hf = b.condition("84114007", "Congestive heart failure", "2022-09-01")
    alert = _must(_on([TDXD], 60, 58, extra=(hf,)))
    assert alert.severity == "critical" and alert.withhold == (TDXD,)


def test_heart_failure_without_symptoms_recorded_is_a_warning_that_says_so() -> None:
    """CLINICAL.md section 4: critical when symptomatic. A plain "Heart failure" with LVEF 60%
    does not say so: a warning naming what is missing, nothing withheld (outside review)."""
    hf = b.condition("84114007", "Heart failure", "2022-09-01")
    alert = _must(_on([TDXD], 60, 58, extra=(hf,)))
    assert alert.severity == "warning" and alert.withhold == ()
    assert "symptoms not recorded" in alert.detail + alert.summary


def test_normal_lvef_on_tdxd_gives_no_cardiac_card() -> None:
    assert _cardiac(_on([TDXD], 60, 58)) is None


# --- boundaries, per the table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("drugs", "baseline", "latest", "held", "severity"),
    [
        # T-DXd: <40 or drop >20 interrupt; 40-45 with drop 10-20 interrupt; else continue
        ([TDXD], 50, 40, True, "warning"),  # exactly 40, drop 10: the 40-45 band
        ([TDXD], 55, 45, True, "warning"),  # exactly 45, drop 10
        ([TDXD], 56, 46, False, None),  # over 45 with drop 10: continue
        ([TDXD], 54, 45, False, None),  # 45 with drop 9: continue
        ([TDXD], 62, 42, True, "warning"),  # drop exactly 20 in the band
        ([TDXD], 70, 50, False, None),  # drop exactly 20 at 50: not "over 20"
        ([TDXD], 71, 50, True, "warning"),  # drop 21: over 20
        ([TDXD], 45, 39, True, "critical"),  # under 40
        # T-DM1: <40 hold; 40-45 with drop >= 10 hold
        ([TDM1], 50, 40, True, "warning"),
        ([TDM1], 55, 45, True, "warning"),
        ([TDM1], 49, 40, False, None),  # drop 9
        ([TDM1], 70, 46, False, None),  # over 45, even with drop 24
        # trastuzumab: drop >= 16, or under LLN (50) with drop >= 10
        (["trastuzumab", "docetaxel"], 76, 60, True, "warning"),  # drop exactly 16
        (["trastuzumab", "docetaxel"], 75, 60, False, None),  # drop 15 above LLN
        (["trastuzumab", "docetaxel"], 59, 49, True, "warning"),  # under LLN, drop exactly 10
        (["trastuzumab", "docetaxel"], 58, 49, False, None),  # under LLN, drop 9
        (["trastuzumab", "docetaxel"], 60, 50, False, None),  # at the LLN, drop 10
        (["trastuzumab", "docetaxel"], 44, 40, False, None),  # exactly 40, drop 4
        # pertuzumab: <45, or 45-49 with drop >= 10
        (["pertuzumab"], 55, 45, True, "warning"),
        (["pertuzumab"], 54, 45, False, None),
        (["pertuzumab"], 59, 49, True, "warning"),
        (["pertuzumab"], 60, 50, False, None),
        (["pertuzumab"], 46, 44, True, "warning"),
    ],
)
def test_boundaries_of_the_table(
    drugs: list[str], baseline: float, latest: float, held: bool, severity: str | None
) -> None:
    alert = _cardiac(_on(drugs, baseline, latest))
    if not held:
        assert alert is None or not alert.withhold, alert
        return
    assert alert is not None
    assert alert.withhold == (drugs[0],)
    assert alert.severity == severity


def test_tdxd_40_to_45_with_a_small_drop_continues_with_a_repeat_lvef() -> None:
    """The T-DXd label's own row (quoted on the card): 40-45% with a drop under 10: continue,
    repeat LVEF within 3 weeks. Not a hold: an info card, nothing withheld."""
    alert = _must(_on([TDXD], 50, 43))
    assert alert.severity == "info" and alert.withhold == ()
    assert "continue fam-trastuzumab deruxtecan with a repeat LVEF within 3 weeks" in alert.summary


def test_under_40_is_critical_even_when_the_label_rule_is_not_met() -> None:
    """CLINICAL.md: critical under 40% (trastuzumab 44 -> 39: drop 5 meets neither clause)."""
    alert = _must(_on(["trastuzumab", "docetaxel"], 44, 39))
    assert alert.severity == "critical"


def test_tdxd_drop_over_20_confirmed_on_the_repeat_is_discontinued() -> None:
    """T-DXd: "a drop over 20 points: interrupt (discontinue if confirmed)"."""
    alert = _must(_on([TDXD], 70, 48, 47))
    assert alert.severity == "critical"
    assert "permanently discontinue" in alert.summary and "confirmed" in alert.detail


def test_trastuzumab_not_recovered_in_8_weeks_is_discontinued() -> None:
    """Trastuzumab: "discontinue if not recovered in 8 weeks"."""
    alert = _must(_on(["trastuzumab", "docetaxel"], 64, 48, 47, 48))  # met for 60 days
    assert alert.severity == "critical" and "permanently discontinue" in alert.summary


def test_trastuzumab_held_more_than_3_times_is_discontinued() -> None:
    """Trastuzumab: "discontinue ... after more than 3 holds" (the rule met 4 separate times)."""
    alert = _must(_on(["trastuzumab", "docetaxel"], 64, 47, 62, 47, 62, 47, 62, 47))
    assert alert.severity == "critical" and "permanently discontinue" in alert.summary
    assert "4 separate times" in alert.detail
    three = _must(_on(["trastuzumab", "docetaxel"], 64, 47, 62, 47, 62, 47))
    assert three.severity == "warning" and "withhold trastuzumab" in three.summary


def test_the_series_is_kept_not_only_the_latest_value() -> None:
    alert = _must(_on([TDXD], 60, 55, 42))
    assert "60%" in alert.detail and "55%" in alert.detail and "42%" in alert.detail


# --- recommended, not yet started ------------------------------------------------------------


def _after_thp(*more: dict[str, Any]) -> list[dict[str, Any]]:
    return her2_story(*regimen(THP, "2021-01-15", "2022-06-01"), b.progression("2022-06-01"), *more)


def test_tdxd_recommended_without_recent_lvef_asks_for_a_baseline() -> None:
    """lvef-due: "a HER2-directed antibody or ADC recommended ... with no LVEF in the last 3
    months (baseline before starting)"."""
    a = assess_story(_after_thp(b.lvef(61, "2021-12-01")), "2022-06-15")
    assert a.recommendation is not None and a.recommendation.timing == "now"
    assert TDXD in a.recommendation.preferred.regimen.drugs
    alert = _alert(a, "lvef-due")
    assert "before starting" in alert.summary.lower() and TDXD in alert.summary
    assert "baseline" in alert.detail.lower()


def test_tdxd_recommended_with_a_low_lvef_gets_the_tdxd_rule_before_starting() -> None:
    a = assess_story(_after_thp(b.lvef(60, "2021-01-05"), b.lvef(38, "2022-06-05")), "2022-06-15")
    alert = _must(a)
    assert alert.severity == "critical" and TDXD in alert.withhold
    assert "before starting" in alert.summary.lower() and "ENHERTU" in alert.detail


# --- order-sign over HTTP --------------------------------------------------------------------


def _order_sign(client: FlaskClient, resources: list[dict[str, Any]], text: str) -> list[Any]:
    bundle = b.bundle(*resources)
    draft = b.request(None, text, AS_OF, status="draft", rid="draft-1")
    ctx = {"draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]}}
    body = hook_request(bundle, "order-sign", extra_context=ctx)
    resp = client.post("/cds-services/her2-order-sign", json=body)
    assert resp.status_code == 200
    cards: list[Any] = resp.get_json()["cards"]
    return cards


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: date.fromisoformat(AS_OF))


@pytest.mark.usefixtures("pinned")
def test_order_sign_pertuzumab_without_recent_lvef_asks_for_a_baseline(
    client: FlaskClient,
) -> None:
    story = her2_story(b.lvef(60, "2021-06-01"), met="2022-09-01")
    cards = _order_sign(client, story, "pertuzumab 840 mg IV")
    due = [c for c in cards if "LVEF" in c["summary"] and "before starting" in c["summary"]]
    assert due, [c["summary"] for c in cards]
    assert due[0]["indicator"] == "info" and "pertuzumab" in due[0]["summary"]


@pytest.mark.usefixtures("pinned")
def test_order_sign_tdm1_with_lvef_38_is_critical(client: FlaskClient) -> None:
    story = her2_story(b.lvef(55, "2022-06-01"), b.lvef(38, "2022-10-10"), met="2022-09-01")
    cards = _order_sign(client, story, "ado-trastuzumab emtansine 3.6 mg/kg IV")
    cardiac = [c for c in cards if "KADCYLA" in c.get("detail", "")]
    assert cardiac and cardiac[0]["indicator"] == "critical", [c["summary"] for c in cards]


# --- property: never lower than the table says -----------------------------------------------

_MONITORED = [TDXD, TDM1, "trastuzumab", "pertuzumab", "margetuximab", "lapatinib"]


def _table_met(drug_id: str, value: float, drop: float) -> bool:
    """CLINICAL.md's table, written out here (LLN 50)."""
    if drug_id == TDXD:
        return value < 40 or drop > 20 or (40 <= value <= 45 and 10 <= drop <= 20)
    if drug_id == TDM1:
        return value < 40 or (40 <= value <= 45 and drop >= 10)
    if drug_id == "pertuzumab":
        return value < 45 or (45 <= value < 50 and drop >= 10)
    if drug_id == "lapatinib":
        return value < 50 or drop >= 10
    return drop >= 16 or (value < 50 and drop >= 10)  # trastuzumab, margetuximab


_REGIMENS = [
    [TDXD],
    [TDM1],
    ["pertuzumab"],
    THP,
    ["trastuzumab", "capecitabine"],
    ["margetuximab", "capecitabine"],
    ["lapatinib", "capecitabine"],
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    drugs=st.sampled_from(_REGIMENS),
    baseline=st.integers(35, 75),
    later=st.lists(st.integers(25, 75), min_size=1, max_size=4),
)
def test_severity_never_lower_than_the_label_rule(
    drugs: list[str], baseline: int, later: list[int]
) -> None:
    """For any LVEF series: a card of at least warning, withholding the drug, whenever a label
    rule of a running drug is met; critical whenever the latest value is under 40."""
    alert = _cardiac(_on(drugs, baseline, *later))
    latest = later[-1]
    for drug_id in (d for d in drugs if d in _MONITORED):
        if _table_met(drug_id, latest, baseline - latest):
            assert alert is not None and alert.severity in ("warning", "critical")
            assert drug_id in alert.withhold, (drug_id, alert.summary)
    if latest < 40:
        assert alert is not None and alert.severity == "critical"


def test_order_finding_says_which_drug_to_withhold() -> None:
    story = her2_story(b.lvef(55, "2022-06-01"), b.lvef(38, "2022-10-10"), met="2022-09-01")
    findings = check_orders(record_of(story, AS_OF), [order(TDM1)], load_knowledge())
    cardiac = [f for f in findings if f.rule == "cardiac-lvef"]
    assert cardiac and cardiac[0].withhold == (TDM1,) and cardiac[0].severity == "critical"
    assert "do not start" in cardiac[0].summary


def test_a_monitored_drug_without_a_label_rule_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every drug in agents.cardiac_monitored needs its label in cardiac.yaml."""
    target = tmp_path / "knowledge"
    shutil.copytree(knowledge.KNOWLEDGE_DIR, target)
    path = target / "cardiac.yaml"
    text = path.read_text()
    assert "    covers: [lapatinib]" in text
    path.write_text(text.replace("    covers: [lapatinib]", "    covers: [neratinib]"))
    monkeypatch.setattr(knowledge, "KNOWLEDGE_DIR", target)
    load_knowledge.cache_clear()
    try:
        with pytest.raises(KnowledgeError, match="lapatinib"):
            load_knowledge()
    finally:
        monkeypatch.undo()
        load_knowledge.cache_clear()


def test_every_label_rule_is_marked_unverified_until_checked() -> None:
    kb = load_knowledge()
    for drug_id in _MONITORED:
        label = kb.cardiac.labels[drug_id]
        assert label.verified or "DailyMed" in label.verification, drug_id
    assert set(_MONITORED) <= kb.agents("cardiac_monitored")
    assert float(kb.param("cardiac", "lvef_low")) == 50
