"""The patient picture (CLINICAL.md section 1), one test group per row, through build_record."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from engine.model import PatientRecord, ReceptorStatus, Specimen
from fhir_mappers import build_record
from tests import builders as b
from tests.builders import ICD10, LOINC, SNOMED

AS_OF = date(2024, 6, 1)


def picture(*resources: dict[str, Any]) -> PatientRecord:
    return build_record(b.bundle(b.patient(), *resources), as_of=AS_OF)


def obs(loinc: str, when: str, code: str, system: str = SNOMED, **kw: Any) -> dict[str, Any]:
    return b.observation(loinc, when=when, value_code=code, value_system=system, **kw)


# -- breast cancer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code", "text"),
    [
        (SNOMED, "254837009", "Malignant neoplasm of breast"),
        (SNOMED, "353431000119107", "Primary malignant neoplasm of female breast"),
        (SNOMED, "427685000", "HER2-positive carcinoma of breast"),
        (ICD10, "C50.911", "Malignant neoplasm of unspecified site of right female breast"),
        (ICD10, "C50.412", ""),
        (None, None, "Carcinoma of breast, left"),
    ],
)
def test_breast_cancer_from_snomed_icd10_or_text(
    system: str | None, code: str | None, text: str
) -> None:
    cond = b.condition(code or "x", text, "2020-01-01", system=system or SNOMED)
    cond["code"] = b.coded(system, code, text)
    rec = picture(cond)
    assert rec.has_breast_cancer
    assert rec.breast_cancer[0].source_id == f"Condition/{cond['id']}"


def test_coded_unrelated_condition_is_not_read_for_words() -> None:
    cond = b.condition("92916003", "Benign neoplasm of breast", "2020-01-01")
    assert not picture(cond).has_breast_cancer


def test_refuted_and_entered_in_error_breast_cancer_excluded() -> None:
    refuted = b.condition("254837009", "Malignant neoplasm of breast", verification="refuted")
    eie = b.condition("254837009", "Malignant neoplasm of breast", verification="entered-in-error")
    assert not picture(refuted, eie).has_breast_cancer


# -- HER2 -----------------------------------------------------------------------------------


def test_her2_condition_positive_and_negative() -> None:
    pos = picture(b.condition("427685000", "HER2-positive carcinoma of breast"))
    assert pos.her2.status is ReceptorStatus.POSITIVE
    assert pos.has_breast_cancer
    neg = picture(b.condition("431396003", "HER2-negative carcinoma of breast"))
    assert neg.her2.status is ReceptorStatus.NEGATIVE


@pytest.mark.parametrize(
    ("loinc", "code", "system", "expected"),
    [
        ("48676-1", "10828004", SNOMED, ReceptorStatus.POSITIVE),
        ("48676-1", "260385009", SNOMED, ReceptorStatus.NEGATIVE),
        ("48676-1", "42425007", SNOMED, ReceptorStatus.EQUIVOCAL),
        ("48676-1", "LA6576-8", LOINC, ReceptorStatus.POSITIVE),
        ("48676-1", "LA6577-6", LOINC, ReceptorStatus.NEGATIVE),
        ("18474-7", "10828004", SNOMED, ReceptorStatus.POSITIVE),
        ("85318-4", "10828004", SNOMED, ReceptorStatus.POSITIVE),
        ("85319-2", "LA11843-2", LOINC, ReceptorStatus.POSITIVE),  # IHC 3+
        ("85319-2", "LA11842-4", LOINC, ReceptorStatus.EQUIVOCAL),  # IHC 2+
        ("85319-2", "LA11841-6", LOINC, ReceptorStatus.NEGATIVE),  # IHC 1+ (HER2-low)
        ("85319-2", "LA6111-4", LOINC, ReceptorStatus.NEGATIVE),  # IHC 0
    ],
)
def test_her2_observation_values(
    loinc: str, code: str, system: str, expected: ReceptorStatus
) -> None:
    rec = picture(b.breast_cancer(), obs(loinc, "2020-01-10", code, system))
    assert rec.her2.status is expected
    assert rec.her2.basis is not None and rec.her2.basis.date == date(2020, 1, 10)


def test_her2_string_value_is_read() -> None:
    o = b.observation("85319-2", when="2020-01-10")
    o["valueString"] = "3+"
    assert picture(o).her2.status is ReceptorStatus.POSITIVE


def test_ihc_2plus_resolved_by_ish() -> None:
    ihc = obs("85319-2", "2020-01-10", "LA11842-4", LOINC)
    ish_pos = obs("85318-4", "2020-01-14", "10828004")
    ish_neg = obs("85318-4", "2020-01-14", "260385009")
    assert picture(ihc).her2.status is ReceptorStatus.EQUIVOCAL
    rec = picture(ihc, ish_pos)
    assert rec.her2.status is ReceptorStatus.POSITIVE
    assert rec.her2.basis is not None and rec.her2.basis.method == "ish"
    assert picture(ihc, ish_neg).her2.status is ReceptorStatus.NEGATIVE


def test_her2_latest_result_wins_and_conflict_is_kept() -> None:
    old = obs("48676-1", "2018-01-10", "260385009", rid="old-neg")
    new = obs("48676-1", "2021-03-01", "10828004", rid="new-pos")
    for order in ((old, new), (new, old)):
        rec = picture(*order)
        assert rec.her2.status is ReceptorStatus.POSITIVE
        assert rec.her2.basis is not None and rec.her2.basis.source_id == "Observation/new-pos"
        assert [c.source_id for c in rec.her2.conflicts] == ["Observation/old-neg"]


def _with_specimen(o: dict[str, Any], text: str) -> dict[str, Any]:
    o["specimen"] = {"display": text}
    return o


def test_metastatic_specimen_outranks_primary() -> None:
    primary_new = _with_specimen(
        obs("48676-1", "2021-06-01", "260385009", rid="prim"), "Breast core biopsy"
    )
    met_old = _with_specimen(
        obs("48676-1", "2021-05-01", "10828004", rid="met"), "Liver metastasis biopsy"
    )
    rec = picture(primary_new, met_old)
    assert rec.her2.status is ReceptorStatus.POSITIVE
    assert rec.her2.basis is not None
    assert rec.her2.basis.specimen is Specimen.METASTATIC
    assert rec.her2.basis.source_id == "Observation/met"
    assert [c.source_id for c in rec.her2.conflicts] == ["Observation/prim"]


def test_body_site_marks_primary_specimen() -> None:
    o = obs("48676-1", "2021-06-01", "10828004")
    o["bodySite"] = {"text": "Left breast"}  # a single object, as R4 has it
    rec = picture(o)
    assert rec.her2.basis is not None and rec.her2.basis.specimen is Specimen.PRIMARY


def _two_method_her2(first: str, second: str) -> dict[str, Any]:
    """A HER2 Observation coded as two methods at once, as Synthea writes them."""
    o = obs(first, "2021-06-01", "10828004", rid="twice")
    o["code"]["coding"].append({"system": LOINC, "code": second})
    return o


@pytest.mark.parametrize(
    ("first", "second", "method"),
    [
        ("48676-1", "85319-2", "interpretation"),  # the Synthea HER2 record's Observation
        ("85319-2", "48676-1", "interpretation"),
        ("85319-2", "85318-4", "ish"),
        ("85318-4", "85319-2", "ish"),
        ("18474-7", "85318-4", "ish"),
        ("85319-2", "18474-7", "interpretation"),
    ],
)
def test_two_method_codes_read_as_the_most_specific_method(
    first: str, second: str, method: str
) -> None:
    rec = picture(_two_method_her2(first, second))
    assert rec.her2.basis is not None and rec.her2.basis.method == method


_METHOD_PROBE = """
import sys
from datetime import date
from fhir_mappers import build_record
from tests import builders as b
o = b.observation("48676-1", when="2021-06-01", value_code="10828004", rid="twice")
o["code"]["coding"].append({"system": b.LOINC, "code": "85319-2"})
rec = build_record(b.bundle(b.patient(), o), as_of=date(2024, 6, 1))
print(rec.her2.basis.method if rec.her2.basis else None)
"""


def test_receptor_method_does_not_depend_on_the_hash_seed() -> None:
    """Set iteration order of the codes changes with PYTHONHASHSEED; the method must not."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    methods = {
        subprocess.run(
            [sys.executable, "-c", _METHOD_PROBE],
            env={**env, "PYTHONHASHSEED": str(seed)},
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in range(6)
    }
    assert methods == {"interpretation"}


