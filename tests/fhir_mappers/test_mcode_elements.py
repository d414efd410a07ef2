"""Issue 24: each mCODE element on its own, through `build_record` and `assess`.

Each test takes one of the IG-built fixtures (tests/fixtures/mcode) and keeps or changes one
element, so the element alone decides (CLINICAL.md section 1, "mCODE shapes")."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.assess import assess
from engine.model import PatientRecord, ReceptorStatus
from fhir_mappers.record import build_record
from tests.conftest import FIXTURES
from tests.mcode_fixtures import AS_OF, LAST_DOSE, LNC, SCT, V3_INT, cc

Bundle = dict[str, Any]
POSITIVE, NEGATIVE = ReceptorStatus.POSITIVE, ReceptorStatus.NEGATIVE
EQUIVOCAL, UNKNOWN = ReceptorStatus.EQUIVOCAL, ReceptorStatus.UNKNOWN


def load(name: str) -> Bundle:
    data: Bundle = json.loads((FIXTURES / "mcode" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def resources(bundle: Bundle) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"]]


def keep(name: str, *parts: str) -> Bundle:
    """The patient, her breast cancer (unstaged) and HER2, plus the resources named by `parts`."""
    bundle = copy.deepcopy(load(name))
    out = []
    for r in resources(bundle):
        rid = r["id"]
        if (
            r["resourceType"] == "Condition"
            and "primary-cancer" in rid
            and "stage-summary" not in parts
        ):
            r.pop("stage", None)
        base = r["resourceType"] in ("Patient", "Specimen") or "primary-cancer" in rid
        if base or "her2" in rid or any(p in rid for p in parts):
            out.append(r)
    bundle["entry"] = [{"resource": r} for r in out]
    return bundle


def record(bundle: Bundle) -> PatientRecord:
    return build_record(bundle, as_of=AS_OF)


def one(bundle: Bundle, rid: str) -> dict[str, Any]:
    return next(r for r in resources(bundle) if r["id"] == rid)


# -- stage and metastasis ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("mcode_stu1", "tnm-clinical-stage-group"),  # LOINC 21908-9, cancerstaging.org "4"
        ("mcode_stu1", "tnm-pathological-stage-group"),  # LOINC 21902-2
        ("mcode_stu1", "distant-metastases"),  # 21907-1 "cM1"
        ("mcode_stu2", "tnm-clinical-stage-group"),  # AJCC "4" "IV", CancerStageGroup
        ("mcode_stu3", "tnm-clinical-stage-group"),  # SNOMED 399537006 = 1222837003
        ("mcode_stu3", "distant-metastases"),  # SNOMED 399387003 cM = 1229903009 cM1
        ("mcode_stu3", "history-of-metastatic-cancer"),  # 1287652008, valueBoolean true
        ("mcode_stu4", "tnm-pathologic-stage-group"),  # SNOMED 399588009 = 1222837003
        ("mcode_stu4", "history-of-cancer-metastatic-to-liver"),  # 1098951000119108, no value
        ("mcode_stu4", "cancer-disease-status"),  # 97509-4 = 399409002
        ("mcode_stu1", "stage-summary"),  # Condition.stage.summary cancerstaging.org "4"
        ("mcode_stu3", "stage-summary"),  # Condition.stage.summary 1222837003
        ("mcode_stu4", "stage-summary"),
    ],
)
def test_each_metastatic_shape_alone_makes_the_patient_metastatic(name: str, part: str) -> None:
    rec = record(keep(name, part))
    assert rec.metastatic_since == date(2025, 1, 15), (name, part)
    assert rec.her2.status is POSITIVE
    assert not rec.non_metastatic_staging_ids
    a = assess(rec)
    assert a.in_scope and a.recommendation is not None


def test_without_any_of_them_the_patient_is_not_metastatic() -> None:
    rec = record(keep("mcode_stu3"))
    assert not rec.metastatic
    assert assess(rec).recommendation is None


@pytest.mark.parametrize("where", ["stage-group", "stage-summary"])
def test_1222806003_is_stage_iiic_not_metastatic(where: str) -> None:
    """The IG labels 1222806003 "AJCC stage IIIC": non-metastatic staging, never stage IV."""
    iiic = cc(SCT, "1222806003", "American Joint Committee on Cancer stage IIIC (qualifier value)")
    bundle = keep("mcode_stu3", "tnm-clinical-stage-group" if where == "stage-group" else where)
    for r in resources(bundle):
        if r["id"] == "stu3-tnm-clinical-stage-group":
            r["valueCodeableConcept"] = iiic
        if r["id"] == "stu3-primary-cancer-condition" and "stage" in r:
            r["stage"][0]["summary"] = iiic
    rec = record(bundle)
    assert not rec.metastatic and rec.non_metastatic_staging_ids
    a = assess(rec)
    assert not a.in_scope and a.recommendation is None


@pytest.mark.parametrize("code", ["1222837003", "1222838008", "1222841004", "1222842006"])
def test_stage_iv_and_its_substages_are_metastatic(code: str) -> None:
    bundle = keep("mcode_stu3", "tnm-clinical-stage-group")
    one(bundle, "stu3-tnm-clinical-stage-group")["valueCodeableConcept"] = cc(SCT, code)
    assert record(bundle).metastatic


def test_history_of_metastatic_cancer_false_is_no_history() -> None:
    """valueBoolean false reverses the HistoryOfMetastaticCancer observation (the IG's ?!)."""
    bundle = keep("mcode_stu3", "history-of-metastatic-cancer")
    one(bundle, "stu3-history-of-metastatic-cancer")["valueBoolean"] = False
    rec = record(bundle)
    assert not rec.metastatic
    assert "Observation/stu3-history-of-metastatic-cancer" in rec.non_metastatic_staging_ids


def test_pm_not_applicable_is_the_igs_non_metastatic_but_unknown_states_nothing() -> None:
    bundle = keep("mcode_stu3", "distant-metastases")
    absent = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
    m = one(bundle, "stu3-tnm-clinical-distant-metastases-category")
    m["valueCodeableConcept"] = cc(absent, "not-applicable", "Not Applicable")
    assert record(bundle).non_metastatic_staging_ids
    m["valueCodeableConcept"] = cc(absent, "unknown", "Unknown")
    rec = record(bundle)
    assert not rec.metastatic and not rec.non_metastatic_staging_ids


def test_disease_status_stu1_code_worsened_is_progression() -> None:
    rec = record(keep("mcode_stu1", "cancer-disease-status", "secondary"))
    assert [(p.date, p.source_id) for p in rec.progressions] == [
        (date(2025, 10, 10), "Observation/stu1-cancer-disease-status")
    ]


# -- HER2 -------------------------------------------------------------------------------------


def her2(bundle: Bundle) -> tuple[ReceptorStatus, PatientRecord]:
    rec = record(bundle)
    return rec.her2.status, rec


def stu3_her2(**changes: Any) -> Bundle:
    bundle = keep("mcode_stu3", "stage-summary")
    obs = one(bundle, "stu3-tumor-marker-test-her2")
    for key, value in changes.items():
        if value is None:
            obs.pop(key, None)
        else:
            obs[key] = value
    return bundle


@pytest.mark.parametrize(
    ("interpretation", "expected"),
    [
        (cc(SCT, "10828004", "Positive (qualifier value)"), POSITIVE),
        (cc(SCT, "260385009", "Negative (qualifier value)"), NEGATIVE),
        (cc(V3_INT, "POS"), POSITIVE),
        (cc(V3_INT, "NEG"), NEGATIVE),
        (cc(V3_INT, "H", "High"), UNKNOWN),
    ],
)
def test_interpretation_beside_present_decides(interpretation: Any, expected: Any) -> None:
    status, rec = her2(stu3_her2(interpretation=[interpretation]))
    assert status is expected
    if expected is POSITIVE:
        assert "Present" in rec.her2.basis.display  # type: ignore[union-attr]


def test_present_without_interpretation_is_not_a_status() -> None:
    status, rec = her2(stu3_her2(interpretation=None))
    assert status is UNKNOWN
    assert any("HER2" in i.message for i in rec.data_issues)
    needs = [n.what for n in assess(rec).data_needs]
    assert "her2-status" in needs


def test_a_value_and_an_interpretation_that_disagree_are_not_guessed() -> None:
    bundle = stu3_her2(valueCodeableConcept=cc(LNC, "LA6577-6", "Negative"))
    status, rec = her2(bundle)
    assert status is UNKNOWN
    assert any("disagree" in i.message for i in rec.data_issues)


@pytest.mark.parametrize(
    ("score", "expected"), [(0, NEGATIVE), (1, NEGATIVE), (2, EQUIVOCAL), (3, POSITIVE)]
)
def test_ihc_score_as_value_quantity(score: int, expected: ReceptorStatus) -> None:
    bundle = keep("mcode_stu2", "stage-summary")
    one(bundle, "stu2-tumor-marker-test-her2")["valueQuantity"]["value"] = score
    assert her2(bundle)[0] is expected


@pytest.mark.parametrize("code", ["31150-6", "72383-3", "96893-3", "85319-2", "48676-1"])
def test_other_her2_codes_of_the_tumour_marker_value_set(code: str) -> None:
    bundle = stu3_her2(code=cc(LNC, code))
    assert her2(bundle)[0] is POSITIVE


def test_ratio_without_interpretation_is_equivocal_and_asks_for_ish() -> None:
    bundle = keep("mcode_stu4", "stage-summary")
    bundle["entry"] = [e for e in bundle["entry"] if "her2-fish" not in e["resource"]["id"]]
    one(bundle, "stu4-tumor-marker-test-her2-ratio").pop("interpretation")
    status, rec = her2(bundle)
    assert status is EQUIVOCAL
    a = assess(rec)
    assert a.recommendation is None and "her2-status" in [n.what for n in a.data_needs]


def test_ratio_with_interpretation_is_an_ish_result_on_the_metastasis() -> None:
    bundle = keep("mcode_stu4", "stage-summary")
    bundle["entry"] = [e for e in bundle["entry"] if "her2-fish" not in e["resource"]["id"]]
    rec = record(bundle)
    assert rec.her2.status is POSITIVE and rec.her2.discordance == "conversion"
    assert rec.her2.basis is not None and rec.her2.basis.method == "ish"


@settings(max_examples=40, deadline=None)
@given(value=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers()))
def test_property_only_a_whole_score_of_3_reads_positive(value: float) -> None:
    bundle = keep("mcode_stu2", "stage-summary")
    one(bundle, "stu2-tumor-marker-test-her2")["valueQuantity"]["value"] = value
    status = her2(bundle)[0]
    assert (status is POSITIVE) == (value == 3)
    if status is not UNKNOWN:
        assert value in (0, 1, 2, 3)


