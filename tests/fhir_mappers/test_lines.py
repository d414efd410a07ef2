"""The line-of-therapy rules (CLINICAL.md section 2), one test per rule, from real FHIR shapes."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from engine import assess
from engine.model import PatientRecord, TherapyLine
from fhir_mappers import build_record
from tests import builders as b

AS_OF = date(2024, 6, 1)
MET = "2021-01-01"
D0 = date(2021, 1, 10)  # first metastatic therapy


def day(n: int) -> str:
    return (D0 + timedelta(days=n)).isoformat()


def record(*resources: dict[str, Any], met: str = MET) -> PatientRecord:
    return build_record(
        b.bundle(
            b.patient(),
            b.breast_cancer("2018-01-01"),
            b.her2(True, "2018-01-05"),
            b.metastasis(onset=met),
            *resources,
        ),
        as_of=AS_OF,
    )


def lines(*resources: dict[str, Any]) -> tuple[TherapyLine, ...]:
    return record(*resources).lines


def cyc(rx: str | None, text: str, first_day: int, n: int, every: int = 21) -> list[dict[str, Any]]:
    return b.cycles(rx, text, day(first_day), n, every)


TRAS, PERT, DOC, PAC = (
    ("224905", "trastuzumab"),
    ("1298944", "pertuzumab"),
    ("72962", "docetaxel"),
    ("56946", "paclitaxel"),
)


def thp(first_day: int = 0, n_chemo: int = 6, n_hp: int = 17) -> list[dict[str, Any]]:
    return [
        *cyc(*TRAS, first_day, n_hp),
        *cyc(*PERT, first_day, n_hp),
        *cyc(*DOC, first_day, n_chemo),
    ]


# -- rule 1: early vs metastatic setting ----------------------------------------------------


def test_rule1_only_metastatic_exposures_make_lines() -> None:
    adjuvant = b.cycles("224905", "trastuzumab", "2018-03-01", 17)  # before the metastatic date
    rec = record(*adjuvant, *cyc(*PAC, 0, 4))
    assert [ln.drugs for ln in rec.lines] == [("paclitaxel",)]
    assert {e.drug for e in rec.early_exposures} == {"trastuzumab"}
    assert rec.early_setting_end == date(2019, 1, 31)  # the last dose, not + one cycle


def test_rule1_curative_intent_after_the_metastatic_date_is_still_early() -> None:
    cur = b.med_resource(
        "MedicationStatement",
        b.coded(b.RXNORM, "1371041", "T-DM1"),
        day(0),
        day(200),
        extension=[b.intent(b.CURATIVE, b.INTENT_STU1)],
    )
    rec = record(cur)
    assert rec.lines == () and [e.drug for e in rec.early_exposures] == [
        "ado-trastuzumab emtansine"
    ]


# -- rule 2: start and 28-day regimen window ------------------------------------------------


def test_rule2_drugs_first_given_within_28_days_join_the_regimen() -> None:
    got = lines(*cyc(*DOC, 0, 6), *cyc(*TRAS, 28, 10))
    assert len(got) == 1
    assert got[0].drugs == ("docetaxel", "trastuzumab")
    assert got[0].start == D0
    assert got[0].start_reason == "first anticancer therapy in the metastatic setting"


def test_rule2_day_29_is_outside_the_window() -> None:
    got = lines(*cyc(*DOC, 0, 6), *cyc("194000", "capecitabine", 29, 6))
    assert len(got) == 2
    assert "capecitabine" in got[1].start_reason and "day 28" in got[1].start_reason


# -- rule 3: same line ----------------------------------------------------------------------


def test_rule3_maintenance_after_chemotherapy_is_dropped() -> None:
    got = lines(*thp())
    assert len(got) == 1
    assert got[0].regimen_id == "thp"
    assert got[0].drugs == ("docetaxel", "pertuzumab", "trastuzumab")


@pytest.mark.parametrize(
    ("rx", "text"),
    [
        ("72965", "letrozole"),
        ("10324", "tamoxifen"),
        ("1601374", "palbociclib"),
        ("1946840", "Verzenio 150 MG Oral Tablet"),
    ],
)
def test_rule3_endocrine_or_cdk46_added_to_antibody_maintenance(rx: str, text: str) -> None:
    got = lines(*thp(), *cyc(rx, text, 130, 10, every=28))
    assert len(got) == 1


@pytest.mark.parametrize(
    ("rx", "text"),
    [
        ("2119714", "5 ML hyaluronidase-oysk 2000 UNT/ML / trastuzumab 120 MG/ML Injection"),
        (None, "Ogivri (trastuzumab-dkst) 420 mg"),
        (None, "Kanjinti"),
    ],
)
def test_rule3_trastuzumab_iv_to_sc_or_biosimilar_is_the_same_line(
    rx: str | None, text: str
) -> None:
    got = lines(*cyc(*TRAS, 0, 8), *cyc(*PERT, 0, 16), *cyc(*DOC, 0, 6), *cyc(rx, text, 168, 8))
    assert len(got) == 1


def test_rule3_switch_to_phesgo_is_the_same_line() -> None:
    got = lines(
        *cyc(*TRAS, 0, 8),
        *cyc(*PERT, 0, 8),
        *cyc(*DOC, 0, 6),
        *cyc(None, "Phesgo 600 mg/600 mg", 168, 8),
    )
    assert len(got) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [(PAC, DOC), (DOC, PAC), (DOC, (None, "Abraxane 100 mg")), ((None, "nab-paclitaxel"), PAC)],
)
def test_rule3_taxane_substitution_is_the_same_line(
    first: tuple[str | None, str], second: tuple[str | None, str]
) -> None:
    got = lines(*cyc(*TRAS, 0, 12), *cyc(*first, 0, 3), *cyc(*second, 63, 3))
    assert len(got) == 1
    assert "trastuzumab" in got[0].drugs and len(got[0].drugs) == 3
    assert got[0].end is not None and got[0].end > D0 + timedelta(days=63)


# -- rule 4: new line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rx", "text", "drug"),
    [
        ("1371041", "T-DM1", "ado-trastuzumab emtansine"),
        (None, "Enhertu 100 mg", "fam-trastuzumab deruxtecan"),
        ("2361290", "tucatinib 150 MG Oral Tablet", "tucatinib"),
        ("480167", "lapatinib", "lapatinib"),
        (None, "Margenza", "margetuximab"),
    ],
)
def test_rule4_new_anti_her2_agent_is_a_new_line(rx: str | None, text: str, drug: str) -> None:
    got = lines(*thp(n_hp=8), *cyc(rx, text, 8 * 21 + 10, 6))
    assert len(got) == 2
    assert got[1].start_reason == f"new anti-HER2 agent {drug}"
    assert drug in got[1].drugs
    assert got[0].end is not None and got[0].end < got[1].start


def test_rule4_new_chemotherapy_partner_after_day_28() -> None:
    got = lines(*cyc(*TRAS, 0, 20), *cyc(*DOC, 0, 6), *cyc("194000", "capecitabine", 140, 6))
    assert len(got) == 2
    assert got[1].start_reason.startswith("new chemotherapy partner capecitabine")
    # Trastuzumab continues into the new line (HER2 blockade beyond the chemotherapy change).
    assert "trastuzumab" in got[1].drugs


def test_rule4_any_change_after_progression_is_a_new_line() -> None:
    prog = b.progression(day(120))
    # letrozole would join antibody maintenance without progression (rule 3) ...
    assert len(lines(*thp(), *cyc("72965", "letrozole", 130, 6, every=28))) == 1
    # ... but after documented progression it is a regimen change.
    got = lines(*thp(), prog, *cyc("72965", "letrozole", 130, 6, every=28))
    assert len(got) == 2
    assert got[0].ended_in_progression and got[0].stop_reason == "progression"
    assert got[0].progression_ids == (f"Observation/{prog['id']}",)
    assert got[1].start_reason == f"regimen changed after documented progression on {day(120)}"


def test_rule4_taxane_substitution_after_progression_is_a_new_line() -> None:
    got = lines(*cyc(*TRAS, 0, 12), *cyc(*DOC, 0, 3), b.progression(day(60)), *cyc(*PAC, 63, 3))
    assert len(got) == 2


def test_rule4_stop_for_no_response_counts_as_progression() -> None:
    stopped = b.med_resource(
        "MedicationRequest",
        b.coded(b.RXNORM, *DOC),
        day(0),
        day(80),
        status="stopped",
        status_reason=b.coded(b.SNOMED, b.NO_RESPONSE, "No response"),
    )
    got = lines(*cyc(*TRAS, 0, 12), stopped, *cyc("72965", "letrozole", 100, 6, every=28))
    assert len(got) == 2
    assert got[0].ended_in_progression
    assert got[1].start_reason.startswith("regimen changed after documented progression")


@pytest.mark.parametrize(("gap", "n_lines"), [(120, 1), (121, 2)])
def test_rule4_restart_after_more_than_120_days(gap: int, n_lines: int) -> None:
    first = cyc(*TRAS, 0, 6)  # last dose day 105: the line ends there (CLINICAL.md 2.5)
    got = lines(*first, *cyc(*TRAS, 105 + gap, 6))
    assert len(got) == n_lines
    if n_lines == 2:
        assert got[1].start_reason == f"restart after {gap} days without therapy"
        assert got[0].stop_reason is not None


# -- rule 5: what each line records ---------------------------------------------------------


def test_rule5_line_records_everything_with_source_ids() -> None:
    res = [*thp(n_hp=8), *cyc("1371041", "T-DM1", 200, 4)]
    rec = record(*res)
    first, second = rec.lines
    assert (first.number, second.number) == (1, 2)
    assert first.start == D0 and first.end == D0 + timedelta(days=147)  # the 8th cycle's dose
    assert first.last_dose == first.end
    assert first.regimen_id == "thp" and first.her2_directed
    assert first.stop_reason and "ado-trastuzumab emtansine" in first.stop_reason
    assert second.regimen_id == "tdm1" and second.end is not None
    assert second.stop_reason == "stopped (reason not recorded)"
    ids = {f"MedicationRequest/{r['id']}" for r in res}
    assert set(first.source_ids) | set(second.source_ids) == ids
    assert not set(first.source_ids) & set(second.source_ids)


def test_rule5_ongoing_line() -> None:
    rec = build_record(
        b.bundle(
            b.patient(),
            b.breast_cancer(),
            b.metastasis(onset="2024-01-01"),
            b.statement("1371041", "T-DM1", "2024-02-01"),
        ),
        as_of=AS_OF,
    )
    assert rec.lines[0].ongoing and rec.lines[0].stop_reason is None


# -- rule 6: early relapse ------------------------------------------------------------------


@pytest.mark.parametrize(("met", "relapse"), [("2020-03-01", True), ("2021-06-01", False)])
def test_rule6_early_relapse_inputs(met: str, relapse: bool) -> None:
    adjuvant = [
        *b.cycles("224905", "trastuzumab", "2018-06-01", 17),
        *b.cycles("1298944", "pertuzumab", "2018-06-01", 17),
    ]  # last cycle 2019-05-03
    # a recent LVEF keeps the record current at AS_OF (a stale record gets no regimen)
    rec = record(*adjuvant, b.lvef(60, "2024-05-01"), met=met)
    assert rec.early_setting_end == date(2019, 5, 3)  # the last adjuvant dose
    assert {e.drug for e in rec.early_exposures} == {"pertuzumab", "trastuzumab"}
    assert rec.lines == ()
    a = assess(rec)
    assert a.recommendation is not None
    assert a.recommendation.early_relapse is relapse


# -- courses --------------------------------------------------------------------------------


def test_one_exposure_per_cycle_merges_into_one_course_per_drug() -> None:
    rec = record(*thp())
    assert sorted((e.drug, len(e.source_ids)) for e in rec.exposures) == [
        ("docetaxel", 6),
        ("pertuzumab", 17),
        ("trastuzumab", 17),
    ]


def test_rule1_therapy_just_before_the_metastatic_date_is_early_but_reported() -> None:
    first = b.request("72962", "docetaxel", "2020-12-20", rid="early-doc")
    rec = record(first)
    assert rec.lines == () and [e.drug for e in rec.early_exposures] == ["docetaxel"]
    issue = next(i for i in rec.data_issues if i.source_id == "MedicationRequest/early-doc")
    assert "12 days before the metastatic date" in issue.message
    # Long before the metastatic date: plainly early setting, nothing to report.
    rec = record(b.request("72962", "docetaxel", "2019-01-01"))
    assert rec.data_issues == ()


def test_rule4_mcode_termination_reason_extension_counts_as_progression() -> None:
    ext = {
        "url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-treatment-termination-reason",
        "valueCodeableConcept": b.coded(b.SNOMED, b.NO_RESPONSE, "No response to treatment"),
    }
    stopped = b.med_resource(
        "MedicationStatement",
        b.coded(b.RXNORM, *DOC),
        day(0),
        day(80),
        status="stopped",
        extension=[ext],
        rid="mcode-stop",
    )
    rec = record(*cyc(*TRAS, 0, 12), stopped, *cyc("72965", "letrozole", 100, 6, every=28))
    assert [p.source_id for p in rec.progressions] == ["MedicationStatement/mcode-stop"]
    assert len(rec.lines) == 2 and rec.lines[0].ended_in_progression


def test_a_carried_course_stopped_for_no_response_ends_only_the_line_it_stopped_in() -> None:
    tras = cyc(*TRAS, 0, 14)  # day 0 .. day 273
    last = b.med_resource(
        "MedicationRequest",
        b.coded(b.RXNORM, *TRAS),
        day(294),
        day(300),
        status="stopped",
        status_reason=b.coded(b.SNOMED, b.NO_RESPONSE, "No response"),
    )
    got = lines(*tras, last, *cyc(*DOC, 0, 6), *cyc("194000", "capecitabine", 140, 8))
    assert len(got) == 2
    assert "trastuzumab" in got[1].drugs
    assert not got[0].ended_in_progression
    assert got[1].ended_in_progression