def test_her2_without_readable_value_is_a_data_issue() -> None:
    o = b.observation("48676-1", when="2020-01-10", rid="noval")
    rec = picture(o)
    assert rec.her2.status is ReceptorStatus.UNKNOWN
    assert any(i.source_id == "Observation/noval" for i in rec.data_issues)


def test_cancelled_and_entered_in_error_observations_ignored() -> None:
    o1 = obs("48676-1", "2021-01-01", "10828004")
    o1["status"] = "entered-in-error"
    o2 = obs("48676-1", "2021-01-02", "10828004")
    o2["status"] = "cancelled"
    assert picture(o1, o2).her2.status is ReceptorStatus.UNKNOWN


# -- hormone receptors ----------------------------------------------------------------------


@pytest.mark.parametrize("loinc", ["85337-4", "16112-5", "40556-3"])
def test_er_positive_makes_hr_positive(loinc: str) -> None:
    rec = picture(obs(loinc, "2020-01-10", "10828004"))
    assert rec.er.status is ReceptorStatus.POSITIVE
    assert rec.hr_positive


@pytest.mark.parametrize("loinc", ["85339-0", "16113-3"])
def test_pr_positive_alone_makes_hr_positive(loinc: str) -> None:
    rec = picture(obs("16112-5", "2020-01-10", "260385009"), obs(loinc, "2020-01-10", "10828004"))
    assert rec.er.status is ReceptorStatus.NEGATIVE
    assert rec.pr.status is ReceptorStatus.POSITIVE
    assert rec.hr_positive


