"""FHIR MedicationRequests that suggestions create: RxNorm-coded drafts with dose and schedule.

One MedicationRequest per dose phase: a loading dose is its own order of one dose; the
maintenance order starts one cycle later. Dose and timing are structured as well as said.
"""

from __future__ import annotations

from typing import Any

from engine.code_systems import RXNORM, UCUM
from engine.model import Component

_UNIT_WORDS = {"h": "hour", "d": "day", "wk": "week", "mo": "month"}


def _concept(component: Component) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": component.drug}
    if component.rxnorm:
        coding = {"system": RXNORM, "code": component.rxnorm}
        # a product code standing in for an unverified ingredient code carries no display of
        # ours (it is not the RxNorm name); the request's note says what the code is
        concept["coding"] = [
            coding if component.rxnorm_note else {**coding, "display": component.drug}
        ]
    return concept


def _dose(value: float | None, unit: str | None) -> list[dict[str, Any]]:
    if value is None or not unit:
        return []
    return [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}]


def _repeat(component: Component) -> dict[str, Any]:
    repeat: dict[str, Any] = {}
    if component.frequency and component.period and component.period_unit:
        repeat = {
            "frequency": component.frequency,
            "period": component.period,
            "periodUnit": component.period_unit,
        }
    if component.days_on and component.cycle_days:
        # days 1..days_on of each cycle: bounded within the cycle, the cycle said in the text
        repeat["boundsDuration"] = {
            "value": component.days_on,
            "unit": "day",
            "system": UCUM,
            "code": "d",
        }
    return repeat


def _cycle(component: Component) -> str:
    if component.period and component.period_unit:
        word = _UNIT_WORDS.get(component.period_unit, component.period_unit)
        return f"{component.period:g} {word}{'s' if component.period != 1 else ''}"
    return "one cycle"


def _request(
    component: Component,
    patient_id: str,
    intent: str,
    *,
    text: str,
    dose: list[dict[str, Any]],
    timing: dict[str, Any],
    sequence: int | None = None,
) -> dict[str, Any]:
    dosage: dict[str, Any] = {"text": text, "route": {"text": component.route}}
    if sequence is not None:
        dosage["sequence"] = sequence
    if timing:
        dosage["timing"] = timing
    if dose:
        dosage["doseAndRate"] = dose
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": intent,
        "subject": {"reference": f"Patient/{patient_id}"},
        "medicationCodeableConcept": _concept(component),
        "dosageInstruction": [dosage],
    }
    if component.rxnorm_note:
        resource["note"] = [{"text": f"Medication code: {component.rxnorm_note}"}]
    return resource


def medication_requests(
    component: Component, patient_id: str, intent: str = "proposal"
) -> list[dict[str, Any]]:
    """Draft MedicationRequests for one regimen component (no id: the EHR assigns it): the
    loading dose (when it differs) and the maintenance order.

    Next-line suggestions are proposals; an order-check fix replaces an order, so it is an order.
    """
    unit = component.dose_unit or ""
    repeat = _repeat(component)
    schedule = {"repeat": repeat, "code": {"text": component.schedule}} if repeat else {}
    if component.loading_dose_value is None:
        text = f"{component.drug} {component.dose} {component.route} {component.schedule}"
        dose = _dose(component.dose_value, component.dose_unit)
        return [_request(component, patient_id, intent, text=text, dose=dose, timing=schedule)]
    loading = _request(
        component,
        patient_id,
        intent,
        text=(
            f"{component.drug} {component.loading_dose_value:g} {unit} {component.route}, "
            "loading dose: one dose, cycle 1 day 1"
        ),
        dose=_dose(component.loading_dose_value, component.dose_unit),
        timing={"repeat": {"count": 1}, "code": {"text": "once (loading dose)"}},
        sequence=1,
    )
    maintenance = _request(
        component,
        patient_id,
        intent,
        text=(
            f"{component.drug} {component.dose_value:g} {unit} {component.route} "
            f"{component.schedule}, starting cycle 2 ({_cycle(component)} after the loading dose)"
        ),
        dose=_dose(component.dose_value, component.dose_unit),
        timing=schedule,
        sequence=2,
    )
    return [loading, maintenance]


def create_actions(
    component: Component, patient_id: str, intent: str = "proposal", verb: str = "Propose"
) -> list[dict[str, Any]]:
    """CDS Hooks create actions, one per dose phase of the component."""
    return [
        {
            "type": "create",
            "description": f"{verb} {r['dosageInstruction'][0]['text']}",
            "resource": r,
        }
        for r in medication_requests(component, patient_id, intent)
    ]
