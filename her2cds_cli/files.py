"""Reading FHIR Bundles from files (plain or .gz), split per patient."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson


def read_json(path: Path) -> Any:
    raw = path.read_bytes()
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return orjson.loads(raw)


# The element that names the patient a resource belongs to (Coverage: beneficiary).
_OWNER_FIELDS = ("subject", "patient", "beneficiary")


def owner_reference(resource: dict[str, Any]) -> str | None:
    """The reference to the patient a resource belongs to, as written (`Patient/id` or a
    urn:uuid); None for a resource of no patient (a Medication, a Patient itself)."""
    for key in _OWNER_FIELDS:
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return str(ref["reference"])
    return None


def split_patients(data: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """(patient id, resources) for each Patient in a Bundle (transaction, collection, searchset).

    With one Patient, every resource belongs to it; with several, resources go to the patient
    their subject references (by Patient/id or by the Patient entry's fullUrl).
    """
    entries = (
        data.get("entry", [])
        if isinstance(data, dict) and data.get("resourceType") == "Bundle"
        else []
    )
    if isinstance(data, dict) and data.get("resourceType") != "Bundle":
        entries = [{"resource": data}]
    patients: list[tuple[str, set[str]]] = []
    for e in entries:
        r = e.get("resource") or {}
        if r.get("resourceType") == "Patient":
            keys = {f"Patient/{r.get('id')}"}
            if e.get("fullUrl"):
                keys.add(str(e["fullUrl"]))
            patients.append((str(r.get("id", "unknown")), keys))
    resources = [e.get("resource") for e in entries if isinstance(e.get("resource"), dict)]
    if len(patients) <= 1:
        pid = patients[0][0] if patients else "unknown"
        return [(pid, resources)]
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for pid, keys in patients:
        mine = [
            r
            for r in resources
            if (r.get("resourceType") == "Patient" and r.get("id") == pid)
            or owner_reference(r) in keys
            or r.get("resourceType") == "Medication"
        ]
        out.append((pid, mine))
    return out