def test_hr_negative_when_both_negative() -> None:
    rec = picture(
        obs("16112-5", "2020-01-10", "260385009"), obs("16113-3", "2020-01-10", "260385009")
    )
    assert not rec.hr_positive


@pytest.mark.parametrize(("code", "attr"), [("416053008", "er"), ("416561008", "pr")])
def test_receptor_positive_conditions(code: str, attr: str) -> None:
    rec = picture(b.condition(code, "Receptor positive tumor"))
    assert getattr(rec, attr).status is ReceptorStatus.POSITIVE
    assert rec.hr_positive


# -- metastatic disease ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code", "site"),
    [
        (SNOMED, "128462008", None),
        (SNOMED, "94391008", "lung"),
        (SNOMED, "94381002", "liver"),
        (SNOMED, "94222008", "bone"),
        (SNOMED, "1287652008", None),
        (ICD10, "C78.7", "liver"),
        (ICD10, "C79.51", "bone"),
        (ICD10, "C77.3", None),
        (ICD10, "C7B.02", None),
    ],
)
def test_metastasis_conditions(system: str, code: str, site: str | None) -> None:
    rec = picture(b.condition(code, "Secondary malignant neoplasm", "2021-02-03", system=system))
    assert rec.metastatic_since == date(2021, 2, 3)
    assert [m.site for m in rec.metastases if m.concept == "metastasis"] == [site]


@pytest.mark.parametrize("m1", ["55440008", "1229903009", "1229904003", "1229907005"])
def test_tnm_m1_observation(m1: str) -> None:
    rec = picture(obs("21907-1", "2021-04-05", m1, rid="tnm"))
    assert rec.metastatic_since == date(2021, 4, 5)
    assert rec.metastatic_source_ids == ("Observation/tnm",)


def test_stage_iv_observation_and_m0_recorded_as_non_metastatic() -> None:
    rec = picture(obs("21908-9", "2021-04-05", "258228008"))
    assert rec.metastatic_since == date(2021, 4, 5)
    m0 = b.observation("21907-1", when="2020-01-01", value_code="30893008", value_display="M0")
    stage2 = b.observation(
        "21908-9", when="2020-01-01", value_code="261614003", value_display="Stage 2"
    )
    rec = picture(m0, stage2)
    assert not rec.metastatic
    assert len(rec.non_metastatic_staging_ids) == 2


def test_metastatic_since_is_the_earliest_of_all_sources() -> None:
    rec = picture(
        b.metastasis("94381002", "2021-05-01"),
        obs("21907-1", "2021-03-01", "55440008", rid="m1"),
        obs("21908-9", "2021-04-01", "258228008"),
        b.condition("94225005", "Brain metastasis", "2022-01-01"),
    )
    assert rec.metastatic_since == date(2021, 3, 1)
    assert "Observation/m1" in rec.metastatic_source_ids
    assert len(rec.metastatic_source_ids) == 4


def test_refuted_metastasis_is_not_metastatic() -> None:
    cond = b.condition("94381002", "Liver metastasis", "2021-01-01", verification="refuted")
    assert not picture(cond).metastatic


