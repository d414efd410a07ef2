"""Patient-view warnings of CLINICAL.md section 4, each from a FHIR story through build_record."""

from __future__ import annotations

from engine.model import Alert, Assessment
from tests import builders as b
from tests.engine_builders import assess_story, drug, her2_story, regimen

THP = ["pertuzumab", "trastuzumab", "docetaxel"]
TDXD = "fam-trastuzumab deruxtecan"


def _alert(a: Assessment, rule: str) -> Alert:
    found = [al for al in a.alerts if al.rule == rule]
    assert found, f"no {rule} alert in {[al.rule for al in a.alerts]}"
    return found[0]


def _rules(a: Assessment) -> list[str]:
    return [al.rule for al in a.alerts]


def _on_trastuzumab(*lvefs: tuple[float, str], hf: bool = False) -> Assessment:
    extra = [b.lvef(v, when) for v, when in lvefs]
    if hf:
        extra.append(b.condition("84114007", "Congestive heart failure", "2022-01-01"))
    return assess_story(her2_story(*regimen(THP, "2021-06-15"), *extra), "2022-03-01")


def test_lvef_drop_of_16_points_warns_with_label_rule() -> None:
    """Seed 002: "Discontinue trastuzumab permanently if congestive heart failure develops or
    persistent/recurrent LVEF decline occurs"; CLINICAL.md: "a drop of 16 points or more from
    baseline ... label rule quoted; withhold and repeat LVEF in 4 weeks"."""
    a = _on_trastuzumab((64, "2021-06-01"), (47, "2022-02-15"))
    alert = _alert(a, "cardiac-lvef")
    assert alert.severity == "warning"
    assert "17 points below baseline 64%" in alert.summary
    assert "withhold" in alert.summary and "trastuzumab" in alert.withhold  # its own label's rule
    assert ">= 16% absolute decrease" in alert.detail and "4 weeks" in alert.detail
    assert "baseline 64% on 2021-06-01 (before trastuzumab)" in alert.detail
    assert len(alert.source_ids) >= 2 and "trastuzumab-label" in [e.id for e in alert.evidence]


def test_lvef_under_50_with_drop_of_10_warns() -> None:
    """CLINICAL.md section 4: "under 50% with a drop of 10 or more"."""
    alert = _alert(_on_trastuzumab((59, "2021-06-01"), (48, "2022-02-15")), "cardiac-lvef")
    assert "11 points below baseline" in alert.summary and "trastuzumab" in alert.withhold


def test_lvef_small_drop_above_50_is_fine() -> None:
    """CLINICAL.md section 4 thresholds: a 12-point drop that stays at 55% meets no criterion."""
    a = _on_trastuzumab((67, "2021-06-01"), (55, "2022-02-15"))
    assert "cardiac-lvef" not in _rules(a) and "lvef-due" not in _rules(a)


def test_lvef_under_40_is_critical() -> None:
    """CLINICAL.md section 4: "warning (critical when under 40% or symptomatic)"."""
    alert = _alert(_on_trastuzumab((60, "2021-06-01"), (35, "2022-02-15")), "cardiac-lvef")
    assert alert.severity == "critical"


def test_symptomatic_heart_failure_is_critical() -> None:
    """Seed 003: "Permanently discontinue trastuzumab if congestive heart failure develops"."""
    alert = _alert(_on_trastuzumab((60, "2022-02-15"), hf=True), "cardiac-lvef")
    assert alert.severity == "critical" and "heart failure" in alert.summary


def test_low_lvef_before_recommended_tdxd_warns() -> None:
    """CLINICAL.md section 4: cardiac-lvef applies "while on or ordering" T-DXd: the recommended
    regimen is about to be ordered."""
    story = her2_story(
        *regimen(THP, "2021-01-15", "2022-06-01"),
        b.progression("2022-06-01"),
        b.lvef(42, "2022-06-05"),
    )
    alert = _alert(assess_story(story, "2022-06-15"), "cardiac-lvef")
    assert "before starting fam-trastuzumab deruxtecan" in alert.summary


def test_lvef_due_every_three_months() -> None:
    """Seed 002: "Monitor LVEF every 3 months during HER2-targeted therapy"."""
    a = _on_trastuzumab((62, "2021-06-01"))
    alert = _alert(a, "lvef-due")
    assert alert.severity == "info" and "2021-06-01" in alert.detail
    assert "lvef-due" not in _rules(_on_trastuzumab((62, "2022-01-20")))


def test_anthracycline_overlapping_trastuzumab_is_critical() -> None:
    """Seed 003: "Never combine trastuzumab with anthracyclines concurrently due to 27% cardiac
    dysfunction risk"."""
    story = her2_story(drug("trastuzumab", "2021-01-15"), drug("doxorubicin", "2021-02-01"))
    alert = _alert(assess_story(story, "2021-03-01"), "anthracycline-concurrent")
    assert alert.severity == "critical" and "27%" in alert.detail and "8%" in alert.detail
    assert "slamon-2001" in [e.id for e in alert.evidence]


def test_anthracycline_within_washout_is_critical() -> None:
    """Seed 003: "If anthracyclines are necessary, allow up to 7 months washout after stopping
    trastuzumab due to its long half-life"."""
    story = her2_story(
        drug("trastuzumab", "2021-01-15", "2021-06-01"), drug("doxorubicin", "2021-09-01")
    )
    alert = _alert(assess_story(story, "2021-09-15"), "anthracycline-concurrent")
    assert "months after the last trastuzumab" in alert.summary