# -- stops for no response -----------------------------------------------------------------


def test_stu1_termination_reason_is_progression_at_the_statements_end() -> None:
    bundle = keep("mcode_stu1", "secondary", "medication-statement")
    rec = record(bundle)
    assert {p.date for p in rec.progressions} == {LAST_DOSE}
    (line,) = rec.lines
    assert line.ended_in_progression and line.end == LAST_DOSE
    for r in resources(bundle):
        if r["resourceType"] == "MedicationStatement":
            r["extension"] = r["extension"][:1]  # the intent only
    rec = record(bundle)
    assert not rec.progressions and not rec.lines[0].ended_in_progression


def test_stu1_statement_without_an_end_is_dated_when_asserted_not_at_its_start() -> None:
    bundle = keep("mcode_stu1", "secondary", "medication-statement")
    for r in resources(bundle):
        if r["resourceType"] == "MedicationStatement":
            r["effectiveDateTime"] = r.pop("effectivePeriod")["start"]
    rec = record(bundle)
    assert {p.date for p in rec.progressions} == {date(2025, 10, 10)}
    assert all("approximate" in p.basis for p in rec.progressions)


def test_stu3_status_reason_with_a_stated_end() -> None:
    rec = record(keep("mcode_stu3", "stage-summary", "medication-request"))
    assert {p.date for p in rec.progressions} == {LAST_DOSE}