def test_undated_metastasis_is_a_data_issue_not_a_date() -> None:
    cond = b.condition("94381002", "Liver metastasis", "2021-01-01")
    del cond["onsetDateTime"]
    rec = picture(cond)
    assert rec.metastatic and rec.metastatic_since is None
    assert any("without a date" in i.message for i in rec.data_issues)


# -- brain metastases -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code"),
    [(SNOMED, "94225005"), (ICD10, "C79.31"), (ICD10, "C79.32"), (ICD10, "C79.49")],
)
@pytest.mark.parametrize(
    ("clinical", "active"),
    [
        ("active", True),
        ("recurrence", True),
        ("relapse", True),
        ("resolved", False),
        ("remission", False),
        (None, True),
    ],
)
def test_brain_metastasis_flag(system: str, code: str, clinical: str | None, active: bool) -> None:
    rec = picture(
        b.condition(code, "Brain metastasis", "2022-01-01", system=system, clinical=clinical)
    )
    brain = [m for m in rec.metastases if m.concept == "brain-metastasis"]
    assert len(brain) == 1 and brain[0].site == "brain"
    assert rec.active_brain_metastases is active
    assert rec.metastatic_since == date(2022, 1, 1)


# -- ILD / pneumonitis ----------------------------------------------------------------------

ILD_CODES = [
    (SNOMED, c)
    for c in (
        "233703007",
        "427046006",
        "196051003",
        "196053000",
        "205237003",
        "64667001",
        "51615001",
        "700250006",
        "84004001",
        "71193007",
        "405570007",
    )
] + [(ICD10, c) for c in ("J84.10", "J84.116", "J70.0", "J70.1", "J70.2", "J70.3", "J70.4")]


@pytest.mark.parametrize(("system", "code"), ILD_CODES)
def test_ild_codes(system: str, code: str) -> None:
    rec = picture(b.condition(code, "", "2019-01-01", system=system, clinical="resolved"))
    assert [c.concept for c in rec.conditions] == ["ild"]


def test_ild_excluded_only_when_refuted_or_entered_in_error() -> None:
    for clinical in ("active", "inactive", "resolved", "remission", None):
        assert picture(b.condition("233703007", "ILD", clinical=clinical)).conditions_of("ild")
    for verification in ("refuted", "entered-in-error"):
        rec = picture(b.condition("233703007", "ILD", verification=verification))
        assert not rec.conditions_of("ild")
    for kept in ("unconfirmed", "provisional", "differential", None):
        assert picture(b.condition("233703007", "ILD", verification=kept)).conditions_of("ild")


def test_j70_5_is_not_ild() -> None:
    rec = picture(b.condition("J70.5", "Respiratory conditions due to smoke", system=ICD10))
    assert not rec.conditions_of("ild")


# -- cardiac --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (SNOMED, "84114007"),
        (SNOMED, "88805009"),
        (SNOMED, "703272007"),
        (SNOMED, "134401001"),
        (SNOMED, "85898001"),
        (ICD10, "I50.22"),
        (ICD10, "I42.0"),
    ],
)
def test_heart_failure_codes(system: str, code: str) -> None:
    rec = picture(b.condition(code, "", "2019-01-01", system=system))
    assert [c.concept for c in rec.conditions] == ["heart-failure"]


def test_lvef_series_kept_in_date_order_from_all_codes() -> None:
    echo = b.observation("34552-0", when="2023-06-01", rid="panel")
    echo["component"] = [
        {"code": b.coded(LOINC, "18043-0"), "valueQuantity": {"value": 48, "unit": "%"}}
    ]
    rec = picture(
        b.lvef(62, "2023-01-01"),
        b.observation("8806-2", when="2022-01-01", quantity=65),
        b.observation("18043-0", when="2023-03-01", quantity=55),
        echo,
    )
    assert [m.value for m in rec.lvef] == [65, 62, 55, 48]
    assert rec.lvef[-1].source_id == "Observation/panel"


def test_lvef_without_number_is_a_data_issue() -> None:
    o = b.observation("10230-1", when="2023-01-01", rid="nonum")
    o["valueString"] = "normal"
    rec = picture(o)
    assert rec.lvef == ()
    assert any(i.source_id == "Observation/nonum" for i in rec.data_issues)


# -- progression ----------------------------------------------------------------------------


