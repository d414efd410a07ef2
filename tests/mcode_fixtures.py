"""Writes tests/fixtures/mcode/*.json: one HER2-positive metastatic breast cancer patient per mCODE
version, assembled from the HL7 mCODE IG's own example instances (HL7/fhir-mCODE-ig: STU1
input/examples/*.json; STU2, STU3 and STU4 input/fsh/EX_*.fsh). Each resource names the IG
instance it was written from; what was adapted is listed in tests/fixtures/mcode/README.md.

    PYTHONPATH=. python -m tests.mcode_fixtures      (rewrites the JSON files)
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "fixtures" / "mcode"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
SCT = "http://snomed.info/sct"
LNC = "http://loinc.org"
RXN = "http://www.nlm.nih.gov/research/umls/rxnorm"
AJCC = "http://cancerstaging.org"
V3_INT = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
AJCC8 = (
    "897275008",
    "American Joint Commission on Cancer, Cancer Staging Manual, 8th edition "
    "neoplasm staging system (tumor staging)",
)
# The evaluation date the tests use: the newest data is under 18 months old then.
AS_OF = date(2026, 1, 15)
START = date(2025, 2, 5)  # first-line THP in the metastatic setting, every 21 days
CYCLES = 12  # last dose 2025-09-24
LAST_DOSE = START + timedelta(days=21 * (CYCLES - 1))
THP = (("224905", "trastuzumab"), ("1298944", "pertuzumab"), ("72962", "docetaxel"))


def cc(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def profile(name: str) -> dict[str, Any]:
    return {"profile": [MCODE + name]}


def ref(rtype: str, rid: str) -> dict[str, str]:
    return {"reference": f"{rtype}/{rid}"}


def ext(name: str, concept: dict[str, Any]) -> dict[str, Any]:
    return {"url": MCODE + name, "valueCodeableConcept": concept}


def bundle(name: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": name,
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r} for r in resources
        ],
    }


def patient(pid: str, source: str, given: list[str], family: str, birth: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": profile("mcode-cancer-patient"),
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">from {source}</div>',
        },
        "identifier": [
            {
                "use": "usual",
                "type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "MR"),
                "system": "http://hospital.example.org",
                "value": f"MRN-{pid}",
            }
        ],
        "name": [{"family": family, "given": given}],
        "gender": "female",
        "birthDate": birth,
        "address": [
            {"line": ["123 Main St"], "city": "Anytown", "postalCode": "12345", "country": "US"}
        ],
    }


def obs(
    oid: str,
    prof: str,
    pid: str,
    code: dict[str, Any],
    when: date,
    category: str | None = None,
    **value: Any,
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "meta": profile(prof),
        "status": "final",
        "code": code,
        "subject": ref("Patient", pid),
        "effectiveDateTime": when.isoformat(),
    }
    if category:
        res["category"] = [cc(OBS_CAT, category)]
    res.update(value)
    return res


def condition(
    cid: str, prof: str, pid: str, code: dict[str, Any], onset: date, **more: Any
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "meta": profile(prof),
        "clinicalStatus": cc(CLIN, "active"),
        "verificationStatus": cc(VER, "confirmed"),
        "category": [cc(COND_CAT, "problem-list-item")],
        "code": code,
        "subject": ref("Patient", pid),
        "onsetDateTime": onset.isoformat(),
    }
    res.update(more)
    return res


def breast(pid: str, cid: str, onset: date, summary: dict[str, Any], **more: Any) -> dict[str, Any]:
    """PrimaryCancerCondition, as primary-cancer-condition-jenny-m writes it."""
    return condition(
        cid,
        "mcode-primary-cancer-condition",
        pid,
        cc(SCT, "353431000119107", "Primary malignant neoplasm of female left breast (disorder)"),
        onset,
        extension=[
            ext(
                "mcode-histology-morphology-behavior",
                cc(SCT, "82711006", "Infiltrating duct carcinoma (morphologic abnormality)"),
            )
        ],
        bodySite=[cc(SCT, "80248007", "Left breast structure (body structure)")],
        stage=[{"summary": summary, **more.pop("stage_more", {})}],
        **more,
    )


def cycles() -> list[date]:
    return [START + timedelta(days=21 * i) for i in range(CYCLES)]


def administrations(pid: str, prefix: str, intent: dict[str, Any] | None) -> list[dict[str, Any]]:
    """CancerRelatedMedicationAdministration, as cancer-related-medication-admin-paclitaxel-
    jenny-m writes it (one per drug per cycle)."""
    out = []
    for rx, name in THP:
        for i, day in enumerate(cycles()):
            res: dict[str, Any] = {
                "resourceType": "MedicationAdministration",
                "id": f"{prefix}-admin-{name}-{i + 1}",
                "meta": profile("mcode-cancer-related-medication-administration"),
                "status": "completed",
                "category": cc(
                    "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "outpatient"
                ),
                "medicationCodeableConcept": cc(RXN, rx, name),
                "subject": ref("Patient", pid),
                "reasonReference": [ref("Condition", f"{prefix}-primary-cancer-condition")],
                "effectiveDateTime": day.isoformat(),
                "dosage": {"route": cc(SCT, "47625008", "Intravenous route (qualifier value)")},
            }
            if intent is not None:
                res["extension"] = [intent]
            out.append(res)
    return out


def palliative(name: str) -> dict[str, Any]:
    return ext(name, cc(SCT, "363676003", "Palliative - procedure intent (qualifier value)"))


def curative(name: str) -> dict[str, Any]:
    return ext(name, cc(SCT, "373808002", "Curative - procedure intent (qualifier value)"))


NO_RESPONSE = cc(SCT, "266721009", "No response to treatment (situation)")


def request(
    pid: str,
    rid: str,
    drug: tuple[str, str],
    status: str,
    extensions: list[dict[str, Any]],
    **more: Any,
) -> dict[str, Any]:
    """CancerRelatedMedicationRequest, as cancer-related-medication-request-cisplatin-stopped
    writes it."""
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "meta": profile("mcode-cancer-related-medication-request"),
        "extension": extensions,
        "status": status,
        "intent": "order",
        "authoredOn": START.isoformat(),
        "medicationCodeableConcept": cc(RXN, drug[0], drug[1]),
        "subject": ref("Patient", pid),
        "reasonCode": [
            cc(
                SCT,
                "353431000119107",
                "Primary malignant neoplasm of female left breast (disorder)",
            )
        ],
        "dosageInstruction": [
            {
                "text": f"{drug[1]} every 21 days",
                "route": cc(SCT, "47625008", "Intravenous route (qualifier value)"),
                "timing": {
                    "repeat": {
                        "boundsPeriod": {"start": START.isoformat()},
                        "frequency": 1,
                        "period": 21,
                        "periodUnit": "d",
                    }
                },
            }
        ],
    }
    res.update(more)
    return res


def tnm(
    oid: str, pid: str, code: dict[str, Any], value: dict[str, Any], when: date, prof: str
) -> dict[str, Any]:
    return obs(
        oid, prof, pid, code, when, "imaging", valueCodeableConcept=value, method=cc(SCT, *AJCC8)
    )


DX = date(2025, 1, 15)  # de novo stage IV: diagnosis, staging and the secondary cancer
BIOPSY = date(2025, 1, 10)
ASSESSED = date(2025, 10, 10)  # disease status after the last cycle: worsened


def stu1() -> list[dict[str, Any]]:
    """STU1 (input/examples/*.json): cancerstaging.org stage and M values, 88040-1 disease
    status, the plain SNOMED tumour-marker value, MedicationStatements with
    mcode-treatment-intent and mcode-termination-reason."""
    pid = "mCODEPatientExample01"
    p = "stu1"
    out: list[dict[str, Any]] = [
        patient(
            pid, "STU1 Patient-mCODEPatientExample01", ["Eve", "B."], "Anyperson", "1961-01-20"
        ),
        breast(
            pid,
            f"{p}-primary-cancer-condition",
            DX,
            cc(AJCC, "4"),  # Condition-mCODEPrimaryCancerConditionExample01: AJCC "3C" there
            stage_more={"assessment": [ref("Observation", f"{p}-tnm-clinical-stage-group")]},
        ),
        condition(  # Condition-mCODESecondaryCancerConditionExample01 (brain there)
            f"{p}-secondary-cancer-condition",
            "mcode-secondary-cancer-condition",
            pid,
            cc(SCT, "94222008", "Secondary malignant neoplasm of bone"),
            DX,
            extension=[
                {
                    "url": MCODE + "mcode-related-primary-cancer-condition",
                    "valueReference": ref("Condition", f"{p}-primary-cancer-condition"),
                }
            ],
        ),
        tnm(  # Observation-mCODETNMClinicalStageGroupExample01 ("3C" there)
            f"{p}-tnm-clinical-stage-group",
            pid,
            cc(LNC, "21908-9"),
            cc(AJCC, "4"),
            DX,
            "mcode-tnm-clinical-stage-group",
        ),
        tnm(  # Observation-mCODETNMPathologicalStageGroupExample01 (21902-2, "3C" there)
            f"{p}-tnm-pathological-stage-group",
            pid,
            cc(LNC, "21902-2"),
            cc(AJCC, "4"),
            DX,
            "mcode-tnm-pathological-stage-group",
        ),
        tnm(  # Observation-mCODETNMClinicalDistantMetastasesCategoryExample01 (cM0 there)
            f"{p}-tnm-clinical-distant-metastases-category",
            pid,
            cc(LNC, "21907-1"),
            cc(AJCC, "cM1"),
            DX,
            "mcode-tnm-clinical-distant-metastases-category",
        ),
        obs(  # Observation-mCODETumorMarkerExample01 (39004-7 EGFR there)
            f"{p}-tumor-marker-her2",
            "mcode-tumor-marker",
            pid,
            cc(LNC, "48676-1", "HER2 [Interpretation] in Tissue"),
            BIOPSY,
            "laboratory",
            valueCodeableConcept=cc(SCT, "10828004"),
        ),
        obs(  # Observation-mCODECancerDiseaseStatusExample01 (268910001 improved there)
            f"{p}-cancer-disease-status",
            "mcode-cancer-disease-status",
            pid,
            cc(LNC, "88040-1"),
            ASSESSED,
            "laboratory",
            valueCodeableConcept=cc(SCT, "271299001"),
            extension=[ext("mcode-evidence-type", cc(SCT, "252416005"))],
        ),
    ]
    for rx, name in THP:  # MedicationStatement-mCODECancerRelatedMedicationStatementExample02
        out.append(
            {
                "resourceType": "MedicationStatement",
                "id": f"{p}-medication-statement-{name}",
                "meta": profile("mcode-cancer-related-medication-statement"),
                "extension": [
                    ext("mcode-treatment-intent", cc(SCT, "363676003")),
                    ext("mcode-termination-reason", cc(SCT, "58848006")),  # 182992009 there
                ],
                "status": "stopped",
                "category": cc(
                    "http://terminology.hl7.org/CodeSystem/medication-statement-category",
                    "community",
                ),
                "medicationCodeableConcept": cc(RXN, rx),
                "subject": ref("Patient", pid),
                "effectivePeriod": {"start": START.isoformat(), "end": LAST_DOSE.isoformat()},
                "dateAsserted": ASSESSED.isoformat(),
                "dosage": [
                    {
                        "text": f"{name} IV every 21 days",
                        "route": cc(SCT, "47625008"),
                    }
                ],
            }
        )
    return out


def stu2() -> list[dict[str, Any]]:
    """STU2 (EX_ExtendedExample.fsh, jenny-m): AJCC stage summary and CancerStageGroup 21908-9,
    TNM M 21907-1, 97509-4 disease status, HER2 IHC score as valueQuantity, orders with
    mcode-procedure-intent and mcode-treatment-termination-reason, and the administrations."""
    pid = "cancer-patient-jenny-m"
    p = "stu2"
    out: list[dict[str, Any]] = [
        patient(pid, "STU2 cancer-patient-jenny-m", ["Jenny"], "M", "1965-01-01"),
        breast(
            pid,
            f"{p}-primary-cancer-condition",
            DX,
            cc(AJCC, "4"),  # primary-cancer-condition-jenny-m: AJCC#3C there
            stage_more={"assessment": [ref("Observation", f"{p}-tnm-clinical-stage-group")]},
        ),
        tnm(  # tnm-clinical-stage-group-jenny-m (AJCC#2B there)
            f"{p}-tnm-clinical-stage-group",
            pid,
            cc(LNC, "21908-9", "Stage group.clinical Cancer"),
            cc(AJCC, "4", "IV"),
            DX,
            "mcode-cancer-stage-group",
        ),
        tnm(  # tnm-clinical-distant-metastases-category-jenny-m (AJCC#cM0 there)
            f"{p}-tnm-clinical-distant-metastases-category",
            pid,
            cc(LNC, "21907-1", "Distant metastases.clinical [Class] Cancer"),
            cc(AJCC, "cM1"),
            DX,
            "mcode-tnm-distant-metastases-category",
        ),
        obs(  # tumor-marker-test-her2-jenny-m, valued as the oncotype-dx instance's valueQuantity
            f"{p}-tumor-marker-test-her2",
            "mcode-tumor-marker-test",
            pid,
            cc(LNC, "85319-2", "HER2 [Presence] in Breast cancer specimen by Immune stain"),
            BIOPSY,
            "laboratory",
            valueQuantity={
                "value": 3,
                "unit": "score",
                "system": "http://unitsofmeasure.org",
                "code": "{score}",
            },
        ),
        obs(  # cancer-disease-status-jenny-m (268910001 improved there)
            f"{p}-cancer-disease-status",
            "mcode-cancer-disease-status",
            pid,
            cc(LNC, "97509-4", "Cancer Disease Progression"),
            ASSESSED,
            valueCodeableConcept=cc(SCT, "271299001", "Patient's condition worsened (finding)"),
            extension=[
                ext(
                    "mcode-cancer-disease-status-evidence-type",
                    cc(SCT, "363679005", "Imaging (procedure)"),
                )
            ],
            focus=[ref("Condition", f"{p}-primary-cancer-condition")],
        ),
    ]
    for drug in THP:  # cancer-related-medication-request-paclitaxel-jenny-m
        out.append(
            request(
                pid,
                f"{p}-medication-request-{drug[1]}",
                drug,
                "stopped",
                [
                    palliative("mcode-procedure-intent"),
                    ext("mcode-treatment-termination-reason", NO_RESPONSE),
                ],
                reasonReference=[ref("Condition", f"{p}-primary-cancer-condition")],
            )
        )
    out.extend(administrations(pid, p, palliative("mcode-procedure-intent")))
    return out


def stu3() -> list[dict[str, Any]]:
    """STU3 (EX_Basic.fsh, EX_Genomics.fsh): SNOMED-coded stage group and cM category,
    HistoryOfMetastaticCancer, HER2 as interpretation beside LA9633-4 "Present", orders stopped
    with statusReason and a stated end."""
    pid = "cancer-patient-eve-anyperson"
    p = "stu3"
    out: list[dict[str, Any]] = [
        patient(pid, "STU3 cancer-patient-eve-anyperson", ["Eve"], "Anyperson", "1965-03-06"),
        breast(  # primary-cancer-condition-nsclc (NSCLC, stage IIIC 1222806003 there)
            pid,
            f"{p}-primary-cancer-condition",
            DX,
            cc(SCT, "1222837003", "American Joint Committee on Cancer stage IV (qualifier value)"),
            stage_more={"assessment": [ref("Observation", f"{p}-tnm-clinical-stage-group")]},
        ),
        tnm(  # tnm-clinical-stage-group-3c (1222806003 there)
            f"{p}-tnm-clinical-stage-group",
            pid,
            cc(SCT, "399537006", "Clinical TNM stage grouping"),
            cc(SCT, "1222837003", "American Joint Committee on Cancer stage IV (qualifier value)"),
            DX,
            "mcode-tnm-stage-group",
        ),
        tnm(  # tnm-clinical-distant-metastases-category-cM0 (1229901006 cM0 there)
            f"{p}-tnm-clinical-distant-metastases-category",
            pid,
            cc(SCT, "399387003", "cM category"),
            cc(SCT, "1229903009", "American Joint Committee on Cancer cM1 (qualifier value)"),
            DX,
            "mcode-tnm-distant-metastases-category",
        ),
        obs(  # no-history-of-metastatic-cancer (valueBoolean false there)
            f"{p}-history-of-metastatic-cancer",
            "mcode-history-of-metastatic-cancer",
            pid,
            cc(SCT, "1287652008", "History of metastatic malignant neoplasm (situation)"),
            DX,
            "social-history",
            valueBoolean=True,
        ),
        obs(  # genomic-variant-somatic-single-nucleotide's value + interpretation shape
            f"{p}-tumor-marker-test-her2",
            "mcode-tumor-marker-test",
            pid,
            cc(LNC, "72383-3", "HER2 [Presence] in Tissue by Immunoassay"),
            BIOPSY,
            "laboratory",
            valueCodeableConcept=cc(LNC, "LA9633-4", "Present"),
            interpretation=[cc(SCT, "10828004", "Positive (qualifier value)")],
        ),
    ]
    for drug in THP:  # cancer-related-medication-request-cisplatin-stopped (not tolerated there)
        res = request(
            pid,
            f"{p}-medication-request-{drug[1]}",
            drug,
            "stopped",
            [palliative("mcode-procedure-intent")],
            statusReason=NO_RESPONSE,
            note=[{"text": "Stopped: progression on imaging."}],
        )
        res["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["end"] = (
            LAST_DOSE.isoformat()
        )
        out.append(res)
    return out


def stu4() -> list[dict[str, Any]]:
    """STU4 (EX_ExtendedExample.fsh jenny-m, EX_Basic.fsh): HER2-negative primary and a
    HER2-positive liver biopsy by FISH (interpretation beside LA9633-4) and ratio with
    interpretation: a conversion; stage summary and pathologic stage group 399588009 stage IV;
    HistoryOfMetastaticCancer to liver; disease status 399409002; administrations and orders
    stopped with statusReason no response and no stated end."""
    pid = "cancer-patient-jenny-m"
    p = "stu4"
    liver: dict[str, Any] = {
        "resourceType": "Specimen",
        "id": f"{p}-tumor-specimen-liver",
        "meta": profile("mcode-human-specimen"),
        "status": "available",
        "type": cc("http://terminology.hl7.org/CodeSystem/v2-0487", "TUMOR"),
        "subject": ref("Patient", pid),
        "receivedTime": BIOPSY.isoformat(),
        "collection": {"bodySite": cc(SCT, "10200004", "Liver structure (body structure)")},
    }
    primary: dict[str, Any] = {  # tumor-specimen-left-breast-jenny-m
        "resourceType": "Specimen",
        "id": f"{p}-tumor-specimen-left-breast",
        "meta": profile("mcode-human-specimen"),
        "status": "available",
        "type": cc("http://terminology.hl7.org/CodeSystem/v2-0487", "TUMOR"),
        "subject": ref("Patient", pid),
        "receivedTime": date(2024, 3, 1).isoformat(),
        "collection": {"bodySite": cc(SCT, "80248007", "Left breast structure (body structure)")},
    }
    out: list[dict[str, Any]] = [
        patient(pid, "STU4 cancer-patient-jenny-m", ["Jenny"], "M", "1965-01-01"),
        primary,
        liver,
        breast(  # primary-cancer-condition-jenny-m (1222806003 IIIC there)
            pid,
            f"{p}-primary-cancer-condition",
            DX,
            cc(SCT, "1222837003", "American Joint Committee on Cancer stage IV (qualifier value)"),
            stage_more={
                "assessment": [ref("Observation", f"{p}-tnm-pathologic-stage-group")],
                "type": cc(SCT, *AJCC8),
            },
        ),
        tnm(  # tnm-pathologic-stage-group-jenny-m (1222769001 IIB there)
            f"{p}-tnm-pathologic-stage-group",
            pid,
            cc(SCT, "399588009", "Pathologic TNM stage grouping"),
            cc(SCT, "1222837003", "American Joint Committee on Cancer stage IV (qualifier value)"),
            DX,
            "mcode-tnm-stage-group",
        ),
        obs(  # tumor-marker-test-her2-jenny-m, as the IG writes it: negative on the primary
            f"{p}-tumor-marker-test-her2-primary",
            "mcode-tumor-marker-test",
            pid,
            cc(LNC, "48676-1", "HER2 [Interpretation] in Tissue"),
            date(2024, 3, 1),
            valueCodeableConcept=cc(LNC, "LA6577-6", "Negative"),
            specimen=ref("Specimen", primary["id"]),
        ),
        obs(  # the GenomicVariant value + v3 interpretation shape, on the liver biopsy
            f"{p}-tumor-marker-test-her2-fish",
            "mcode-tumor-marker-test",
            pid,
            cc(LNC, "31150-6", "ERBB2 gene duplication [Presence] in Tissue by FISH"),
            BIOPSY,
            "laboratory",
            valueCodeableConcept=cc(LNC, "LA9633-4", "Present"),
            interpretation=[cc(V3_INT, "POS", "Positive")],
            specimen=ref("Specimen", liver["id"]),
        ),
        obs(  # the oncotype-dx instance's valueQuantity + interpretation shape
            f"{p}-tumor-marker-test-her2-ratio",
            "mcode-tumor-marker-test",
            pid,
            cc(
                LNC, "49683-6", "ERBB2 gene copy number/Chromosome 17 copy number in Tissue by FISH"
            ),
            BIOPSY,
            "laboratory",
            valueQuantity={
                "value": 2.8,
                "unit": "ratio",
                "system": "http://unitsofmeasure.org",
                "code": "{ratio}",
            },
            interpretation=[cc(SCT, "10828004", "Positive (qualifier value)")],
            specimen=ref("Specimen", liver["id"]),
        ),
        obs(  # history-of-cancer-metastatic-to-liver
            f"{p}-history-of-cancer-metastatic-to-liver",
            "mcode-history-of-metastatic-cancer",
            pid,
            cc(SCT, "1098951000119108", "History of cancer metastatic to liver (situation)"),
            DX,
            "social-history",
        ),
        obs(  # cancer-disease-status-jenny-m (268910001 improved there)
            f"{p}-cancer-disease-status",
            "mcode-cancer-disease-status",
            pid,
            cc(LNC, "97509-4", "Cancer Disease Progression"),
            DX,
            valueCodeableConcept=cc(SCT, "399409002", "Distant metastasis present (finding)"),
            extension=[
                ext(
                    "mcode-cancer-disease-status-evidence-type",
                    cc(SCT, "363679005", "Imaging (procedure)"),
                )
            ],
            focus=[ref("Condition", f"{p}-primary-cancer-condition")],
        ),
    ]
    for drug in THP:  # cancer-related-medication-request-cisplatin-stopped
        out.append(
            request(
                pid,
                f"{p}-medication-request-{drug[1]}",
                drug,
                "stopped",
                [palliative("mcode-procedure-intent")],
                statusReason=NO_RESPONSE,
            )
        )
    out.extend(administrations(pid, p, palliative("mcode-procedure-intent")))
    return out


def stu4_stage_iiic_curative() -> list[dict[str, Any]]:
    """The IG's own stage IIIC coding (primary-cancer-condition-nsclc, tnm-clinical-stage-
    group-3c, cM0) on a HER2-positive breast cancer treated with curative intent: not metastatic."""
    pid = "cancer-patient-john-anyperson"
    p = "iiic"
    iiic = cc(SCT, "1222806003", "American Joint Committee on Cancer stage IIIC (qualifier value)")
    out: list[dict[str, Any]] = [
        patient(
            pid,
            "STU4 cancer-patient-john-anyperson (female here)",
            ["Joan"],
            "Anyperson",
            "1960-06-01",
        ),
        breast(
            pid,
            f"{p}-primary-cancer-condition",
            DX,
            iiic,
            stage_more={"assessment": [ref("Observation", f"{p}-tnm-clinical-stage-group")]},
        ),
        tnm(  # coded as the IG does and as its commented alternative (LNC#21908-9)
            f"{p}-tnm-clinical-stage-group",
            pid,
            {
                "coding": [
                    {"system": SCT, "code": "399537006", "display": "Clinical TNM stage grouping"},
                    {"system": LNC, "code": "21908-9", "display": "Stage group.clinical Cancer"},
                ]
            },
            iiic,
            DX,
            "mcode-tnm-stage-group",
        ),
        tnm(
            f"{p}-tnm-clinical-distant-metastases-category",
            pid,
            cc(SCT, "399387003", "cM category"),
            cc(SCT, "1229901006", "American Joint Committee on Cancer cM0 (qualifier value)"),
            DX,
            "mcode-tnm-distant-metastases-category",
        ),
        obs(
            f"{p}-tumor-marker-test-her2",
            "mcode-tumor-marker-test",
            pid,
            cc(LNC, "48676-1", "HER2 [Interpretation] in Tissue"),
            BIOPSY,
            valueCodeableConcept=cc(LNC, "LA6576-8", "Positive"),
        ),
    ]
    for drug in THP:  # cancer-related-medication-request-gefitinib (curative, active)
        out.append(
            request(
                pid,
                f"{p}-medication-request-{drug[1]}",
                drug,
                "active",
                [curative("mcode-procedure-intent")],
            )
        )
    out.extend(administrations(pid, p, curative("mcode-procedure-intent"))[:4])
    return out


FIXTURES = {
    "mcode_stu1": stu1,
    "mcode_stu2": stu2,
    "mcode_stu3": stu3,
    "mcode_stu4": stu4,
    "mcode_stu4_stage_iiic_curative": stu4_stage_iiic_curative,
}


def build(name: str) -> dict[str, Any]:
    return bundle(name, FIXTURES[name]())


def main() -> None:
    for name in FIXTURES:
        text = json.dumps(build(name), indent=1, ensure_ascii=False) + "\n"
        (OUT / f"{name}.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
