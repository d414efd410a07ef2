"""Writes examples/hook-request.patient-view.json (run: python -m tests.make_hook_example).

A complete patient-view request, as an EHR sends it: the prefetch filled from the service's own
templates (discovery) with one synthetic patient's record (seed 1, patient 4: HER2+ metastatic,
THP to progression; the guideline's next line is T-DXd), subjects as `Patient/<id>` references.
The record is a snapshot as of synthetic.generate.DEFAULT_AS_OF.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cds_service.app import create_app
from her2cds_cli.local_fhir import fill_prefetch, patient_keys_of
from synthetic.generate import DEFAULT_AS_OF, patient_bundle

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hook-request.patient-view.json"
SEED, INDEX, KIND = 1, 4, "her2-metastatic"


def _as_ehr_references(resource: dict[str, Any], urls: set[str], pid: str) -> dict[str, Any]:
    out = dict(resource)
    for key in ("subject", "patient"):
        ref = out.get(key)
        if isinstance(ref, dict) and ref.get("reference") in urls:
            out[key] = {**ref, "reference": f"Patient/{pid}"}
    return out


def request() -> dict[str, Any]:
    bundle, _ = patient_bundle(SEED, INDEX, DEFAULT_AS_OF, KIND)
    pid, keys = patient_keys_of(bundle)
    assert pid is not None
    resources = [_as_ehr_references(e["resource"], keys, pid) for e in bundle["entry"]]
    app = create_app({"database_url": "sqlite://", "testing": True})
    discovery = app.test_client().get("/cds-services").get_json()
    service = next(s for s in discovery["services"] if s["id"] == "her2-next-line")
    context = {"userId": "Practitioner/example", "patientId": pid}
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": context,
        "prefetch": fill_prefetch(service["prefetch"], context, resources, {f"Patient/{pid}"}),
    }


if __name__ == "__main__":
    EXAMPLE.write_text(json.dumps(request(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {EXAMPLE}")
