"""Draft orders (order-select / order-sign context) to DraftOrder objects the engine checks."""

from __future__ import annotations

from typing import Any

from engine.code_systems import RXNORM, SNOMED
from engine.knowledge import Knowledge, load_knowledge
from engine.model import DraftOrder
from fhir_mappers.dose_text import canonical_unit, read_doses
from fhir_mappers.medication_drugs import medication_concept, medication_reference
from fhir_mappers.resources import (
    ResourceSet,
    as_list,
    concept_text,
    iter_resources,
    ref_id,
    repair,
)
from fhir_mappers.terminology import (
    Terminology,
    canonical_system,
    load_terminology,
)

_ORDER_TYPES = frozenset({"MedicationRequest", "MedicationOrder"})


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dose(resource: dict[str, Any]) -> tuple[float | None, str | None]:
    for dosage in as_list(resource.get("dosageInstruction")):
        if not isinstance(dosage, dict):
            continue
        for dr in as_list(dosage.get("doseAndRate")):
            q = (dr or {}).get("doseQuantity") if isinstance(dr, dict) else None
            if isinstance(q, dict) and _number(q.get("value")):
                return float(q["value"]), str(q.get("unit") or q.get("code") or "")
        q = dosage.get("doseQuantity")  # STU3 shape
        if isinstance(q, dict) and _number(q.get("value")):
            return float(q["value"]), str(q.get("unit") or q.get("code") or "")
    return None, None


# a medication's name carries its strength ("Enhertu 100 MG Injection"): only a dose per body
# weight or surface written there is a dose ("Enhertu 6.4 mg/kg")
_PER_BODY = frozenset({"mg/kg", "mg/m2"})


def _texts(resource: dict[str, Any], concept: Any) -> list[tuple[str, str, frozenset[str] | None]]:
    """(where, text, units read there): the dosage texts, then the medication's text and names."""
    out: list[tuple[str, str, frozenset[str] | None]] = []
    for dosage in as_list(resource.get("dosageInstruction")):
        if isinstance(dosage, dict):
            for key in ("text", "patientInstruction"):
                if isinstance(dosage.get(key), str):
                    out.append(("the dosage text", dosage[key], None))
    if isinstance(concept, dict):
        names = [concept.get("text")] + [
            c.get("display") for c in as_list(concept.get("coding")) if isinstance(c, dict)
        ]
        out += [("the medication text", n, _PER_BODY) for n in names if isinstance(n, str)]
    return out


def _order_dose(
    resource: dict[str, Any], concept: Any
) -> tuple[float | None, str | None, str, str]:
    """(value, unit, where it was read, why it could not be): doseQuantity first, then text."""
    value, unit = _dose(resource)
    if value is not None:
        return value, canonical_unit(unit or ""), "doseQuantity", ""
    for where, text, units in _texts(resource, concept):
        doses = read_doses(text, units)
        if len(doses) == 1:
            return doses[0].value, doses[0].unit, where, ""
        if doses:
            named = ", ".join(f"{d.value:g} {d.unit}" for d in doses)
            return None, None, where, f"{where} names several doses ({named})"
    return None, None, "", ""


def draft_orders(
    draft_bundle: Any,
    selections: list[str] | None = None,
    *,
    knowledge: Knowledge | None = None,
    terminology: Terminology | None = None,
) -> list[DraftOrder]:
    """Read medication orders from a draftOrders Bundle; `selections` marks the selected ones."""
    kb = knowledge or load_knowledge()
    term = terminology or load_terminology()
    resources = [repair(r) for r in iter_resources(draft_bundle)]
    rs = ResourceSet()
    for r in resources:
        rs.add(r)
    selected = set(selections or [])
    out: list[DraftOrder] = []
    for res in resources:
        if res.get("resourceType") not in _ORDER_TYPES:
            continue
        concept = medication_concept(res, rs) or res.get("medicationCodeableConcept")
        code_match = None
        text_match = None
        if isinstance(concept, dict):
            coded = {
                "coding": [
                    c
                    for c in as_list(concept.get("coding"))
                    if isinstance(c, dict) and canonical_system(c.get("system")) in (RXNORM, SNOMED)
                ]
            }
            code_match = term.match_medication(coded) if coded["coding"] else None
            text = concept.get("text")
            if isinstance(text, str) and text.strip():
                text_match = term.match_medication_text(text)
        drugs = code_match.drugs if code_match else (text_match or ())
        drug = next((d for d in drugs if kb.drug(d) is not None), None)
        info = kb.drug(drug) if drug else None
        text_drug = None
        if code_match and text_match and set(code_match.drugs) != set(text_match):
            text_drug = next(iter(text_match))
        value, unit, dose_from, dose_problem = _order_dose(res, concept)
        rid = ref_id(res)
        unidentified = "" if concept is not None else _unresolved_reference(res)
        out.append(
            DraftOrder(
                resource_id=rid,
                drug=drug,
                drug_class=info.drug_class if info else None,
                text=concept_text(concept) if isinstance(concept, dict) else "",
                text_drug=text_drug,
                dose_value=value,
                dose_unit=unit,
                dose_from=dose_from,
                dose_problem=dose_problem,
                status=str(res.get("status", "draft")),
                selected=not selected or rid in selected,
                resource=res,
                unidentified=unidentified,
            )
        )
    return out


def _unresolved_reference(resource: dict[str, Any]) -> str:
    """The reason an order's drug cannot be read when it points at a Medication we do not have."""
    ref = medication_reference(resource)
    if ref is not None and isinstance(ref.get("reference"), str):
        return f"{ref['reference']} is not included in the request"
    return ""
