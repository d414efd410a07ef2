"""The resource writer one journey's Bundle is built with: the patient's EHR coding style,
stable ids, full URLs, subject references and the collected entries.

Each patient gets one EHR "style" (statements, per-cycle orders, or per-dose administrations;
SNOMED, ICD-10 or both for problems; ingredient, product or brand text for drugs); the resource
builders (fhir_conditions, fhir_observations, fhir_medications) drift from it now and then.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from synthetic.journey import Journey, catalogue

_NS = uuid.UUID("0b7c3f52-41d6-4f0e-9a7d-5d1e3c2b8a90")


def pick(rng: random.Random, shares: dict[str, Any]) -> str:
    x, acc = rng.random(), 0.0
    for key, share in shares.items():
        acc += float(share)
        if x < acc:
            return str(key)
    return str(next(reversed(shares)))


class Renderer:
    """Writes one journey's resources; ids are stable ("<patient>-<kind><n>")."""

    def __init__(self, journey: Journey, rng: random.Random) -> None:
        self.j = journey
        self.rng = rng
        coding = catalogue()["coding"]
        self.coding = coding
        self.med_style = pick(rng, coding["medication_style"])
        self.med_code = pick(rng, coding["medication_code"])
        self.cond_style = pick(rng, coding["condition_code"])
        self.urn = rng.random() < float(coding["urn_uuid_references"])
        self.intent = rng.random() < float(coding["intent_extension"])
        self.entries: list[dict[str, Any]] = []
        self.counter = 0

    # -- plumbing -------------------------------------------------------------------------------
    def full_url(self, rtype: str, rid: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NS, f'{rtype}/{rid}')}"

    @property
    def subject(self) -> dict[str, str]:
        if self.urn:
            return {"reference": self.full_url("Patient", self.j.patient_id)}
        return {"reference": f"Patient/{self.j.patient_id}"}

    def add(self, resource: dict[str, Any], prefix: str) -> dict[str, Any]:
        self.counter += 1
        concept = resource.get("medicationCodeableConcept")
        if concept is not None and self.rng.random() < 0.1:
            # some EHRs point at a (contained) Medication instead of coding the drug inline
            del resource["medicationCodeableConcept"]
            resource["contained"] = [{"resourceType": "Medication", "id": "med", "code": concept}]
            resource["medicationReference"] = {"reference": "#med"}
        resource = {
            "resourceType": resource.pop("resourceType"),
            "id": f"{self.j.patient_id}-{prefix}{self.counter}",
            **resource,
        }
        self.entries.append(resource)
        return resource
