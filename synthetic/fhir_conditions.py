"""Patient and Condition resources: the cancer, the HER2 diagnosis, metastatic sites,
toxicities and comorbidities, coded SNOMED, ICD-10-CM or both."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.code_systems import ICD10_CM, SNOMED
from synthetic.fhir_codes import CONDITIONS, cc
from synthetic.fhir_writer import Renderer


def patient(r: Renderer) -> None:
    j = r.j
    r.entries.append(
        {
            "resourceType": "Patient",
            "id": j.patient_id,
            "identifier": [{"system": "urn:her2cds:synthetic", "value": j.patient_id}],
            "name": [{"family": j.name[1], "given": [j.name[0]]}],
            "gender": j.sex,
            "birthDate": j.birth_date.isoformat(),
            **_deceased(r),
        }
    )


def _deceased(r: Renderer) -> dict[str, Any]:
    j = r.j
    if j.deceased == "boolean":
        return {"deceasedBoolean": True}
    if j.deceased == "datetime" and j.deceased_date is not None:
        return {"deceasedDateTime": j.deceased_date.isoformat()}
    return {}


def text_condition(r: Renderer, text: str, onset: date) -> None:
    """A free-text problem entry (no code, no verificationStatus): only its words say what it
    is, here a negated or uncertain mention (CLINICAL.md section 1)."""
    r.add(
        {
            "resourceType": "Condition",
            "clinicalStatus": cc(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"
            ),
            "category": [
                cc(
                    "http://terminology.hl7.org/CodeSystem/condition-category",
                    "problem-list-item",
                    "Problem List Item",
                )
            ],
            "code": {"text": text},
            "subject": r.subject,
            "onsetDateTime": onset.isoformat(),
            "recordedDate": onset.isoformat(),
        },
        "cond",
    )


def condition(
    r: Renderer,
    key: str,
    onset: date,
    status: str = "active",
    verification: str = "confirmed",
    style: str | None = None,
) -> None:
    snomed, s_disp, icd, i_disp = CONDITIONS[key]
    style = style or r.cond_style
    if r.rng.random() < 0.1:
        style = r.rng.choice(["snomed", "icd10", "both"])
    if snomed is None:
        style = "icd10"
    if icd is None:
        style = "snomed"
    codings = []
    if style in ("snomed", "both") and snomed:
        codings.append({"system": SNOMED, "code": snomed, "display": s_disp})
    if style in ("icd10", "both") and icd:
        codings.append({"system": ICD10_CM, "code": icd, "display": i_disp})
    text = s_disp if style != "icd10" else i_disp
    if key == "lymph-node":
        text = "Secondary malignant neoplasm of axillary lymph nodes"
    r.add(
        {
            "resourceType": "Condition",
            "clinicalStatus": cc(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", status
            ),
            "verificationStatus": cc(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status", verification
            ),
            "category": [
                cc(
                    "http://terminology.hl7.org/CodeSystem/condition-category",
                    "problem-list-item",
                    "Problem List Item",
                )
            ],
            "code": {"coding": codings, "text": text},
            "subject": r.subject,
            "onsetDateTime": onset.isoformat(),
            "recordedDate": onset.isoformat(),
        },
        "cond",
    )


def conditions(r: Renderer) -> None:
    j = r.j
    if j.cancer == "breast" and j.diagnosis is not None:
        if j.her2_condition and r.rng.random() < 0.5:
            condition(r, f"her2-{j.her2_condition}", j.her2_condition_date or j.diagnosis)
        else:
            condition(r, "breast-male" if j.sex == "male" else "breast", j.diagnosis)
            if j.her2_condition:
                condition(
                    r,
                    f"her2-{j.her2_condition}",
                    j.her2_condition_date or j.diagnosis,
                    style="snomed",
                )
    elif j.diagnosis is not None:
        condition(r, {"lung": "lung-cancer"}.get(j.cancer, j.cancer), j.diagnosis)
    for site in j.sites:
        condition(r, site.kind, site.onset, site.status, site.verification)
    for ev in j.events:
        if ev.text:
            text_condition(r, ev.text, ev.onset)
        elif ev.kind in CONDITIONS:  # other events are Observations (hcg-positive)
            condition(r, ev.kind, ev.onset, ev.status, ev.verification)
