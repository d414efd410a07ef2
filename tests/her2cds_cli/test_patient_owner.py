"""Which patient a resource belongs to: one reading for the bundle splitter, the bulk-data
grouping and the in-memory FHIR search (her2cds_cli.files.owner_reference)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from her2cds_cli.files import split_patients
from her2cds_cli.local_fhir import search
from her2cds_cli.population import group_ndjson

PATIENTS = [{"resourceType": "Patient", "id": pid} for pid in ("a", "b")]
OWNED: list[dict[str, Any]] = [
    {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/a"}},
    {"resourceType": "MedicationStatement", "id": "m1", "subject": {"reference": "Patient/b"}},
    # an element with no reference before the one that has it (AllergyIntolerance.patient)
    {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"display": "see patient"},
        "patient": {"reference": "Patient/a"},
    },
    {"resourceType": "Coverage", "id": "cv", "beneficiary": {"reference": "Patient/b"}},
]
EXPECTED = {"a": {"a", "c1", "o1"}, "b": {"b", "m1", "cv"}}


def test_the_bundle_splitter_gives_each_patient_what_it_owns() -> None:
    entries = [{"resource": r} for r in (*PATIENTS, *OWNED)]
    split = split_patients({"resourceType": "Bundle", "type": "collection", "entry": entries})
    assert {pid: {r["id"] for r in rs} for pid, rs in split} == EXPECTED


def test_bulk_data_files_are_grouped_by_the_same_owner(tmp_path: Path) -> None:
    path = tmp_path / "all.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in (*PATIENTS, *OWNED)))
    groups = group_ndjson([path])
    assert {pid: {r["id"] for r in rs} for pid, rs in groups.items()} == EXPECTED


def test_a_search_by_patient_finds_what_that_patient_owns() -> None:
    found = search(OWNED, "Observation?patient=a", {"Patient/a"})
    assert found is not None and [e["resource"]["id"] for e in found["entry"]] == ["o1"]
    none = search(OWNED, "Observation?patient=b", {"Patient/b"})
    assert none is not None and none["entry"] == []
