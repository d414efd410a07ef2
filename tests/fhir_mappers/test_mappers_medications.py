"""Drug exposures from every medication shape real records use (CLINICAL.md section 1, last row)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from engine.model import PatientRecord
from fhir_mappers import build_record
from tests import builders as b
from tests.builders import RXNORM, SNOMED

AS_OF = date(2024, 6, 1)
MED_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")


def picture(*resources: dict[str, Any], met: str | None = "2021-01-01") -> PatientRecord:
    extra = [b.metastasis(onset=met)] if met else []
    return build_record(b.bundle(b.patient(), b.breast_cancer(), *extra, *resources), as_of=AS_OF)


def drugs(rec: PatientRecord) -> list[str]:
    return sorted({e.drug for e in rec.exposures})


@pytest.mark.parametrize("rtype", MED_TYPES)
@pytest.mark.parametrize(
    "concept",
    [
        b.coded(RXNORM, "224905", "trastuzumab"),  # ingredient
        b.coded(RXNORM, "2119714", "5 ML hyaluronidase-oysk 2000 UNT/ML / trastuzumab 120 MG/ML"),
        b.coded(SNOMED, "387003001", "Trastuzumab"),  # SNOMED substance
        b.coded(b.ATC, "L01FD01", "trastuzumab"),
        b.coded(None, None, "Herceptin 150 mg powder for solution"),  # brand text, no code
        b.coded(None, None, "Trastuzumab-dkst (Ogivri) 420 MG Injection"),
        b.coded("http://example.org/local-formulary", "X-99", "KANJINTI 420 mg"),
    ],
)
def test_trastuzumab_recognised_in_every_resource_and_coding(
    rtype: str, concept: dict[str, Any]
) -> None:
    rec = picture(b.med_resource(rtype, concept, "2021-02-01", rid="m1"))
    assert drugs(rec) == ["trastuzumab"]
    assert rec.exposures[0].source_ids == (f"{rtype}/m1",)


@pytest.mark.parametrize("rtype", MED_TYPES)
def test_r5_codeable_reference_concept(rtype: str) -> None:
    res = b.med_resource(rtype, b.coded(RXNORM, "1298944", "pertuzumab"), "2021-02-01", shape="r5")
    assert drugs(picture(res)) == ["pertuzumab"]


@pytest.mark.parametrize("rtype", MED_TYPES)
@pytest.mark.parametrize(
    "ref_style", ["Medication/{id}", "urn:uuid:{id}", "https://ehr/fhir/Medication/{id}"]
)
def test_reference_to_bundled_medication_r4_and_r5(rtype: str, ref_style: str) -> None:
    med = b.medication(
        "0b0e7f4e-1111-4c1c-9c1c-aaaaaaaaaaaa",
        b.coded(RXNORM, "1371046", "Kadcyla 100 MG Injection"),
    )
    ref = ref_style.format(id=med["id"])
    for shape in ("r4", "r5"):
        res = b.med_resource(rtype, None, "2021-02-01", reference=ref, shape=shape)
        assert drugs(picture(med, res)) == ["ado-trastuzumab emtansine"], (shape, ref)


@pytest.mark.parametrize("rtype", MED_TYPES)
def test_reference_to_contained_medication(rtype: str) -> None:
    contained = b.medication("med1", b.coded(None, None, "Enhertu 100 mg"))
    res = b.med_resource(rtype, None, "2021-02-01", reference="#med1", contained=contained)
    assert drugs(picture(res)) == ["fam-trastuzumab deruxtecan"]


def test_unresolvable_reference_falls_back_to_display() -> None:
    res = b.med_resource("MedicationRequest", None, "2021-02-01", reference="Medication/gone")
    res["medicationReference"]["display"] = "Tukysa 150 MG Oral Tablet"
    assert drugs(picture(res)) == ["tucatinib"]


@pytest.mark.parametrize(
    ("rtype", "status"),
    [
        ("MedicationStatement", "entered-in-error"),
        ("MedicationStatement", "not-taken"),
        ("MedicationRequest", "entered-in-error"),
        ("MedicationRequest", "cancelled"),
        ("MedicationRequest", "draft"),
        ("MedicationAdministration", "entered-in-error"),
        ("MedicationAdministration", "not-done"),
    ],
)
def test_excluded_statuses_are_not_exposures(rtype: str, status: str) -> None:
    res = b.med_resource(
        rtype, b.coded(RXNORM, "224905", "trastuzumab"), "2021-02-01", status=status
    )
    rec = picture(res)
    assert rec.exposures == () and rec.lines == ()


def test_draft_order_is_never_history_even_with_other_statuses_present() -> None:
    given = b.request("224905", "trastuzumab", "2021-02-01", rid="given")
    draft = b.request("2267576", "Enhertu", "2021-03-01", status="draft", rid="draft")
    rec = picture(given, draft)
    assert drugs(rec) == ["trastuzumab"]
    assert all("MedicationRequest/draft" not in ln.source_ids for ln in rec.lines)


@pytest.mark.parametrize("intent_", ["proposal", "plan"])
def test_proposals_and_plans_are_not_history(intent_: str) -> None:
    res = b.med_resource(
        "MedicationRequest", b.coded(RXNORM, "224905", "trastuzumab"), "2021-02-01", intent_=intent_
    )
    assert picture(res).exposures == ()


def test_per_cycle_requests_and_per_dose_administrations_merge_into_one_course() -> None:
    reqs = b.cycles("224905", "trastuzumab", "2021-02-01", 6)
    admins = b.doses("1298944", "pertuzumab", "2021-02-01", 6)
    rec = picture(*reqs, *admins)
    assert sorted(e.drug for e in rec.exposures) == ["pertuzumab", "trastuzumab"]
    tras = next(e for e in rec.exposures if e.drug == "trastuzumab")
    assert len(tras.source_ids) == 6
    assert tras.start == date(2021, 2, 1)
    assert tras.end == date(2021, 5, 17)  # the last dose (CLINICAL.md 2.5), not + one cycle
    assert len(rec.lines) == 1
    assert set(rec.lines[0].source_ids) == {f"MedicationRequest/{r['id']}" for r in reqs} | {
        f"MedicationAdministration/{a['id']}" for a in admins
    }


def test_ongoing_statement_is_ongoing_and_stale_active_order_is_not() -> None:
    ongoing = b.statement("224905", "trastuzumab", "2024-01-01")
    rec = picture(ongoing)
    assert rec.exposures[0].ongoing and rec.lines[0].ongoing
    stale = b.request("224905", "trastuzumab", "2021-02-01", status="active")
    rec = picture(stale)
    assert not rec.exposures[0].ongoing


def test_medication_without_date_is_a_data_issue() -> None:
    res = b.med_resource(
        "MedicationStatement", b.coded(RXNORM, "224905", "trastuzumab"), "2021-02-01", rid="nodate"
    )
    del res["effectivePeriod"]
    rec = picture(res)
    assert rec.exposures == ()
    assert any(i.source_id == "MedicationStatement/nodate" for i in rec.data_issues)


def test_malformed_medication_is_reported_not_raised() -> None:
    res = b.request("224905", "trastuzumab", "2021-02-01", rid="odd")
    res["dosageInstruction"] = ["every 3 weeks"]
    res["dispenseRequest"] = "yes"
    rec = picture(res)
    assert drugs(rec) == ["trastuzumab"]
    assert any(i.source_id == "MedicationRequest/odd" for i in rec.data_issues)


def test_supportive_and_bone_drugs_are_not_exposures() -> None:
    rec = picture(
        b.request("72236", "denosumab 120 MG", "2021-02-01"),
        b.request("77655", "zoledronic acid", "2021-02-01"),
        b.request(None, "Ondansetron 8 MG", "2021-02-01"),
    )
    assert rec.exposures == ()


# -- setting: early vs metastatic -----------------------------------------------------------


def test_before_metastatic_date_is_early_setting_with_its_end_date() -> None:
    adj = b.statement("224905", "trastuzumab", "2019-01-01", "2019-12-20")
    met = b.statement("1371041", "T-DM1", "2021-02-01", "2021-08-01")
    rec = picture(adj, met)
    assert [e.drug for e in rec.early_exposures] == ["trastuzumab"]
    assert rec.early_setting_end == date(2019, 12, 20)
    assert [ln.drugs for ln in rec.lines] == [("ado-trastuzumab emtansine",)]


@pytest.mark.parametrize("url", [b.INTENT_STU1, b.INTENT_STU2])
def test_curative_intent_is_early_setting_even_after_metastatic_date(url: str) -> None:
    res = b.med_resource(
        "MedicationStatement",
        b.coded(RXNORM, "224905", "trastuzumab"),
        "2021-02-01",
        "2021-06-01",
        extension=[b.intent(b.CURATIVE, url)],
    )
    rec = picture(res)
    assert [e.drug for e in rec.early_exposures] == ["trastuzumab"]
    assert rec.lines == ()


def test_palliative_intent_is_metastatic_setting() -> None:
    res = b.med_resource(
        "MedicationStatement",
        b.coded(RXNORM, "224905", "trastuzumab"),
        "2021-02-01",
        "2021-06-01",
        extension=[b.intent(b.PALLIATIVE)],
    )
    rec = picture(res)
    assert rec.early_exposures == () and len(rec.lines) == 1


def test_no_metastatic_date_means_everything_is_early() -> None:
    rec = picture(b.statement("224905", "trastuzumab", "2021-02-01", "2021-06-01"), met=None)
    assert rec.lines == () and len(rec.early_exposures) == 1


def test_reference_to_a_missing_medication_is_a_data_issue() -> None:
    res = b.med_resource(
        "MedicationAdministration", None, "2021-02-01", reference="Medication/not-sent", rid="lost"
    )
    rec = picture(res)
    assert rec.exposures == ()
    issue = next(i for i in rec.data_issues if i.source_id == "MedicationAdministration/lost")
    assert "Medication/not-sent" in issue.message


def test_medication_naming_no_drug_is_a_data_issue() -> None:
    res = b.request(None, "", "2021-02-01", rid="blank")
    del res["medicationCodeableConcept"]
    rec = picture(res)
    assert any(i.source_id == "MedicationRequest/blank" for i in rec.data_issues)


@pytest.mark.parametrize(
    ("system", "code"),
    [("urn:oid:2.16.840.1.113883.6.88", "1371041"), ("http://www.whocc.no/atc/", "L01FD03")],
)
def test_medication_code_systems_as_oid_or_with_slash(system: str, code: str) -> None:
    res = b.med_resource("MedicationStatement", b.coded(system, code), "2021-02-01")
    assert drugs(picture(res)) == ["ado-trastuzumab emtansine"]


@pytest.mark.parametrize("rtype", MED_TYPES)
@pytest.mark.parametrize("shape", ["r4", "r5"])
def test_well_formed_resources_raise_no_data_issue(rtype: str, shape: str) -> None:
    """Completed courses: an 'active' one from 2021 would rightly be reported as stale."""
    med = b.medication("m9", b.coded(RXNORM, "1298944", "pertuzumab"))
    inline = b.med_resource(
        rtype,
        b.coded(RXNORM, "224905", "trastuzumab"),
        "2021-02-01",
        "2021-06-01",
        status="completed",
        shape=shape,
    )
    ref = b.med_resource(
        rtype,
        None,
        "2021-02-01",
        "2021-06-01",
        status="completed",
        reference="Medication/m9",
        shape=shape,
    )
    rec = picture(med, inline, ref)
    assert drugs(rec) == ["pertuzumab", "trastuzumab"]
    assert rec.data_issues == ()


def test_one_drug_recorded_three_ways_is_one_course_and_one_line() -> None:
    statement = b.med_resource(
        "MedicationStatement",
        b.coded(None, None, "Herceptin"),
        "2021-02-01",
        "2021-07-01",
        rid="st",
    )
    orders = b.cycles("224905", "trastuzumab 150 MG Injection", "2021-02-01", 8)
    doses = b.doses("2119714", "trastuzumab SC", "2021-02-02", 8)
    rec = picture(statement, *orders, *doses)
    assert [e.drug for e in rec.exposures] == ["trastuzumab"]
    course = rec.exposures[0]
    assert len(course.source_ids) == 17
    assert course.start == date(2021, 2, 1)
    assert len(rec.lines) == 1
    assert "MedicationStatement/st" in rec.lines[0].source_ids


@pytest.mark.parametrize(
    ("duration", "end"),
    [
        ({"value": 6, "code": "mo"}, date(2021, 7, 31)),
        ({"value": 12, "unit": "weeks"}, date(2021, 4, 26)),
    ],
)
def test_request_bounds_duration_sets_the_end(duration: dict[str, Any], end: date) -> None:
    res = b.request("1371041", "T-DM1", "2021-02-01")
    res["dosageInstruction"] = [{"timing": {"repeat": {"boundsDuration": duration}}}]
    rec = picture(res)
    assert rec.exposures[0].end == end


@pytest.mark.parametrize("shape", ["r4", "r5"])
def test_medication_known_only_by_its_ingredients(shape: str) -> None:
    def ingredient(concept: dict[str, Any]) -> dict[str, Any]:
        return {"itemCodeableConcept": concept} if shape == "r4" else {"item": {"concept": concept}}

    med = {
        "resourceType": "Medication",
        "id": "compound",
        "code": b.coded("http://example.org/pharmacy", "PX-1", "Pharmacy preparation 17"),
        "ingredient": [
            ingredient(b.coded(RXNORM, "1298944", "pertuzumab")),
            ingredient(b.coded(SNOMED, "387003001", "Trastuzumab")),
            ingredient(b.coded(None, None, "hyaluronidase")),
        ],
    }
    res = b.med_resource(
        "MedicationAdministration", None, "2021-02-01", reference="Medication/compound", shape=shape
    )
    rec = picture(med, res)
    assert drugs(rec) == ["pertuzumab", "trastuzumab"]
    assert rec.data_issues == ()


def test_active_statement_judged_by_when_it_was_asserted_not_when_it_started() -> None:
    """CLINICAL.md section 3: an ongoing line means "continue"; a statement asserted last week
    that T-DXd has run for 14 months is current therapy, not a 21-day course in the past."""
    res = b.med_resource(
        "MedicationStatement", b.coded(RXNORM, "2267576", "Enhertu"), "2023-04-01", status="active"
    )
    res["dateAsserted"] = "2024-05-20"
    rec = picture(res)
    (line,) = rec.lines
    assert line.ongoing
    assert rec.data_issues == ()


def test_stale_active_claim_is_a_past_course_and_said() -> None:
    res = b.med_resource(
        "MedicationStatement",
        b.coded(RXNORM, "224905", "trastuzumab"),
        "2021-02-01",
        status="active",
    )
    rec = picture(res)
    (line,) = rec.lines
    assert not line.ongoing
    assert any("not updated for over 365 days" in i.message for i in rec.data_issues)


def test_oral_fill_whose_supply_reaches_today_is_ongoing() -> None:
    """Per-cycle oral fills: the latest active fill's supply runs to (or within a cycle of)
    the as-of date, so the line is in progress."""
    fill = b.med_resource(
        "MedicationRequest",
        b.coded(RXNORM, "480167", "lapatinib"),
        AS_OF.isoformat(),
        status="active",
    )
    fill["dispenseRequest"] = {"expectedSupplyDuration": {"value": 21, "unit": "d"}}
    old = b.med_resource(
        "MedicationRequest",
        b.coded(RXNORM, "480167", "lapatinib"),
        "2026-10-01",
        status="completed",
    )
    old["dispenseRequest"] = {"expectedSupplyDuration": {"value": 21, "unit": "d"}}
    rec = picture(old, fill)
    assert rec.lines[-1].ongoing
