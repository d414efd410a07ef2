"""What an export asks for: only the resource types and Observation codes the engine reads.

Both come from the mappers' own tables (fhir_mappers/resources.py, terminology/observations.yaml),
so a code added there is exported without a change here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fhir_mappers.resources import RELEVANT_TYPES
from fhir_mappers.terminology import load_terminology

NDJSON = "application/fhir+ndjson"


def export_types() -> list[str]:
    """The resource types the mappers pick from a record."""
    return sorted(RELEVANT_TYPES)


def _codes_of(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int))]
    return []


def observation_codes() -> list[str]:
    """Every Observation.code the mappers read (LOINC and SNOMED: receptors, LVEF, staging,
    disease status, metastasis history, pregnancy), from observations.yaml's `observations`."""
    spec = load_terminology().observations["observations"]
    codes = {
        code
        for key, value in spec.items()
        if key != "lvef_verification"
        for code in _codes_of(value)
    }
    return sorted(codes)


def component_codes() -> list[str]:
    """The codes read inside Observation.component: LVEF reported within an echo panel."""
    return sorted(_codes_of(load_terminology().observations["observations"]["lvef"]))


def type_filters() -> list[str]:
    """`_typeFilter` values: an Observation whose code, or one of whose components' codes, the
    engine reads (the spec ORs filters of one type). Codes go without a system: a record that
    spells LOINC as an OID still matches (a wider net is safe: the mappers filter again)."""
    return [
        "Observation?code=" + ",".join(observation_codes()),
        "Observation?component-code=" + ",".join(component_codes()),
    ]


def kickoff_params(*, type_filter: bool = True) -> list[tuple[str, str]]:
    """The kick-off query: NDJSON, the engine's types, and the Observation filters."""
    params = [("_outputFormat", NDJSON), ("_type", ",".join(export_types()))]
    if type_filter:
        params += [("_typeFilter", f) for f in type_filters()]
    return params


def kickoff_path(group: str | None) -> str:
    """`Group/<id>/$export` for a group, else `Patient/$export` (every patient)."""
    return f"Group/{quote(group, safe='')}/$export" if group else "Patient/$export"
