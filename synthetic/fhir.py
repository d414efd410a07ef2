"""Render a journey as one FHIR R4 Bundle, coded the way real EHRs code it.

Each patient gets one EHR "style" (statements, per-cycle orders, or per-dose administrations;
SNOMED, ICD-10 or both for problems; ingredient, product or brand text for drugs) and each
resource drifts from it now and then. Codes come from fhir_mappers/terminology/*.yaml and
CLINICAL.md; the rendering never changes what happened, only how it is written down. The
resource builders live in fhir_conditions, fhir_observations and fhir_medications, the writer
they share in fhir_writer and the codes in fhir_codes.
"""

from __future__ import annotations

import random
from typing import Any

from synthetic.fhir_conditions import conditions, patient
from synthetic.fhir_medications import medications
from synthetic.fhir_observations import (
    assessments,
    her2_tests,
    lvef,
    pregnancy_tests,
    receptors,
    staging,
)
from synthetic.fhir_writer import Renderer
from synthetic.journey import Journey


def render(journey: Journey, seed: int) -> dict[str, Any]:
    """The Bundle for one journey (rendering draws from its own stream: same seed, same bytes)."""
    rng = random.Random(f"her2-cds-render:{seed}:{journey.index}")
    r = Renderer(journey, rng)
    patient(r)
    conditions(r)
    her2_tests(r)
    receptors(r)
    staging(r)
    assessments(r)
    lvef(r)
    pregnancy_tests(r)
    medications(r)
    entries = []
    for res in r.entries:
        entries.append({"fullUrl": r.full_url(res["resourceType"], res["id"]), "resource": res})
    return {
        "resourceType": "Bundle",
        "id": journey.patient_id,
        "meta": {
            "tag": [
                {
                    "system": "urn:her2cds:synthetic",
                    "code": "synthetic",
                    "display": "Synthetic patient (her2-cds synth)",
                }
            ]
        },
        "type": "collection",
        "timestamp": f"{journey.as_of.isoformat()}T00:00:00Z",
        "entry": entries,
    }