def test_progression_only_when_worsened() -> None:
    worse = b.progression("2022-01-01")
    better = obs("97509-4", "2022-02-01", "268910001")
    stable = obs("97509-4", "2022-03-01", "359746009")
    rec = picture(worse, better, stable)
    assert [p.date for p in rec.progressions] == [date(2022, 1, 1)]
    assert rec.progressions[0].source_id == f"Observation/{worse['id']}"


def test_stop_for_no_response_is_progression() -> None:
    stopped = b.med_resource(
        "MedicationRequest",
        b.coded(b.RXNORM, "224905", "trastuzumab"),
        "2022-01-01",
        "2022-05-01",
        status="stopped",
        status_reason=b.coded(SNOMED, b.NO_RESPONSE, "No response to treatment"),
        rid="stopped",
    )
    rec = picture(b.metastasis(onset="2021-12-01"), stopped)
    assert [(p.date, p.source_id) for p in rec.progressions] == [
        (date(2022, 5, 1), "MedicationRequest/stopped")
    ]
    assert rec.lines[0].ended_in_progression


# -- malformed resources --------------------------------------------------------------------


def test_malformed_ild_is_reported_and_still_used() -> None:
    cond = b.condition("233703007", "Interstitial lung disease", "2019-01-01", rid="bad-ild")
    cond["clinicalStatus"] = "active"  # a string where a CodeableConcept belongs
    cond["subject"] = "Patient/p1"
    rec = picture(cond)
    assert rec.conditions_of("ild")
    assert any(i.source_id == "Condition/bad-ild" for i in rec.data_issues)


def test_malformed_heart_failure_is_reported_and_still_used() -> None:
    cond = b.condition("84114007", "Heart failure", "2019-01-01", rid="bad-hf")
    cond["onsetDateTime"] = "2019-01-01T25:99"  # invalid time, readable date
    rec = picture(cond)
    assert rec.conditions_of("heart-failure")
    assert rec.conditions_of("heart-failure")[0].onset == date(2019, 1, 1)
    assert any(i.source_id == "Condition/bad-hf" for i in rec.data_issues)


@pytest.mark.parametrize(
    "breakage",
    [
        {"effectivePeriod": "2020"},
        {"code": {"coding": "oops"}},
        {"valueCodeableConcept": ["x"]},
        {"component": [1, 2]},
        {"effectiveDateTime": 20200101},
    ],
)
def test_malformed_observation_never_raises(breakage: dict[str, Any]) -> None:
    o = obs("48676-1", "2020-01-10", "10828004", rid="weird")
    o.update(breakage)
    rec = picture(o)  # must not raise
    assert isinstance(rec.data_issues, tuple)


def test_resource_id_missing_still_reported() -> None:
    o = obs("48676-1", "2020-01-10", "10828004")
    del o["id"]
    o["status"] = 7
    rec = picture(o)
    assert any(i.source_id == "Observation/(no id)" for i in rec.data_issues)


# -- code systems as real EHRs send them ----------------------------------------------------


@pytest.mark.parametrize(
    "system",
    ["urn:oid:2.16.840.1.113883.6.96", "http://snomed.info/sct/", "http://snomed.info/sct"],
)
def test_snomed_sent_as_oid_or_with_slash(system: str) -> None:
    cond = b.condition("233703007", "", system=system)
    cond["code"]["text"] = ""
    assert picture(cond).conditions_of("ild")


def test_icd10_cm_oid_and_loinc_oid() -> None:
    cond = b.condition("I50.9", "", system="urn:oid:2.16.840.1.113883.6.90")
    o = b.observation("10230-1", when="2023-01-01", quantity=58)
    o["code"]["coding"][0]["system"] = "urn:oid:2.16.840.1.113883.6.1"
    rec = picture(cond, o)
    assert rec.conditions_of("heart-failure")
    assert [m.value for m in rec.lvef] == [58]


def test_condition_code_as_plain_string_is_read_as_text_and_reported() -> None:
    cond = b.condition("x", "", rid="str")
    cond["code"] = "Interstitial lung disease"
    rec = picture(cond)
    assert rec.conditions_of("ild")
    assert any(i.source_id == "Condition/str" for i in rec.data_issues)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (55, "%", 55.0),
        (0.45, "1", 45.0),
        (0.6, None, 60.0),
        (48, None, 48.0),
        (50, "percent", 50.0),
    ],
)
def test_lvef_units(value: float, unit: str | None, expected: float) -> None:
    o = b.observation("10230-1", when="2023-01-01", quantity=value)
    if unit is None:
        del o["valueQuantity"]["unit"], o["valueQuantity"]["code"]
    else:
        o["valueQuantity"]["unit"] = o["valueQuantity"]["code"] = unit
    assert [m.value for m in picture(o).lvef] == [expected]


