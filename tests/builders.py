"""Small builders for real FHIR R4 resources, so tests read like the clinical story they tell."""

from __future__ import annotations

import itertools
from typing import Any

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def patient(pid: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1968-05-01"}


def condition(
    code: str,
    display: str = "",
    onset: str = "2020-01-01",
    *,
    system: str = SNOMED,
    pid: str = "p1",
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    rid: str | None = None,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid or _id("cond"),
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": onset,
    }
    if clinical:
        r["clinicalStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical,
                }
            ]
        }
    if verification:
        r["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        }
    return r


def breast_cancer(onset: str = "2020-01-01", pid: str = "p1") -> dict[str, Any]:
    return condition("254837009", "Malignant neoplasm of breast", onset, pid=pid)


def metastasis(
    site_code: str = "94381002",
    onset: str = "2021-01-01",
    pid: str = "p1",
    display: str = "Secondary malignant neoplasm of liver",
) -> dict[str, Any]:
    return condition(site_code, display, onset, pid=pid)


def ild(onset: str = "2020-06-01", pid: str = "p1") -> dict[str, Any]:
    return condition("233703007", "Interstitial lung disease", onset, pid=pid)


def observation(
    loinc: str,
    *,
    when: str,
    value_code: str | None = None,
    value_system: str = SNOMED,
    value_display: str = "",
    quantity: float | None = None,
    unit: str = "%",
    pid: str = "p1",
    rid: str | None = None,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid or _id("obs"),
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
    }
    if value_code is not None:
        r["valueCodeableConcept"] = {
            "coding": [{"system": value_system, "code": value_code, "display": value_display}],
            "text": value_display,
        }
    if quantity is not None:
        r["valueQuantity"] = {
            "value": quantity,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        }
    return r


def her2(positive: bool = True, when: str = "2020-01-10", pid: str = "p1") -> dict[str, Any]:
    code, disp = ("10828004", "Positive") if positive else ("260385009", "Negative")
    return observation("48676-1", when=when, value_code=code, value_display=disp, pid=pid)


def er(positive: bool = False, when: str = "2020-01-10", pid: str = "p1") -> dict[str, Any]:
    code, disp = ("10828004", "Positive") if positive else ("260385009", "Negative")
    return observation("16112-5", when=when, value_code=code, value_display=disp, pid=pid)


def progression(when: str, pid: str = "p1") -> dict[str, Any]:
    return observation(
        "97509-4",
        when=when,
        value_code="271299001",
        value_display="Patient's condition worsened",
        pid=pid,
    )


def lvef(value: float, when: str, pid: str = "p1") -> dict[str, Any]:
    return observation("10230-1", when=when, quantity=value, pid=pid)


def _concept(rxnorm: str | None, text: str) -> dict[str, Any]:
    c: dict[str, Any] = {"text": text}
    if rxnorm:
        c["coding"] = [{"system": RXNORM, "code": rxnorm, "display": text}]
    return c


def statement(
    rxnorm: str | None,
    text: str,
    start: str,
    end: str | None = None,
    *,
    status: str | None = None,
    pid: str = "p1",
    rid: str | None = None,
) -> dict[str, Any]:
    period = {"start": start, **({"end": end} if end else {})}
    return {
        "resourceType": "MedicationStatement",
        "id": rid or _id("ms"),
        "status": status or ("completed" if end else "active"),
        "medicationCodeableConcept": _concept(rxnorm, text),
        "subject": {"reference": f"Patient/{pid}"},
        "effectivePeriod": period,
    }


def request(
    rxnorm: str | None,
    text: str,
    authored: str,
    *,
    status: str = "completed",
    intent: str = "order",
    pid: str = "p1",
    rid: str | None = None,
    dose: tuple[float, str] | None = None,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid or _id("mr"),
        "status": status,
        "intent": intent,
        "medicationCodeableConcept": _concept(rxnorm, text),
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
    }
    if dose:
        r["dosageInstruction"] = [
            {
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": dose[0],
                            "unit": dose[1],
                            "system": "http://unitsofmeasure.org",
                            "code": dose[1],
                        }
                    }
                ]
            }
        ]
    return r


def administration(rxnorm: str | None, text: str, when: str, *, pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration",
        "id": _id("ma"),
        "status": "completed",
        "medicationCodeableConcept": _concept(rxnorm, text),
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
    }


