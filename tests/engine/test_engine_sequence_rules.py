"""Early relapse after early-setting HER2 agents, "T-DXd is never skipped", ILD after T-DXd, and
evidence that fits the patient (CLINICAL.md sections 2.6, 3 and 4; issue 18 classes 5-7, 9, 10).

Stories are FHIR resources through build_record and assess; expectations are CLINICAL.md's.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import assess, load_knowledge
from engine.knowledge import KNOWLEDGE_DIR
from engine.model import Assessment, PatientRecord, ReceptorStatus, Recommendation
from tests import builders as b
from tests.engine_builders import (
    assess_story,
    direct_line,
    direct_record,
    drug,
    her2_story,
    regimen,
)

KB = load_knowledge()
TDXD = "fam-trastuzumab deruxtecan"
TDM1 = "ado-trastuzumab emtansine"
THP = ["pertuzumab", "trastuzumab", "docetaxel"]
TRIPLET = ["tucatinib", "trastuzumab", "capecitabine"]
TRIPLET_ID = "tucatinib-trastuzumab-capecitabine"


def _rec(a: Assessment) -> Recommendation:
    assert a.recommendation is not None, a.data_needs
    return a.recommendation


def _ids(rec: Recommendation) -> list[str]:
    return [rec.preferred.regimen.id, *(o.regimen.id for o in rec.alternatives)]


def katherine(met: str = "2020-10-01") -> list[dict[str, Any]]:
    """Neoadjuvant THP, residual disease, adjuvant T-DM1 (KATHERINE), relapse at `met`."""
    return her2_story(
        *regimen(THP, "2019-01-01", "2019-05-01"),
        drug(TDM1, "2019-06-01", "2020-04-01"),
        met=met,
    )


# --- class 5: early relapse after adjuvant T-DM1 -----------------------------------------------


def test_relapse_six_months_after_adjuvant_tdm1_gets_tdxd_and_names_the_threshold() -> None:
    """CLINICAL.md 2.6: "metastatic disease within 12 months of the last (neo)adjuvant
    HER2-directed dose (trastuzumab, pertuzumab, T-DM1 as in KATHERINE, T-DXd, or neratinib)
    counts as one prior line ... a relapse within 12 months of adjuvant T-DM1 gets T-DXd, not THP
    and not T-DM1 again ... say which one was used". Trastuzumab ended 17 months before."""
    rec = _rec(assess_story(katherine(), "2020-10-10"))
    assert rec.early_relapse and rec.prior_her2_lines == 1
    assert rec.preferred.regimen.id == "tdxd"
    assert "thp" not in _ids(rec) and "tdm1" not in _ids(rec)
    assert rec.early_relapse_threshold_months == 12
    said = " ".join(rec.reasons)
    assert "threshold 12 months, parameter lines.early_relapse_months" in said
    assert "ado-trastuzumab emtansine" in said and "early relapse" in said


def test_relapse_long_after_adjuvant_tdm1_is_first_line_without_tdm1_as_untried() -> None:
    """CLINICAL.md 2.6: "More than 12 months: first-line rules apply"; section 3: T-DM1 given in
    the early setting counts as received."""
    rec = _rec(assess_story(katherine(met="2022-01-01"), "2022-01-10"))
    assert not rec.early_relapse and rec.preferred.regimen.id == "thp"
    assert "late relapse, first-line rules apply" in " ".join(rec.reasons)


def test_relapse_within_a_year_of_extended_adjuvant_neratinib_is_an_early_relapse() -> None:
    """CLINICAL.md 2.6: neratinib in the early setting counts for the early-relapse rule."""
    story = her2_story(
        *regimen(["docetaxel", "carboplatin", "trastuzumab"], "2018-01-01", "2019-01-01"),
        drug("neratinib", "2019-02-01", "2020-02-01"),
        met="2020-09-01",
    )
    rec = _rec(assess_story(story, "2020-09-10"))
    assert rec.early_relapse and rec.preferred.regimen.id == "tdxd"


# --- class 6: T-DXd is never skipped ------------------------------------------------------------


def _thp_then_triplet(*more: dict[str, Any]) -> list[dict[str, Any]]:
    return her2_story(
        *regimen(THP, "2021-01-15", "2022-06-01"),
        b.progression("2022-06-01"),
        *regimen(TRIPLET, "2022-06-10", "2023-06-01"),
        b.progression("2023-06-01"),
        *more,
    )


def test_tdxd_naive_after_thp_and_tucatinib_triplet_gets_tdxd_not_tdm1() -> None:
    """CLINICAL.md section 3: "T-DXd is never skipped: at any line, a patient who never received
    T-DXd and has no ILD gets T-DXd as preferred ... (for example after THP and then the
    tucatinib triplet)"."""
    rec = _rec(assess_story(_thp_then_triplet(), "2023-06-15"))
    assert rec.prior_her2_lines == 2 and rec.line == 3
    assert rec.preferred.regimen.id == "tdxd"
    assert "tdm1" in _ids(rec)[1:]
    assert any("never skipped" in r for r in rec.reasons)
    assert "Second-line" not in rec.preferred.reason  # the summary fits line 3


