"""What an export asks for: only the resource types and Observation codes the engine reads.

Both come from the mappers' own tables (fhir_mappers/resources.py, terminology/observations.yaml),
so a code added there is exported without a change here. Every Observation dated within the
record-currency window is exported too, whatever its code: CLINICAL.md judges a record current by
its newest Condition, medication or *any* Observation (a blood pressure last month included).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from engine import load_knowledge
from engine.scope import months_before
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


def currency_cutoff(as_of: date) -> date:
    """The oldest date that can still make a record current on `as_of` (parameters.yaml
    scope.record_current_months): Observations from then on are all exported."""
    months = int(load_knowledge().param("scope", "record_current_months"))
    return months_before(as_of, months)


def type_filters(as_of: date) -> list[str]:
    """`_typeFilter` values, ORed by the spec: an Observation whose code, or one of whose
    components' codes, the engine reads; or one dated (effective, or last updated: `issued` is
    not searchable) within the currency window before `as_of`. Codes go without a system: a
    record that spells LOINC as an OID still matches (a wider net is safe: the mappers filter
    again)."""
    since = currency_cutoff(as_of).isoformat()
    return [
        "Observation?code=" + ",".join(observation_codes()),
        "Observation?component-code=" + ",".join(component_codes()),
        f"Observation?date=ge{since}",
        f"Observation?_lastUpdated=ge{since}",
    ]


def kickoff_params(*, type_filter: bool = True, as_of: date | None = None) -> list[tuple[str, str]]:
    """The kick-off query: NDJSON, the engine's types, and the Observation filters for an
    evaluation on `as_of` or later (default today)."""
    params = [("_outputFormat", NDJSON), ("_type", ",".join(export_types()))]
    if type_filter:
        params += [("_typeFilter", f) for f in type_filters(as_of or date.today())]
    return params


def kickoff_path(group: str | None) -> str:
    """`Group/<id>/$export` for a group, else `Patient/$export` (every patient)."""
    return f"Group/{quote(group, safe='')}/$export" if group else "Patient/$export"