def test_her2_blockade_stopped_while_chemotherapy_continues() -> None:
    """Seed 000: "Do not discontinue HER2-targeted therapy when chemotherapy ends—continue until
    progression"; seed 003: "Never discontinue all HER2-targeted therapy when disease
    progresses"."""
    story = her2_story(
        *regimen(THP, "2021-01-15", "2022-06-01"),
        b.progression("2022-06-01"),
        drug("capecitabine", "2022-06-10"),
    )
    alert = _alert(assess_story(story, "2022-08-01"), "her2-blockade-stopped")
    assert alert.severity == "warning" and "capecitabine" in alert.detail


def test_her2_from_primary_only_suggests_rebiopsy() -> None:
    """Seed 002: "Always re-biopsy accessible metastatic lesions to confirm HER2 status, as
    receptor status can change during disease progression". Issue 18 class 10: the primary-only
    card fires only when the specimen is known to be the primary tumour."""
    story = her2_story()
    her2_obs = next(r for r in story if r["resourceType"] == "Observation")
    her2_obs["bodySite"] = {"text": "Left breast"}
    alert = _alert(assess_story(story, "2021-01-10"), "her2-status")
    assert "primary tumour only" in alert.summary and "on the primary tumour" in alert.detail


def test_her2_specimen_unknown_is_said_once_in_the_next_line_card() -> None:
    """Issue 18 class 10 (alert fatigue): with the specimen not recorded there is no her2-status
    card; the next-line advice says "HER2 result specimen not recorded" once."""
    a = assess_story(her2_story(), "2021-01-10")
    assert "her2-status" not in [al.rule for al in a.alerts]
    assert a.recommendation is not None
    said = [c for c in a.recommendation.changes_advice if "specimen not recorded" in c]
    assert len(said) == 1 and said[0].startswith("HER2 result specimen not recorded")


def test_her2_equivocal_gets_no_regimen() -> None:
    """CLINICAL.md section 1: IHC "2+" = equivocal unless ISH positive; section 3: missing data
    gives no regimen."""
    ihc2 = b.observation(
        "85319-2",
        when="2021-01-05",
        value_code="LA11842-4",
        value_system=b.LOINC,
        value_display="2+",
    )
    a = assess_story(her2_story(ihc2, her2=None), "2021-01-10")
    assert a.recommendation is None
    assert _alert(a, "her2-status").summary.startswith("HER2 status equivocal")


def test_her2_negative_gets_nothing() -> None:
    """CLINICAL.md section 5: "A HER2-negative or non-breast patient gets no cards"."""
    a = assess_story(her2_story(*regimen(THP, "2021-01-15"), her2=False), "2021-03-01")
    assert not a.in_scope and a.recommendation is None and not a.alerts


def test_tdxd_with_ild_on_record_is_critical() -> None:
    """CLINICAL.md section 4: tdxd-ild is critical when T-DXd "is active" with ILD recorded."""
    story = her2_story(
        *regimen(THP, "2021-01-15", "2022-06-01"),
        b.progression("2022-06-01"),
        drug(TDXD, "2022-06-10"),
        b.ild("2022-09-01"),
    )
    a = assess_story(story, "2022-10-01")
    alert = _alert(a, "tdxd-ild")
    assert alert.severity == "critical" and "2022-06-10" in alert.detail
    assert "tdxd-ild-monitoring" not in _rules(a)
    assert [o.code for o in alert.override_reasons] == ["ild-resolved", "pulmonology-cleared"]


def test_on_tdxd_gets_monitoring_advice() -> None:
    """Seed 000: "Do not fail to monitor for pulmonary symptoms—ILD can be fatal if not detected
    early"; CLINICAL.md: "grade 1 interrupt, grade 2 or more permanently discontinue and start
    steroids"."""
    story = her2_story(
        *regimen(THP, "2021-01-15", "2022-06-01"),
        b.progression("2022-06-01"),
        drug(TDXD, "2022-06-10"),
    )
    alert = _alert(assess_story(story, "2022-10-01"), "tdxd-ild-monitoring")
    assert alert.severity == "info" and "grade 2 or more, permanently discontinue" in alert.detail


def test_chemotherapy_and_endocrine_together_warn() -> None:
    """Seed 002: "Never give chemotherapy and endocrine therapy concurrently in HR-positive disease
    - give sequentially with endocrine therapy after chemotherapy"."""
    story = her2_story(*regimen(THP, "2021-01-15"), drug("letrozole", "2021-02-20"), er=True)
    alert = _alert(assess_story(story, "2021-03-15"), "chemo-endocrine-concurrent")
    assert "docetaxel" in alert.detail and "letrozole" in alert.detail


def test_current_tki_after_tki_warns() -> None:
    """Seed 001: "Do not sequence a tyrosine kinase inhibitor after another TKI without
    intervening therapy"."""
    story = her2_story(
        *regimen(["lapatinib", "capecitabine"], "2021-01-15", "2021-09-01"),
        b.progression("2021-09-01"),
        *regimen(["neratinib", "capecitabine"], "2021-09-10"),
    )
    alert = _alert(assess_story(story, "2021-11-01"), "tki-after-tki")
    assert "neratinib follows lapatinib" in alert.summary


def test_alerts_are_ordered_by_severity_and_carry_words() -> None:
    """CLINICAL.md: "every card says why, cites its evidence"."""
    story = her2_story(drug("trastuzumab", "2021-01-15"), drug("doxorubicin", "2021-02-01"))
    alerts = assess_story(story, "2021-03-01").alerts
    order = {"critical": 0, "warning": 1, "info": 2}
    assert [order[a.severity] for a in alerts] == sorted(order[a.severity] for a in alerts)
    for a in alerts:
        assert a.summary and a.detail and a.evidence and a.source_ids
        assert "{" not in a.summary + a.detail  # every template field filled
