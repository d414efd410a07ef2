"""Engine behaviour pinned after the synthetic population run found it (synthetic/DISAGREEMENTS.md)."""

from __future__ import annotations

from tests import builders as b
from tests.engine_builders import assess_story, drug, her2_story, regimen


def test_extended_adjuvant_neratinib_counts_as_received_at_later_lines() -> None:
    """CLINICAL.md section 3, 3 or more prior lines: "whatever of the above was not yet given".
    ExteNET neratinib after adjuvant trastuzumab was given: neratinib + capecitabine is not the
    first untried choice after THP, T-DXd and the tucatinib triplet."""
    story = her2_story(
        *regimen(["trastuzumab", "docetaxel", "carboplatin"], "2017-01-10", "2017-12-20"),
        drug("neratinib", "2018-01-15", "2019-01-10"),
        *regimen(["pertuzumab", "trastuzumab", "docetaxel"], "2021-01-20", "2022-06-01"),
        b.progression("2022-05-20"),
        drug("fam-trastuzumab deruxtecan", "2022-06-15", "2024-01-10"),
        b.progression("2024-01-05"),
        *regimen(["tucatinib", "trastuzumab", "capecitabine"], "2024-01-25", "2025-03-01"),
        b.progression("2025-02-20"),
        met="2021-01-01",
    )
    rec = assess_story(story, "2025-03-15").recommendation
    assert rec is not None
    assert rec.preferred.regimen.id != "neratinib-capecitabine"
    neratinib = [o for o in rec.alternatives if o.regimen.id == "neratinib-capecitabine"]
    assert all(any("already given" in c for c in o.caveats) for o in neratinib)


def test_tdxd_stopped_by_progression_is_not_current_therapy() -> None:
    """A line that ended in documented progression is not running now, even when its last dose
    plus one cycle reaches the record date: no 'on T-DXd' monitoring advice."""
    story = her2_story(
        *regimen(["pertuzumab", "trastuzumab", "docetaxel"], "2021-01-20", "2022-06-01"),
        b.progression("2022-05-20"),
        b.administration(None, "Enhertu", "2022-06-15"),
        b.administration(None, "Enhertu", "2022-07-06"),
        b.administration(None, "Enhertu", "2022-07-27"),
        b.progression("2022-08-05"),
        met="2021-01-01",
    )
    assessment = assess_story(story, "2022-08-10")
    assert "tdxd-ild-monitoring" not in {a.rule for a in assessment.alerts}
    assert assessment.recommendation is not None
    assert assessment.recommendation.timing == "now"