def test_after_tdxd_the_table_rows_apply() -> None:
    """CLINICAL.md section 3: "Rows 2 and 3 apply to patients who already had T-DXd"."""
    story = her2_story(
        *regimen(THP, "2021-01-15", "2022-06-01"),
        b.progression("2022-06-01"),
        drug(TDXD, "2022-06-10", "2023-09-01"),
        b.progression("2023-09-01"),
    )
    rec = _rec(assess_story(story, "2023-09-20"))
    assert rec.preferred.regimen.id == "tucatinib-trastuzumab-capecitabine"
    assert not any("never skipped" in r for r in rec.reasons)
    assert rec.preferred.reason.startswith("Standard after T-DXd")


def test_never_skip_is_knowledge_not_code() -> None:
    """The rule lives in regimens.yaml (never_skip), not in an `if` on a drug name."""
    assert [n.regimen for n in KB.never_skip] == ["tdxd"]
    assert KB.agents("ild_excluded") == frozenset({TDXD})


# --- class 7: ILD after T-DXd stopped -----------------------------------------------------------


def _tdxd_stopped_for_ild() -> Assessment:
    story = her2_story(
        drug(TDXD, "2021-01-15", "2021-04-01"),
        drug("pertuzumab", "2021-01-15", "2021-04-01"),
        b.ild("2021-03-25"),
    )
    return assess_story(story, "2021-04-20")


def test_ild_after_tdxd_stopped_warns_never_rechallenge_and_gives_tdm1_with_its_note() -> None:
    """CLINICAL.md section 3: ILD "holds also when T-DXd was already given and stopped for ILD
    (grade 2 or more: permanent discontinuation, never re-challenge): the card says so. When T-DM1
    is recommended to a patient with ILD, the card adds that T-DM1 also carries a pneumonitis
    warning"; section 4 tdxd-ild: "or was given before"."""
    a = _tdxd_stopped_for_ild()
    rec = _rec(a)
    assert rec.preferred.regimen.id == "tdm1"
    assert all(TDXD not in o.regimen.drugs for o in (rec.preferred, *rec.alternatives))
    assert any("pneumonitis warning" in c for c in rec.preferred.caveats)
    ild = [al for al in a.alerts if al.rule == "tdxd-ild"]
    assert len(ild) == 1
    assert "never re-challenge" in ild[0].detail and "grade 2 or more" in ild[0].detail
    assert "T-DM1 also carries a pneumonitis warning" in ild[0].detail
    assert "T-DXd from 2021-01-15" in ild[0].detail
    assert "tdm1-label-pulmonary" in {e.id for e in ild[0].evidence}
    tdm1_label = KB.evidence["tdm1-label-pulmonary"]
    assert not tdm1_label.verified  # not checked against the label: said so


def test_ild_with_tdxd_in_the_early_setting_also_warns() -> None:
    """Section 4 tdxd-ild "or was given before": early-setting T-DXd counts."""
    story = her2_story(
        drug(TDXD, "2019-06-01", "2020-03-01"),
        b.ild("2020-02-20"),
        met="2020-09-01",
    )
    a = assess_story(story, "2020-09-10")
    rec = _rec(a)
    assert rec.early_relapse and rec.preferred.regimen.id == "tdm1"
    ild = next(al for al in a.alerts if al.rule == "tdxd-ild")
    assert "never re-challenge" in ild.detail and "(early setting)" in ild.detail


@st.composite
def ild_histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str]:
    """A HER2+ story with ILD on record and a random early and metastatic history."""
    pool = [THP, [TDXD], [TDXD, "pertuzumab"], [TDM1], TRIPLET, ["lapatinib", "capecitabine"]]
    pool += [["trastuzumab", "vinorelbine"], ["neratinib"], ["trastuzumab"]]
    res: list[dict[str, Any]] = []
    met = date(2021, 1, 1)
    if draw(st.booleans()):  # early setting
        drugs = draw(st.sampled_from(pool))
        end = met - timedelta(days=draw(st.integers(min_value=10, max_value=700)))
        res += regimen(drugs, (end - timedelta(days=300)).isoformat(), end.isoformat())
    start = met + timedelta(days=10)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        drugs = draw(st.sampled_from(pool))
        length = draw(st.integers(min_value=40, max_value=400))
        end = start + timedelta(days=length)
        res += regimen(drugs, start.isoformat(), end.isoformat())
        if draw(st.booleans()):
            res.append(b.progression(end.isoformat()))
        start = end + timedelta(days=10)
    ild_onset = draw(st.sampled_from(["2018-05-01", "2021-06-01", start.isoformat()]))
    res.append(b.ild(ild_onset))
    if draw(st.booleans()):
        res.append(b.metastasis("94225005", onset="2021-01-01", display="Brain metastasis"))
    return her2_story(*res, er=draw(st.sampled_from([True, False, None]))), start.isoformat()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ild_histories())