def test_stu4_stop_without_end_is_dated_at_the_last_administration() -> None:
    rec = record(keep("mcode_stu4", "stage-summary", "medication-request", "admin"))
    assert {p.date for p in rec.progressions} == {LAST_DOSE}
    assert all("approximate" in p.basis for p in rec.progressions)


def test_a_lone_stopped_order_is_never_dated_at_the_day_the_line_began() -> None:
    """No end, no dose after its start: the date is unknown and said, the line still ended in
    progression, and the next line is recommended now (CLINICAL.md section 1 and 3)."""
    rec = record(keep("mcode_stu4", "stage-summary", "medication-request"))
    (line,) = rec.lines
    assert all(p.date != line.start for p in rec.progressions)
    assert line.ended_in_progression
    assert any("progression date is unknown" in i.message for i in rec.data_issues)
    a = assess(rec)
    assert a.recommendation is not None and a.recommendation.timing == "now"


_VALUES = {
    "positive": cc(LNC, "LA6576-8", "Positive"),
    "negative": cc(LNC, "LA6577-6", "Negative"),
    "present": cc(LNC, "LA9633-4", "Present"),
}
_INTERPRETATIONS = {
    "positive": cc(V3_INT, "POS"),
    "negative": cc(SCT, "260385009"),
    "none": None,
}


@settings(max_examples=30, deadline=None)
@given(value=st.sampled_from(sorted(_VALUES)), interp=st.sampled_from(sorted(_INTERPRETATIONS)))
def test_property_value_and_interpretation_never_give_a_status_neither_states(
    value: str, interp: str
) -> None:
    """The status read is one that the value or the interpretation states, and never one
    when they disagree."""
    concept = _INTERPRETATIONS[interp]
    bundle = stu3_her2(
        valueCodeableConcept=_VALUES[value], interpretation=[concept] if concept else None
    )
    status = her2(bundle)[0]
    stated = {s for s in (value, interp) if s in ("positive", "negative")}
    if len(stated) == 1:
        assert status.value in stated
    else:
        assert status is UNKNOWN
