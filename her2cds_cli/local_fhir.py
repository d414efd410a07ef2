"""An in-memory FHIR search over a list of resources: fills prefetch the way a CDS client does.

Used by `her2-cds demo`, the benchmark and the tests to build requests from bundles with the
service's own discovery templates. Supports what our templates use: instance reads
(`Type/id`) and type searches by `patient` (or `subject`) and token `code` (`system|code`,
comma-separated).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from cds_service.prefetch.prefetch import render_template
from her2cds_cli.files import owner_reference


def _codes(resource: dict[str, Any]) -> set[tuple[str, str]]:
    code = resource.get("code")
    if not isinstance(code, dict):
        return set()
    return {
        (str(c.get("system", "")), str(c.get("code", "")))
        for c in code.get("coding", []) or []
        if isinstance(c, dict)
    }


def _matches(
    resource: dict[str, Any], params: list[tuple[str, str]], patient_keys: set[str]
) -> bool:
    for name, value in params:
        if name in ("patient", "subject"):
            target = owner_reference(resource)
            if patient_keys and target not in patient_keys and target != f"Patient/{value}":
                return False
        elif name == "code":
            have = _codes(resource)
            have_codes = {c for _, c in have}
            hit = False
            for token in value.split(","):
                system, _, code = token.rpartition("|")
                if (system, code) in have or (not system and code in have_codes):
                    hit = True
                    break
            if not hit:
                return False
    return True


def search(
    resources: Iterable[dict[str, Any]], query: str, patient_keys: set[str] | None = None
) -> dict[str, Any] | None:
    """Run a read or a search; a search answers a searchset Bundle, a failed read None."""
    path, _, qs = query.partition("?")
    items = list(resources)
    if "/" in path and not qs:
        rtype, _, rid = path.partition("/")
        return next(
            (r for r in items if r.get("resourceType") == rtype and r.get("id") == rid), None
        )
    params = parse_qsl(qs, keep_blank_values=True)
    keys = set(patient_keys or set())
    found = [r for r in items if r.get("resourceType") == path and _matches(r, params, keys)]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in found],
    }


def fill_prefetch(
    templates: Mapping[str, str],
    context: Mapping[str, Any],
    resources: Iterable[dict[str, Any]],
    patient_keys: set[str] | None = None,
) -> dict[str, Any]:
    """Every prefetch key filled from `resources`, as a conformant client would send it."""
    items = list(resources)
    keys = set(patient_keys or set())
    pid = context.get("patientId")
    if pid:
        keys.add(f"Patient/{pid}")
    out: dict[str, Any] = {}
    for key, template in templates.items():
        query = render_template(template, context)
        if query is not None:
            out[key] = search(items, query, keys)
    return out


def patient_keys_of(bundle: Mapping[str, Any]) -> tuple[str | None, set[str]]:
    """The patient's id and every reference that names it (Patient/id and urn:uuid fullUrls)."""
    pid = None
    keys: set[str] = set()
    for e in bundle.get("entry", []) or []:
        r = e.get("resource") or {}
        if r.get("resourceType") == "Patient":
            pid = r.get("id")
            keys.add(f"Patient/{pid}")
            if e.get("fullUrl"):
                keys.add(str(e["fullUrl"]))
    return pid, keys