def bundle(*resources: dict[str, Any], btype: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": btype, "entry": [{"resource": r} for r in resources]}


def thp(start: str, end: str | None, pid: str = "p1") -> list[dict[str, Any]]:
    return [
        statement("1298944", "pertuzumab", start, end, pid=pid),
        statement("224905", "trastuzumab", start, end, pid=pid),
        statement("72962", "docetaxel", start, end, pid=pid),
    ]


# ---------------------------------------------------------------------------------------------
# Richer shapes for the mapper tests: codings, R5, references, intent, stop reasons
# ---------------------------------------------------------------------------------------------

ATC = "http://www.whocc.no/atc"
CURATIVE = "373808002"
PALLIATIVE = "363676003"
INTENT_STU1 = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-treatment-intent"
INTENT_STU2 = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-procedure-intent"
NO_RESPONSE = "266721009"


def coded(system: str | None, code: str | None, text: str = "") -> dict[str, Any]:
    """A CodeableConcept with one coding (or text only when system/code is None)."""
    c: dict[str, Any] = {}
    if code is not None and system is not None:
        c["coding"] = [{"system": system, "code": code, **({"display": text} if text else {})}]
    if text:
        c["text"] = text
    return c


def intent(code: str, url: str = INTENT_STU2) -> dict[str, Any]:
    return {"url": url, "valueCodeableConcept": coded(SNOMED, code)}


def med_resource(
    rtype: str,
    concept: dict[str, Any] | None,
    start: str,
    end: str | None = None,
    *,
    status: str | None = None,
    shape: str = "r4",
    reference: str | None = None,
    contained: dict[str, Any] | None = None,
    extension: list[dict[str, Any]] | None = None,
    status_reason: dict[str, Any] | None = None,
    intent_: str = "order",
    rid: str | None = None,
    pid: str = "p1",
) -> dict[str, Any]:
    """A MedicationStatement / MedicationRequest / MedicationAdministration in R4 or R5 shape.

    `concept` names the drug inline; `reference` points to a Medication instead ("#id" for a
    contained one, "Medication/id" or "urn:uuid:id" for one in the bundle).
    """
    r: dict[str, Any] = {
        "resourceType": rtype,
        "id": rid or _id(rtype[:2].lower() + rtype[10:12].lower()),
        "subject": {"reference": f"Patient/{pid}"},
    }
    if shape == "r5":
        r["medication"] = (
            {"reference": {"reference": reference}} if reference else {"concept": concept}
        )
    elif reference:
        r["medicationReference"] = {"reference": reference}
    else:
        r["medicationCodeableConcept"] = concept
    if contained:
        r["contained"] = [contained]
    if extension:
        r["extension"] = extension
    if rtype == "MedicationStatement":
        r["status"] = status or ("completed" if end else "active")
        if shape == "r5":
            r["status"] = status or "recorded"
        r["effectivePeriod"] = {"start": start, **({"end": end} if end else {})}
        if status_reason:
            r["statusReason"] = [status_reason]
    elif rtype == "MedicationRequest":
        r["status"] = status or "completed"
        r["intent"] = intent_
        r["authoredOn"] = start
        if end:
            r["dosageInstruction"] = [
                {"timing": {"repeat": {"boundsPeriod": {"start": start, "end": end}}}}
            ]
        if status_reason:
            r["statusReason"] = status_reason
    else:
        r["status"] = status or "completed"
        key = "occurence" if shape == "r5" else "effective"
        if end:
            r[f"{key}Period"] = {"start": start, "end": end}
        else:
            r[f"{key}DateTime"] = start
        if status_reason:
            r["statusReason"] = [status_reason]
    return r


def medication(rid: str, concept: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Medication", "id": rid, "code": concept}


def cycles(
    rxnorm: str | None, text: str, first: str, n: int, every_days: int = 21, **kw: Any
) -> list[dict[str, Any]]:
    """One MedicationRequest per cycle (as Synthea and many EHRs record chemotherapy)."""
    from datetime import date, timedelta

    d0 = date.fromisoformat(first)
    return [
        request(rxnorm, text, (d0 + timedelta(days=i * every_days)).isoformat(), **kw)
        for i in range(n)
    ]


def doses(
    rxnorm: str | None, text: str, first: str, n: int, every_days: int = 21
) -> list[dict[str, Any]]:
    """One MedicationAdministration per dose."""
    from datetime import date, timedelta

    d0 = date.fromisoformat(first)
    return [
        administration(rxnorm, text, (d0 + timedelta(days=i * every_days)).isoformat())
        for i in range(n)
    ]
