"""FHIR MedicationRequests that suggestions create: RxNorm-coded drafts with dose and schedule."""

from __future__ import annotations

from typing import Any

from engine.model import Component

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def medication_request(
    component: Component, patient_id: str, intent: str = "proposal"
) -> dict[str, Any]:
    """A draft MedicationRequest for one regimen component (no id: the EHR assigns it).

    Next-line suggestions are proposals; an order-check fix replaces an order, so it is an order.
    """
    concept: dict[str, Any] = {"text": component.drug}
    if component.rxnorm:
        concept["coding"] = [
            {"system": RXNORM, "code": component.rxnorm, "display": component.drug}
        ]
    dosage: dict[str, Any] = {
        "text": f"{component.dose} {component.route} {component.schedule}",
        "route": {"text": component.route},
    }
    if component.dose_value is not None and component.dose_unit:
        dosage["doseAndRate"] = [
            {
                "doseQuantity": {
                    "value": component.dose_value,
                    "unit": component.dose_unit,
                    "system": "http://unitsofmeasure.org",
                    "code": component.dose_unit,
                }
            }
        ]
    return {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": intent,
        "subject": {"reference": f"Patient/{patient_id}"},
        "medicationCodeableConcept": concept,
        "dosageInstruction": [dosage],
    }
