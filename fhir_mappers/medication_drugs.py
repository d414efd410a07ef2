"""Which drug a medication resource names: its CodeableConcept (R4 medicationCodeableConcept,
R5 medication.concept), else the Medication it references (contained, in the bundle) or that
Medication's ingredients. Read only: the resources are never copied or changed.
"""

from __future__ import annotations

from typing import Any

from fhir_mappers.resources import ResourceSet, as_list
from fhir_mappers.terminology import Terminology


def medication_reference(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The Reference to a Medication (R4 medicationReference, R5 medication.reference), as sent:
    read only, never copied."""
    med = resource.get("medication")
    if isinstance(med, dict):
        ref = med.get("reference")
        if isinstance(ref, dict):
            return ref
    ref = resource.get("medicationReference")
    return ref if isinstance(ref, dict) else None


def referenced_medication(resource: dict[str, Any], rs: ResourceSet) -> dict[str, Any] | None:
    """The Medication a resource points to: contained ("#id"), in the bundle, or None."""
    ref = medication_reference(resource)
    target = ref.get("reference") if ref else None
    if not isinstance(target, str):
        return None
    if target.startswith("#"):
        for c in as_list(resource.get("contained")):
            if isinstance(c, dict) and c.get("id") == target[1:]:
                return c
        return None
    if target.startswith("urn:uuid:"):
        return rs.medications.get(target)
    return rs.medications.get("Medication/" + target.rsplit("Medication/", 1)[-1])


def medication_concept(resource: dict[str, Any], rs: ResourceSet) -> dict[str, Any] | None:
    """The CodeableConcept naming the drug: R4 codeable concept or reference, or R5 shape
    (the resource's own object, read only)."""
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept
    med = resource.get("medication")
    if isinstance(med, dict):
        concept = med.get("concept")
        if isinstance(concept, dict):
            return concept
    found = referenced_medication(resource, rs)
    if found:
        code = found.get("code")
        if isinstance(code, dict):
            return code
    ref = medication_reference(resource)
    if ref and isinstance(ref.get("display"), str):
        return {"text": ref["display"]}
    return None


def ingredient_concepts(medication: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A Medication's ingredients (R4 itemCodeableConcept, R5 item.concept)."""
    out: list[dict[str, Any]] = []
    for ing in as_list((medication or {}).get("ingredient")):
        if not isinstance(ing, dict):
            continue
        item = ing.get("itemCodeableConcept")
        if not isinstance(item, dict) and isinstance(ing.get("item"), dict):
            item = ing["item"].get("concept")
        if isinstance(item, dict):
            out.append(item)
    return out


def match_drugs(
    res: dict[str, Any], rs: ResourceSet, term: Terminology
) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """(concept, drugs): the drugs a resource names, from its code or its Medication's
    ingredients (a compounded or multi-ingredient Medication without a product code)."""
    concept = medication_concept(res, rs)
    match = term.match_medication(concept) if concept else None
    if match is not None:
        return concept, match.drugs
    if (
        medication_reference(res) is None
    ):  # no Medication, so no ingredients (most unmatched resources)
        return concept, ()
    drugs: list[str] = []
    for item in ingredient_concepts(referenced_medication(res, rs)):
        found = term.match_medication(item)
        if found:
            drugs.extend(d for d in found.drugs if d not in drugs)
    if drugs and concept is None:
        concept = {"text": " + ".join(drugs)}
    return concept, tuple(drugs)


def unnamed_reason(res: dict[str, Any]) -> str:
    """Why no drug could be read from a medication resource (said as a data issue)."""
    ref = medication_reference(res)
    if ref is not None and ref.get("reference"):
        return f"medication reference {ref['reference']} not found in the data: drug unknown"
    return "medication names no drug (no code, text or Medication reference)"
