"""The next line fits the patient (outside clinical reviews: first pass 9, 10, 14; second pass N7,
N11, N15, N16): the current line is not the next, no failed endocrine agent, trastuzumab and
pertuzumab re-load after the labels' gap, early relapse is worded as relapse, the row used is said
plainly, and evidence about active brain metastases is cited only with active ones.

Stories are FHIR resources through build_record and the engine API; card checks go through the
Flask test client.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import assess, load_knowledge
from engine.model import Assessment, PatientRecord, ReceptorStatus, Recommendation, RegimenOption
from engine.regimen_doses import dosed
from tests import builders as b
from tests.conftest import her2_ext, hook_request
from tests.engine_builders import (
    assess_story,
    direct_line,
    direct_record,
    drug,
    her2_story,
    record_of,
    regimen,
)

KB = load_knowledge()
THP = ["pertuzumab", "trastuzumab", "docetaxel"]
TRIPLET = ["tucatinib", "trastuzumab", "capecitabine"]
TDXD, TDM1 = "fam-trastuzumab deruxtecan", "ado-trastuzumab emtansine"


def _rec(a: Assessment) -> Recommendation:
    assert a.recommendation is not None, a.data_needs
    return a.recommendation


def _options(rec: Recommendation) -> list[RegimenOption]:
    return [rec.preferred, *rec.alternatives]


def _option(rec: Recommendation, rid: str) -> RegimenOption:
    return next(o for o in _options(rec) if o.regimen.id == rid)


def _comp(option: RegimenOption, drug_id: str) -> Any:
    return next(c for c in option.regimen.components if c.drug == drug_id)


def _four_lines_hr_positive() -> list[dict[str, Any]]:
    """HR-positive: THP then HP + letrozole maintenance (line 1, progression), T-DXd (line 2),
    the tucatinib triplet (line 3) and T-DM1 (line 4), each ending in progression. The last
    plain trastuzumab was given on 2024-03-01."""
    return her2_story(
        *regimen(["pertuzumab", "trastuzumab"], "2021-02-01", "2022-06-01"),
        drug("docetaxel", "2021-02-01", "2021-07-01"),
        drug("letrozole", "2021-07-15", "2022-06-01"),
        b.progression("2022-06-01"),
        drug(TDXD, "2022-06-20", "2023-06-01"),
        b.progression("2023-06-01"),
        *regimen(TRIPLET, "2023-06-20", "2024-03-01"),
        b.progression("2024-03-01"),
        drug(TDM1, "2024-03-20", "2025-01-01"),
        b.progression("2025-01-01"),
        er=True,
    )


# --- N11 (a, b): endocrine + HER2-directed therapy -------------------------------------------


def test_endocrine_alternative_reloads_trastuzumab_and_never_proposes_failed_letrozole() -> None:
    """Review N11: the endocrine + anti-HER2 one-click gave trastuzumab 6 mg/kg with no loading
    dose 17 months after the last dose, and letrozole, which had failed in line 1. Herceptin
    label: a dose more than one week late is re-loaded at 8 mg/kg. CLINICAL.md 3: "Never re-offer
    an agent that already failed"; the spec names no next endocrine agent, so the class is named
    and nothing is one click away."""
    a = assess_story(_four_lines_hr_positive(), "2025-01-20")
    rec = _rec(a)
    assert rec.timing == "now"
    endo = _option(rec, "endocrine-her2")
    trastuzumab = _comp(endo, "trastuzumab")
    assert (trastuzumab.loading_dose_value, trastuzumab.dose_value) == (8, 6)
    assert trastuzumab.dose.startswith("8 mg/kg loading")
    assert all(c.drug != "letrozole" for c in endo.regimen.components)
    assert any("not yet received" in c.drug for c in endo.regimen.components)
    assert "letrozole" in endo.not_orderable
    assert any("2024-03-01" in n and "8 mg/kg" in n for n in endo.dose_notes)
    assert a.offered is not None and "endocrine-her2" not in a.offered
    assert "endocrine-her2" in dict(a.not_offered)


def test_endocrine_alternative_keeps_letrozole_when_no_endocrine_agent_failed() -> None:
    """The class placeholder is for a failed agent only: never-given letrozole stays orderable."""
    story = her2_story(
        *regimen(THP, "2021-02-01", "2022-06-01"),
        b.progression("2022-06-01"),
        drug(TDXD, "2022-06-20", "2023-06-01"),
        b.progression("2023-06-01"),
        *regimen(TRIPLET, "2023-06-20", "2024-03-01"),
        b.progression("2024-03-01"),
        drug(TDM1, "2024-03-20", "2025-01-01"),
        b.progression("2025-01-01"),
        er=True,
    )
    endo = _option(_rec(assess_story(story, "2025-01-20")), "endocrine-her2")
    assert _comp(endo, "letrozole").dose == "2.5 mg"
    assert endo.not_orderable == ""


def test_endocrine_agent_of_the_current_line_is_not_proposed_for_the_next() -> None:
    """Trastuzumab + letrozole maintenance goes on: on progression, letrozole has failed too."""
    story = her2_story(
        *regimen(THP, "2021-02-01", "2022-06-01"),
        b.progression("2022-06-01"),
        drug(TDXD, "2022-06-20", "2023-06-01"),
        b.progression("2023-06-01"),
        *regimen(TRIPLET, "2023-06-20", "2024-03-01"),
        b.progression("2024-03-01"),
        drug("trastuzumab", "2024-03-20"),
        drug("letrozole", "2024-03-20"),
        er=True,
    )
    rec = _rec(assess_story(story, "2024-09-01"))
    assert rec.timing == "on-progression"
    endo = [o for o in _options(rec) if o.regimen.id == "endocrine-her2"]
    for option in endo:
        assert all(c.drug != "letrozole" for c in option.regimen.components)


# --- N11 (c) and N7: the current line is not the next -----------------------------------------


def _tdm1_ongoing() -> list[dict[str, Any]]:
    return her2_story(
        *regimen(THP, "2021-02-01", "2022-05-20"),
        b.progression("2022-05-20"),
        drug(TDM1, "2022-06-01"),
    )


def test_the_ongoing_t_dm1_is_not_a_next_line_alternative() -> None:
    """Review N11 (00084, 00124): T-DM1, the current ongoing line, was listed as an alternative
    "on progression" on that same drug. CLINICAL.md 3: the current line is continued until
    progression; the next line is what comes after progression on it."""
    rec = _rec(assess_story(_tdm1_ongoing(), "2022-09-01"))
    assert rec.timing == "on-progression"
    assert all(TDM1 not in o.regimen.drugs for o in _options(rec))
    why = dict(rec.excluded)["tdm1"]
    assert "being given now" in why and "line 2" in why


def test_on_progression_card_offers_no_one_click_and_says_why(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review N7: a next-line one-click while line N goes on was signed on top of it. No order is
    one click away while the current line goes on; the card says the next line is for
    progression, in its title and its text."""
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: date(2022, 9, 1))
    resp = client.post(
        "/cds-services/her2-next-line", json=hook_request(b.bundle(*_tdm1_ongoing()))
    )
    assert resp.status_code == 200
    card = next(
        c for c in resp.get_json()["cards"] if her2_ext(c).get("timing") == "on-progression"
    )
    assert "on progression" in card["summary"]
    assert not card.get("suggestions")
    assert "order the next line on progression" in card["detail"]