def test_never_tdxd_with_ild_on_record_over_random_histories(
    case: tuple[list[dict[str, Any]], str],
) -> None:
    """CLINICAL.md section 3: "ILD/pneumonitis ever: T-DXd (alone or with pertuzumab) is not
    offered" - neither preferred nor alternative, whatever the history."""
    story, as_of = case
    a = assess_story(story, as_of)
    rec = a.recommendation
    if rec is None:
        return
    assert all(TDXD not in o.regimen.drugs for o in (rec.preferred, *rec.alternatives))
    if rec.preferred.regimen.id == "tdm1":
        assert any("pneumonitis warning" in c for c in rec.preferred.caveats)


@st.composite
def naive_records(draw: st.DrawFn) -> PatientRecord:
    pool = [tuple(THP), tuple(TRIPLET), (TDM1,), ("lapatinib", "capecitabine"), ("trastuzumab",)]
    start, lines = date(2021, 2, 1), []
    n = draw(st.integers(min_value=1, max_value=4))
    for i in range(n):
        length = draw(st.integers(min_value=60, max_value=400))
        ongoing = i == n - 1 and draw(st.booleans())
        end = None if ongoing else start + timedelta(days=length)
        progressed = False if ongoing else draw(st.booleans())
        lines.append(direct_line(i + 1, draw(st.sampled_from(pool)), start, end, progressed))
        start += timedelta(days=length + 10)
    return direct_record(lines=lines, hr_positive=draw(st.booleans()), as_of=start)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(naive_records())
def test_tdxd_naive_without_ild_always_gets_tdxd_after_a_her2_line(record: PatientRecord) -> None:
    """CLINICAL.md section 3: "T-DXd is never skipped: at any line, a patient who never received
    T-DXd and has no ILD gets T-DXd as preferred"."""
    a = assess(record, KB)
    rec = _rec(a)
    if rec.prior_her2_lines >= 1:
        assert rec.preferred.regimen.id == "tdxd", _ids(rec)


# --- class 9: evidence quoted as its source gives it, and fitting the patient ---------------


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def test_no_knowledge_text_puts_the_28_8_month_median_beside_hr_0_28() -> None:
    """CLINICAL.md section 3: "Never quote the 28.8-month median with HR 0.28"."""
    texts = [
        s
        for path in sorted(Path(KNOWLEDGE_DIR).glob("*.yaml"))
        for s in _strings(yaml.safe_load(path.read_text(encoding="utf-8")))
    ]
    assert len(texts) > 100
    assert not [t for t in texts if "28.8" in t and "0.28" in t]
    for ev in KB.evidence.values():
        if "28.8" in ev.summary:
            assert "0.28" not in ev.summary + ev.citation and "Hurvitz" in ev.citation


def test_each_figure_is_credited_to_the_paper_that_reported_it() -> None:
    """CLINICAL.md sections 3 and 4: ILD 10.5% (DESTINY-Breast03) / 13.6% (DESTINY-Breast01) vs
    15.4% pooled (Powell); CLEOPATRA PFS (Baselga 2012), OS 57.1 (Swain Lancet Oncol 2020), 56.5
    (NEJM 2015)."""
    ev = KB.evidence
    pooled = ev["tdxd-ild-pooled"]
    assert "15.4%" in pooled.summary and "2.2%" in pooled.summary
    assert "10.5" not in pooled.summary and "13.6" not in pooled.summary
    assert "10.5%" in ev["destiny-breast03"].summary and "13.6%" in ev["destiny-breast01"].summary
    for e in ev.values():
        if "57.1" in e.summary:
            assert "Lancet Oncol 2020" in e.citation
        if "18.5 vs 12.4" in e.summary:
            assert "Baselga" in e.citation and "2012" in e.citation
    assert "56.5 vs 40.8" in ev["cleopatra-os-2015"].summary
    assert "N Engl J Med 2015" in ev["cleopatra-os-2015"].citation


def test_destiny_breast12_only_with_brain_metastases() -> None:
    """CLINICAL.md "Evidence text fits the patient: a trial result about brain metastases is cited
    only when she has them"."""
    after_thp = [*regimen(THP, "2021-01-15", "2022-06-01"), b.progression("2022-06-01")]
    plain = _rec(assess_story(her2_story(*after_thp), "2022-06-15"))
    brain = b.metastasis("94225005", onset="2022-05-01", display="Brain metastasis")
    with_brain = _rec(assess_story(her2_story(*after_thp, brain), "2022-06-15"))
    for rec, expected in ((plain, False), (with_brain, True)):
        assert rec.preferred.regimen.id == "tdxd"
        cited = {e.id for o in (rec.preferred, *rec.alternatives) for e in o.regimen.evidence}
        assert ("destiny-breast12" in cited) is expected
        assert ("her2climb-brain" in cited) is expected


