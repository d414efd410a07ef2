"""The benchmark's patient-view requests, each with prefetch filled from our own templates.

- `sandbox`: the captured CDS Hooks sandbox request (context as sent; prefetch refilled from
  the resources it carried, with our templates);
- `synthea-her2`: Lasonya941_Carroll471, the HER2-positive metastatic Synthea record;
- `synthea-largest`: the Synthea record with the most prefetched resources;
- `scale-1k`, `scale-5k`, `scale-20k`: the HER2 record scaled up (bench/scale.py).

Each request body is serialised once; `HOOK_INSTANCE` is a placeholder the client replaces with
a fresh uuid per request (same length), so no server can answer from a cache keyed on it.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.scale import count_prefetch, scale_up
from bench.shared import find_shared, missing
from cds_service.prefetch.prefetch import is_outcome
from cds_service.services import prefetch_templates
from her2cds_cli.local_fhir import fill_prefetch, patient_keys_of

ROOT = Path(__file__).resolve().parent.parent


SHARED = find_shared()
CAPTURES = SHARED / "captures"
SYNTHEA = SHARED / "data" / "synthea-mcode"


def missing_data() -> str | None:
    """What the payloads need and this machine lacks, as one sentence; None when all is there."""
    absent = [p for p in (CAPTURES / "sandbox-patient-view.json", SYNTHEA) if not p.exists()]
    if not absent:
        return None
    return "the bench builds its payloads from the shared data: " + "; ".join(map(missing, absent))


HER2_RECORD = "Lasonya941_Carroll471"
HOOK_INSTANCE = "00000000-0000-4000-8000-000000000000"
SCALES = {"scale-1k": 1_000, "scale-5k": 5_000, "scale-20k": 20_000}


@dataclass(frozen=True)
class Payload:
    name: str
    resources: int  # resources in the request's prefetch
    body: bytes

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "resources": self.resources, "bytes": len(self.body)}


def _body(context: dict[str, Any], prefetch: dict[str, Any], **extra: Any) -> bytes:
    request = {
        "hook": "patient-view",
        "hookInstance": HOOK_INSTANCE,
        **extra,
        "context": context,
        "prefetch": prefetch,
    }
    return orjson.dumps(request)


def _from_bundle(name: str, bundle: dict[str, Any]) -> Payload:
    pid, keys = patient_keys_of(bundle)
    context = {"patientId": pid, "userId": "Practitioner/bench-1"}
    resources = [e["resource"] for e in bundle.get("entry", [])]
    prefetch = fill_prefetch(prefetch_templates(), context, resources, keys)
    return Payload(name, count_prefetch(prefetch), _body(context, prefetch))


def sandbox() -> Payload:
    capture = orjson.loads((CAPTURES / "sandbox-patient-view.json").read_bytes())["body"]
    resources: list[dict[str, Any]] = []
    for value in (capture.get("prefetch") or {}).values():
        if not isinstance(value, dict) or is_outcome(value):
            continue
        if value.get("resourceType") == "Bundle":
            resources.extend(e["resource"] for e in value.get("entry") or [] if "resource" in e)
        else:
            resources.append(value)
    context = dict(capture["context"])
    keys = {f"Patient/{context['patientId']}"}
    prefetch = fill_prefetch(prefetch_templates(), context, resources, keys)
    extra = {"fhirServer": capture["fhirServer"]} if capture.get("fhirServer") else {}
    return Payload("sandbox", count_prefetch(prefetch), _body(context, prefetch, **extra))


def read_bundle(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(gzip.decompress(path.read_bytes()))
    return data


def synthea_files() -> list[Path]:
    return sorted(SYNTHEA.glob("*.json.gz"))


def her2_bundle() -> dict[str, Any]:
    path = next(p for p in synthea_files() if p.name.startswith(HER2_RECORD))
    return read_bundle(path)


def largest_synthea() -> Payload:
    """The Synthea record whose request holds the most prefetched resources."""
    return max(
        (_from_bundle("synthea-largest", read_bundle(p)) for p in synthea_files()),
        key=lambda p: (p.resources, len(p.body)),
    )


def build(names: set[str] | None = None) -> list[Payload]:
    """The payloads (all, or those named), smallest first. Needs ../shared."""

    def wanted(name: str) -> bool:
        return names is None or name in names

    out = [sandbox()] if wanted("sandbox") else []
    her2 = her2_bundle() if wanted("synthea-her2") or any(map(wanted, SCALES)) else None
    if her2 is not None and wanted("synthea-her2"):
        out.append(_from_bundle("synthea-her2", her2))
    if wanted("synthea-largest"):
        out.append(largest_synthea())
    if her2 is not None:
        out.extend(_from_bundle(n, scale_up(her2, size)) for n, size in SCALES.items() if wanted(n))
    return out