@pytest.mark.parametrize(("value", "unit"), [(450, "%"), (55, "mL"), (0.0, "%")])
def test_implausible_lvef_is_a_data_issue_not_a_value(value: float, unit: str) -> None:
    o = b.observation("10230-1", when="2023-01-01", quantity=value, unit=unit, rid="odd-ef")
    rec = picture(o)
    assert rec.lvef == ()
    assert any(i.source_id == "Observation/odd-ef" for i in rec.data_issues)


def test_specimen_resource_reference_gives_the_biopsy_site() -> None:
    liver = {
        "resourceType": "Specimen",
        "id": "spec-liver",
        "type": b.coded(SNOMED, "309075003", "Liver biopsy sample"),
        "collection": {"bodySite": b.coded(SNOMED, "10200004", "Liver structure")},
    }
    breast = {
        "resourceType": "Specimen",
        "id": "spec-breast",
        "type": b.coded(None, None, "Core needle biopsy"),
        "collection": {"bodySite": b.coded(None, None, "Left breast")},
    }
    met = obs("85319-2", "2020-01-10", "LA11843-2", LOINC, rid="on-liver")
    met["specimen"] = {"reference": "Specimen/spec-liver"}
    prim = obs("85319-2", "2022-01-10", "LA6111-4", LOINC, rid="on-breast")
    prim["specimen"] = {"reference": "urn:uuid:spec-breast"}
    rec = picture(liver, breast, met, prim)
    assert rec.her2.basis is not None
    assert rec.her2.basis.source_id == "Observation/on-liver"
    assert rec.her2.basis.specimen is Specimen.METASTATIC
    assert rec.her2.status is ReceptorStatus.POSITIVE
    assert [r.specimen for r in rec.her2.results] == [Specimen.PRIMARY, Specimen.METASTATIC]


def test_axillary_node_is_not_a_metastatic_specimen() -> None:
    o = _with_specimen(obs("48676-1", "2021-06-01", "10828004"), "Axillary lymph node")
    rec = picture(o)
    assert rec.her2.basis is not None and rec.her2.basis.specimen is Specimen.UNKNOWN


@pytest.mark.parametrize(
    ("system", "code"),
    [(LOINC, "21901-4"), (LOINC, "21913-9"), (SNOMED, "399387003"), (SNOMED, "371497001")],
)
def test_pathological_and_snomed_coded_m_category(system: str, code: str) -> None:
    o = obs("21907-1", "2021-04-05", "55440008", rid="pm")
    o["code"] = b.coded(system, code)
    rec = picture(o)
    assert rec.metastatic_since == date(2021, 4, 5)


def test_mcode_stu1_disease_status_code() -> None:
    o = obs("88040-1", "2022-01-01", "271299001")
    assert [p.date for p in picture(o).progressions] == [date(2022, 1, 1)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Positive (3+)", ReceptorStatus.POSITIVE),
        ("IHC 3+", ReceptorStatus.POSITIVE),
        ("HER2 gene amplified", ReceptorStatus.POSITIVE),
        ("HER2 not amplified. Ratio 1.2", ReceptorStatus.NEGATIVE),
        ("non-amplified", ReceptorStatus.NEGATIVE),
        ("HER2 negative (IHC 1+)", ReceptorStatus.NEGATIVE),
        ("Score 0", ReceptorStatus.NEGATIVE),
        ("ISH ratio 2.0", ReceptorStatus.UNKNOWN),  # a number is not a score
        ("Equivocal (2+)", ReceptorStatus.EQUIVOCAL),
        ("2+ equivocal, reflex ISH positive", ReceptorStatus.UNKNOWN),  # two answers: not guessed
        ("see report", ReceptorStatus.UNKNOWN),
    ],
)
def test_her2_free_text_answers(text: str, expected: ReceptorStatus) -> None:
    o = b.observation("48676-1", when="2020-01-10")
    o["valueString"] = text
    assert picture(o).her2.status is expected


def test_brain_metastasis_without_status_but_abated_is_inactive() -> None:
    cond = b.condition("94225005", "Brain metastasis", "2022-01-01", clinical=None)
    assert picture(cond).active_brain_metastases
    cond["abatementDateTime"] = "2022-08-01"
    assert not picture(cond).active_brain_metastases