def test_line_two_card_never_says_third_line_after_tdxd() -> None:
    """Issue 18 class 9: "Third line after T-DXd" must not appear on a line-2 card."""
    story = her2_story(*regimen(THP, "2021-01-15", "2022-06-01"), b.progression("2022-06-01"))
    rec = _rec(assess_story(story, "2022-06-15"))
    triplet = next(o for o in rec.alternatives if o.regimen.id == TRIPLET_ID)
    assert "Third line" not in triplet.reason and not triplet.reason.startswith("Standard after")


# --- class 10: what would change, without a current therapy ------------------------------------


def test_what_would_change_never_speaks_of_a_current_therapy_when_there_is_none() -> None:
    """CLINICAL.md: "No card speaks of "current therapy" when there is none"."""
    rec = _rec(assess_story(her2_story(), "2021-01-10"))
    text = " ".join(rec.changes_advice)
    assert "current therapy" not in text and "Documented progression" not in text
    ongoing = _rec(assess_story(her2_story(*regimen(THP, "2021-01-15")), "2021-06-01"))
    assert ongoing.timing == "on-progression"
    assert any(c.startswith("Documented progression on line 1 (") for c in ongoing.changes_advice)


def test_her2_result_from_a_metastatic_lesion_needs_no_specimen_note() -> None:
    story = her2_story()
    her2_obs = next(r for r in story if r["resourceType"] == "Observation")
    her2_obs["bodySite"] = {"text": "Liver metastasis biopsy"}
    a = assess_story(story, "2021-01-10")
    assert a.record.her2.status is ReceptorStatus.POSITIVE
    assert not [c for c in _rec(a).changes_advice if "specimen" in c]
    assert "her2-status" not in [al.rule for al in a.alerts]


def test_neratinib_needs_two_metastatic_anti_her2_regimens_not_an_early_relapse() -> None:
    """Outside clinical review: neratinib + capecitabine was one click away after one metastatic
    line plus an early relapse. NALA / the label: "two or more prior anti-HER2 based regimens in
    the metastatic setting" (CLINICAL.md section 3: "after 2 or more anti-HER2 regimens")."""
    story = her2_story(
        *regimen(THP, "2019-01-01", "2019-05-01"),
        drug(TDM1, "2019-06-01", "2020-04-01"),
        drug(TDXD, "2020-10-15", "2021-09-20"),
        b.progression("2021-09-25"),
        met="2020-10-01",
    )
    rec = _rec(assess_story(story, "2021-10-05"))
    assert rec.prior_her2_lines == 2 and rec.early_relapse
    assert "neratinib-capecitabine" not in _ids(rec)
    why = dict(rec.excluded)["neratinib-capecitabine"]
    assert "metastatic setting (1 recorded)" in why


def test_no_one_click_order_for_the_next_line_while_the_current_one_goes_on() -> None:
    """Outside clinical review: T-DXd could be signed in one click on top of running HP
    maintenance. CLINICAL.md section 3 "status first": the next line is what comes on progression."""
    story = her2_story(*regimen(THP[:2], "2022-03-01"), b.lvef(60, "2022-06-01"))
    a = assess_story(story, "2022-06-15")
    assert _rec(a).timing == "on-progression"
    assert a.offered == ()
    assert a.not_offered and all("ongoing" in why for _, why in a.not_offered)


def test_tdxd_reordered_beside_a_running_triplet_after_progressing_on_it_is_flagged() -> None:
    """Outside clinical review: T-DXd re-ordered after progression on T-DXd, while the tucatinib
    triplet runs, got no card (the running drugs plus the order contained the triplet, so the set
    was taken for an offered regimen). CLINICAL.md section 4 off-sequence."""
    from engine.model import DraftOrder
    from engine.orders import check_orders

    story = her2_story(
        *regimen(THP, "2021-02-01", "2022-01-10"),
        b.progression("2022-01-15"),
        drug(TDXD, "2022-02-01", "2023-06-01"),
        b.progression("2023-06-05"),
        *regimen(TRIPLET, "2023-06-20"),
        b.lvef(60, "2023-08-01"),
    )
    record = assess_story(story, "2023-08-15").record
    order = DraftOrder("MedicationRequest/d1", TDXD, "her2-adc", "T-DXd 5.4 mg/kg")
    rules = {f.rule for f in check_orders(record, [order], KB)}
    assert "off-sequence" in rules, rules
