"""The CDS services this server offers (discovery) and their prefetch templates."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.code_systems import LOINC
from fhir_mappers.terminology import load_terminology

PATIENT = "{{context.patientId}}"


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    usage: str

    def definition(self, knowledge_version: str) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "usageRequirements": self.usage,
            "prefetch": prefetch_templates(),
            "extension": {"org.her2cds": {"knowledgeVersion": knowledge_version}},
        }


def observation_codes() -> list[str]:
    """LOINC codes of every Observation the engine reads (receptors, LVEF, staging, status)."""
    spec = load_terminology().observations["observations"]
    codes: list[str] = []
    for key in (
        "her2",
        "er",
        "pr",
        "lvef",
        "distant_metastasis",
        "stage_group",
        "disease_status",
        "pregnancy",
    ):
        value = spec[key]
        codes.extend(value.keys() if isinstance(value, dict) else value)
    return sorted(set(codes))


@lru_cache(maxsize=1)
def prefetch_templates() -> dict[str, str]:
    """Templates with 2.0 tokens only. Observations are filtered by LOINC code; medications and
    Conditions are not, so that records coded only by text (or by codes no table knows yet) are
    never silently left out."""
    obs_codes = ",".join(f"{LOINC}|{c}" for c in observation_codes())
    return {
        "patient": f"Patient/{PATIENT}",
        "conditions": f"Condition?patient={PATIENT}",
        "medicationStatements": f"MedicationStatement?patient={PATIENT}",
        "medicationRequests": f"MedicationRequest?patient={PATIENT}",
        "medicationAdministrations": f"MedicationAdministration?patient={PATIENT}",
        "observations": f"Observation?patient={PATIENT}&code={obs_codes}",
        # the tested specimen (primary tumour or metastasis) that a receptor Observation names:
        # without it a HER2 conversion on a metastasis is invisible to the hooks
        "specimens": f"Specimen?patient={PATIENT}",
    }


_USAGE = (
    "Adult patients with breast cancer. Needs Conditions, medication history "
    "(MedicationStatement/Request/Administration) and receptor, staging, disease-status and LVEF "
    "Observations, as prefetch or through fhirServer with fhirAuthorization."
)

SERVICES: tuple[Service, ...] = (
    Service(
        id="her2-next-line",
        hook="patient-view",
        title="HER2+ metastatic breast cancer: next line of therapy",
        description=(
            "Reconstructs the lines of therapy of a patient with HER2-positive metastatic breast "
            "cancer, recommends the guideline next line with its evidence, and warns about "
            "T-DXd with interstitial lung disease, cardiac function, anthracyclines with "
            "trastuzumab, and stopped HER2 blockade."
        ),
        usage=_USAGE,
    ),
    Service(
        id="her2-order-select",
        hook="order-select",
        title="HER2+ metastatic breast cancer: order check",
        description=(
            "Checks the selected medication orders against the patient's HER2 picture (ILD with "
            "T-DXd, doses, anthracyclines with trastuzumab, product mix-ups, cardiac function) "
            "and suggests a corrected order."
        ),
        usage=_USAGE,
    ),
    Service(
        id="her2-order-sign",
        hook="order-sign",
        title="HER2+ metastatic breast cancer: order-sign safety check",
        description=(
            "Checks all medication orders being signed against the patient's HER2 picture and "
            "flags critical problems before signature, with a one-click fix."
        ),
        usage=_USAGE,
    ),
)

BY_ID = {s.id: s for s in SERVICES}