# --- N11 (a): re-loading at the labels' thresholds --------------------------------------------


def _hp_last_given(gap_days: int, as_of: date) -> PatientRecord:
    end = (as_of - timedelta(days=gap_days)).isoformat()
    story = her2_story(*regimen(["pertuzumab", "trastuzumab"], "2021-02-01", end))
    return record_of(story, as_of.isoformat())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=1, max_value=200))
def test_antibody_orders_reload_exactly_past_the_label_gap(gap: int) -> None:
    """Herceptin: more than one week late on q3w (more than 28 days since the last dose) means
    8 mg/kg, then 6 mg/kg; Perjeta: 6 weeks or more since the last dose means 840 mg, then 420 mg
    (drugs.yaml reload). On schedule, the maintenance dose goes on without a re-load."""
    as_of = date(2022, 12, 1)
    record = _hp_last_given(gap, as_of)
    fitted = dosed(record, KB, KB.regimens["pertuzumab-trastuzumab-chemo"].regimen, now=True)
    comps = {c.drug: c for c in fitted.regimen.components}
    t, p = comps["trastuzumab"], comps["pertuzumab"]
    assert t.dose_value == 6 and p.dose_value == 420
    assert t.loading_dose_value == (8 if gap > 28 else None)
    assert p.loading_dose_value == (840 if gap >= 42 else None)


