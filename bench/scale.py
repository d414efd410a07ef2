"""Scale a real Synthea record up to N prefetched resources, for the benchmark's growth curve.

The base record (by default Lasonya941_Carroll471: HER2-positive, metastatic at diagnosis in
2002, three lines, progression in 2003) is continued with many years of trastuzumab maintenance:

- core history, the same at every size: one MedicationAdministration of subcutaneous
  trastuzumab per 3-week cycle from the last base order to `END`, a cancer disease status
  Observation (97509-4, "stable") at every cycle and an LVEF Observation (10230-1) every fourth
  cycle, and at `END` a disease status "worsened" (progression), so the service's answer is the
  same deterministic picture whatever the size;
- filler, to reach exactly N: per-cycle MedicationAdministrations as a medication
  administration record writes them (premedications, and each infusion event of the
  trastuzumab dose recorded separately) and repeated disease-status / LVEF assessments, half
  Observations and half MedicationAdministrations, on the same cycle dates. 1,000 resources is
  about the realistic density; 5,000 and 20,000 are denser than any real record on purpose.

Every added resource is of a kind our prefetch templates select, so N is the number of
resources in the request the service receives (`count_prefetch`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from cds_service.services import prefetch_templates
from engine.code_systems import LOINC, RXNORM, SNOMED, UCUM
from her2cds_cli.local_fhir import fill_prefetch, patient_keys_of

END = date(2026, 6, 1)
CYCLE_DAYS = 21
PER_CYCLE = 50  # resources per cycle: 20,000 resources span 23 years (2003-2026)

_TRASTUZUMAB = (
    "2119714",
    "5 ML hyaluronidase-oysk 2000 UNT/ML / trastuzumab 120 MG/ML Injection",
)
# Premedications and supportive drugs given at an infusion visit (none is anticancer).
_PREMEDS = (
    ("312086", "ondansetron 8 MG Oral Tablet"),
    ("197582", "dexamethasone 4 MG Oral Tablet"),
    ("1049630", "diphenhydramine hydrochloride 25 MG Oral Capsule"),
    ("313782", "acetaminophen 325 MG Oral Tablet"),
    ("310273", "famotidine 20 MG Oral Tablet"),
)
_STABLE = ("359746009", "Patient's condition stable (finding)")
_WORSE = ("271299001", "Patient's condition worsened (finding)")


def _uid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"her2cds-bench/{seed}"))


def _when(day: date, minute: int = 0) -> str:
    stamp = datetime.combine(day, time(9, 0), tzinfo=UTC) + timedelta(minutes=minute)
    return stamp.isoformat()


def _med_admin(rid: str, subject: str, code: tuple[str, str], when: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration",
        "id": rid,
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code[0], "display": code[1]}],
            "text": code[1],
        },
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "dosage": {"route": {"text": "subcutaneous"}, "dose": {"value": 1, "unit": "dose"}},
    }


def _status_obs(rid: str, subject: str, value: tuple[str, str], when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "therapy",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "97509-4", "display": "Cancer disease status"}]
        },
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "valueCodeableConcept": {
            "coding": [{"system": SNOMED, "code": value[0], "display": value[1]}],
            "text": value[1],
        },
    }


def _lvef_obs(rid: str, subject: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {
            "coding": [{"system": LOINC, "code": "10230-1", "display": "Left ventricular EF"}]
        },
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "valueQuantity": {"value": 62, "unit": "%", "system": UCUM, "code": "%"},
    }


def _last_cancer_order(bundle: dict[str, Any]) -> date:
    days = [
        date.fromisoformat(str(e["resource"]["authoredOn"])[:10])
        for e in bundle.get("entry", [])
        if e.get("resource", {}).get("resourceType") == "MedicationRequest"
        and e["resource"].get("authoredOn")
    ]
    return max(days) if days else END - timedelta(days=365 * 20)


def _filler(visit: int, k: int, subject: str, day: date) -> Iterator[dict[str, Any]]:
    for j in range(k):
        rid = _uid(f"fill/{visit}/{j}")
        when = _when(day, 5 + j)
        kind = j % 4
        if kind == 0:
            yield _med_admin(rid, subject, _PREMEDS[(j // 4) % len(_PREMEDS)], when)
        elif kind == 1:
            yield _status_obs(rid, subject, _STABLE, when)
        elif kind == 2:
            yield _med_admin(rid, subject, _TRASTUZUMAB, when)  # one more MAR event, same dose
        else:
            yield _lvef_obs(rid, subject, when)


def count_prefetch(prefetch: dict[str, Any]) -> int:
    n = 0
    for value in prefetch.values():
        if isinstance(value, dict):
            n += len(value.get("entry") or []) if value.get("resourceType") == "Bundle" else 1
    return n


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{resource['id']}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def scale_up(bundle: dict[str, Any], target: int, per_cycle: int = PER_CYCLE) -> dict[str, Any]:
    """A copy of `bundle` continued with maintenance cycles so that its prefetch holds `target`
    resources exactly: `per_cycle` resources per 3-week cycle (the same mix at every size), as
    many cycles (years) as it takes, the last one at `END`. ValueError when it cannot fit."""
    pid, keys = patient_keys_of(bundle)
    subject = next((k for k in sorted(keys) if k.startswith("urn:uuid:")), f"Patient/{pid}")
    base_resources = [e["resource"] for e in bundle.get("entry", [])]
    context = {"patientId": pid}
    base_n = count_prefetch(fill_prefetch(prefetch_templates(), context, base_resources, keys))
    budget = target - base_n - 1  # minus the final progression Observation
    n_cycles = -(-budget // per_cycle)
    first = END - timedelta(days=CYCLE_DAYS * (n_cycles - 1))
    if budget < 3 or first <= _last_cancer_order(bundle):
        raise ValueError(f"cannot scale a record of {base_n} resources to {target}")
    added: list[dict[str, Any]] = []
    for i in range(n_cycles):
        day = first + timedelta(days=CYCLE_DAYS * i)
        cycle = [
            _med_admin(_uid(f"tras/{day}"), subject, _TRASTUZUMAB, _when(day)),
            _status_obs(_uid(f"status/{day}"), subject, _STABLE, _when(day, 1)),
        ]
        if i % 4 == 0:
            cycle.append(_lvef_obs(_uid(f"lvef/{day}"), subject, _when(day, 2)))
        left = budget - len(added)
        k = min(per_cycle, left) - len(cycle)
        added.extend(cycle[: min(per_cycle, left)])
        added.extend(_filler(i, max(0, k), subject, day))
    added.append(_status_obs(_uid("progression"), subject, _WORSE, _when(END)))
    out = dict(bundle)
    out["entry"] = [*(_alive(e) for e in bundle.get("entry", [])), *(_entry(r) for r in added)]
    return out


def _alive(entry: dict[str, Any]) -> dict[str, Any]:
    """The record continues to END, so its patient is alive: a Synthea death date (Lasonya's is
    2003) would put her out of scope (CLINICAL.md section 1) and leave the engine nothing to do."""
    r = entry.get("resource")
    if not isinstance(r, dict) or r.get("resourceType") != "Patient":
        return entry
    alive = {k: v for k, v in r.items() if k not in ("deceasedDateTime", "deceasedBoolean")}
    return {**entry, "resource": alive}