def test_one_click_triplet_reloads_trastuzumab_after_a_late_dose(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FHIR order itself: a loading order of 8 mg/kg (one dose) before 6 mg/kg q3w when the
    last trastuzumab was 36 days ago; only 6 mg/kg q3w when it was 14 days ago."""

    def trastuzumab_orders(as_of: str) -> list[float]:
        monkeypatch.setattr("fhir_mappers.record.now_date", lambda: date.fromisoformat(as_of))
        story = her2_story(*regimen(THP, "2021-02-01", "2022-06-01"), b.progression("2022-06-01"))
        resp = client.post("/cds-services/her2-next-line", json=hook_request(b.bundle(*story)))
        card = next(c for c in resp.get_json()["cards"] if her2_ext(c).get("kind") == "next-line")
        sugg = next(s for s in card["suggestions"] if "tucatinib" in s["label"])
        return [
            a["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"]
            for a in sugg["actions"]
            if a["resource"]["medicationCodeableConcept"]["text"] == "trastuzumab"
        ]

    assert trastuzumab_orders("2022-07-07") == [8, 6]
    assert trastuzumab_orders("2022-06-15") == [6]


# --- N15 and first-pass 9: early relapse --------------------------------------------------------


def test_relapse_after_adjuvant_t_dm1_is_worded_as_relapse_not_progression() -> None:
    """Review N15 (00035): "Not offered: T-DM1: disease progressed on ado-trastuzumab emtansine"
    after adjuvant T-DM1 must read as a relapse within 12 months of adjuvant T-DM1 (KATHERINE)."""
    story = her2_story(drug(TDM1, "2020-01-10", "2020-10-01"), met="2021-01-01")
    rec = _rec(assess_story(story, "2021-01-20"))
    assert rec.early_relapse and rec.preferred.regimen.id == "tdxd"
    why = dict(rec.excluded)["tdm1"]
    assert "relapsed within 12 months of adjuvant T-DM1 (KATHERINE)" in why
    assert "progressed" not in why


def test_early_relapse_says_exactly_what_is_not_re_offered_and_keeps_trastuzumab() -> None:
    """First-pass 9 (00014, 00141): "pertuzumab + trastuzumab count as received and are not
    re-offered" stood beside trastuzumab-containing regimens. Trastuzumab is re-used by design
    (HER2 blockade beyond progression); only the pertuzumab regimens are not offered again."""
    story = her2_story(
        *regimen(["pertuzumab", "trastuzumab"], "2019-09-01", "2020-09-01"), met="2021-01-01"
    )
    rec = _rec(assess_story(story, "2021-01-20"))
    assert rec.early_relapse
    text = " ".join(rec.reasons)
    assert "are not re-offered" not in text
    assert "trastuzumab stays the backbone" in text
    assert "regimens built on pertuzumab (" in text and "THP" in text
    assert any("trastuzumab" in o.regimen.drugs for o in rec.alternatives)


# --- first-pass 10: the row used, plainly ------------------------------------------------------


def test_why_the_rows_first_choice_is_not_first_is_said_plainly() -> None:
    """First-pass 10: "the guideline sequence offers tucatinib triplet next" then "not offered
    first: see caveats" then T-DM1. Say the row used and why its first choice is not first."""
    rec = _rec(assess_story(_four_lines_hr_positive(), "2025-01-20"))
    text = " ".join(rec.reasons)
    assert "see caveats" not in text and "offers tucatinib triplet next" not in text
    assert "3 or more prior lines" in text
    assert "tucatinib triplet is not recommended here: disease progressed on tucatinib" in text


# --- first-pass 14: active vs stable brain metastases ------------------------------------------


def _with_brain(clinical: str) -> Recommendation:
    story = her2_story(
        *regimen(THP, "2021-02-01", "2022-05-20"),
        b.progression("2022-05-20"),
        b.condition(
            "94225005", "Secondary malignant neoplasm of brain", "2022-05-01", clinical=clinical
        ),
    )
    return _rec(assess_story(story, "2022-06-10"))


def test_active_brain_metastasis_figures_only_with_active_brain_metastases() -> None:
    """First-pass 14 (00034): DESTINY-Breast12 "active brain metastases" and HER2CLIMB (brain
    metastases) were cited for an inactive brain metastasis. CLINICAL.md 3 cites both for active
    brain metastases; "Evidence text fits the patient"."""
    stable = _with_brain("inactive")
    assert stable.preferred.regimen.id == "tdxd"
    cited = {e.id for o in _options(stable) for e in o.regimen.evidence}
    assert not cited & {"destiny-breast12", "her2climb-brain"}
    active = _with_brain("active")
    assert "destiny-breast12" in {e.id for e in active.preferred.regimen.evidence}


# --- N16: the T-DM1 pulmonary warning only when T-DM1 is proposed -------------------------------


def test_ild_card_cites_t_dm1_pulmonary_warning_only_when_t_dm1_is_proposed() -> None:
    """Review N16 (00134, 00149): where the triplet replaces T-DXd, the ILD card cited the KADCYLA
    pulmonary warning and "T-DM1, where given, also carries ...": T-DM1 is not proposed there."""
    story = her2_story(
        *regimen(THP, "2021-02-01", "2022-01-01"),
        b.progression("2022-01-01"),
        drug(TDM1, "2022-01-20", "2022-09-01"),
        b.progression("2022-09-01"),
        b.ild("2020-06-01"),
    )
    a = assess_story(story, "2022-09-20")
    assert _rec(a).preferred.regimen.id == "tucatinib-trastuzumab-capecitabine"
    ild = [al for al in a.alerts if al.rule == "tdxd-ild"]
    assert ild and all("T-DM1" not in al.detail for al in ild)
    assert all("tdm1-label-pulmonary" not in {e.id for e in al.evidence} for al in ild)


# --- properties ---------------------------------------------------------------------------------

REGIMEN_DRUGS = sorted({tuple(sorted(r.regimen.drugs)) for r in KB.regimens.values()})
EXTRA = [
    ("letrozole", "trastuzumab"),
    ("anastrozole", "pertuzumab", "trastuzumab"),
    ("trastuzumab",),
]


@st.composite
def records(draw: st.DrawFn) -> PatientRecord:
    n = draw(st.integers(min_value=1, max_value=5))
    start = date(2021, 2, 1)
    lines = []
    for i in range(n):
        drugs = draw(st.sampled_from(REGIMEN_DRUGS + EXTRA))
        length = draw(st.integers(min_value=30, max_value=400))
        last = i == n - 1
        ongoing = last and draw(st.booleans())
        end = None if ongoing else start + timedelta(days=length)
        progressed = draw(st.booleans()) if not ongoing else False
        lines.append(direct_line(i + 1, drugs, start, end, progressed))
        start = start + timedelta(days=length + 10)
    return direct_record(
        lines=lines,
        her2=ReceptorStatus.POSITIVE,
        hr_positive=draw(st.booleans()),
        ild=draw(st.booleans()),
        brain=draw(st.booleans()),
        as_of=start + timedelta(days=draw(st.integers(min_value=0, max_value=90))),
    )


PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _last_dose(record: PatientRecord, drug_id: str) -> date | None:
    courses = [e for e in record.exposures if e.drug == drug_id]
    if not courses or any(e.end is None for e in courses):
        return None
    return max(e.end for e in courses if e.end is not None)


@PROPS
@given(records())
def test_no_option_repeats_a_failed_or_current_agent_except_the_trastuzumab_backbone(
    record: PatientRecord,
) -> None:
    """No next-line option has a key agent the disease progressed on, or one the ongoing line
    still gives, nor an endocrine agent that failed, while something else is left; trastuzumab
    (no regimen's key agent) is re-used by design (CLINICAL.md section 3)."""
    rec = assess(record, KB).recommendation
    if rec is None or any("nothing else is left" in r for r in rec.reasons):
        return
    failed = {d for ln in record.lines if ln.ended_in_progression for d in ln.drugs}
    last = record.lines[-1]
    current = set(last.drugs) if rec.timing == "on-progression" else set()
    for option in _options(rec):
        keys = set(KB.regimens[option.regimen.id].key_agents)
        assert "trastuzumab" not in keys
        assert not keys & (failed | current), (option.regimen.id, failed, current)
        for c in option.regimen.components:
            info = KB.drug(c.drug)
            if info is not None and info.drug_class == "endocrine":
                assert c.drug not in failed | current


@PROPS
@given(records())
def test_every_antibody_order_after_the_label_gap_starts_with_its_loading_dose(
    record: PatientRecord,
) -> None:
    """Every trastuzumab order more than a week late on q3w (or with no known last dose) starts
    with 8 mg/kg; every pertuzumab order 6 weeks or more after its last dose with 840 mg."""
    rec = assess(record, KB).recommendation
    if rec is None:
        return
    for drug_id, load, gap_days in (("trastuzumab", 8, 29), ("pertuzumab", 840, 42)):
        last = _last_dose(record, drug_id)
        must_load = last is None or (record.as_of - last).days >= gap_days
        for option in _options(rec):
            for c in option.regimen.components:
                if c.drug == drug_id and must_load:
                    assert c.loading_dose_value == load, (option.regimen.id, last, record.as_of)
