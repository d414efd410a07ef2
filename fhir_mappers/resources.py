"""Reading raw FHIR JSON: flatten bundles and prefetch, repair common shape errors, parse dates,
and validate the resources the engine uses with fhir.resources (R4B models for R4 data, R5 models
for R5 shapes) without paying for the ones it does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from engine.model import DataIssue
from fhir_mappers.terminology import canonical_system

# The resource types the mappers read, listed once: the medication uses, the types validated
# against the FHIR models, and all that `collect` keeps.
MEDICATION_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")
VALIDATED_TYPES = ("Condition", "Observation", *MEDICATION_TYPES, "Medication")
RELEVANT_TYPES = frozenset({"Patient", *VALIDATED_TYPES, "Specimen"})

# R4 fields that are arrays but that real clients sometimes send as single objects.
_LIST_FIELDS = frozenset(
    {
        "category",
        "reasonCode",
        "reasonReference",
        "dosageInstruction",
        "dosage",
        "note",
        "identifier",
        "bodySite",
        "interpretation",
        "basedOn",
        "partOf",
        "performer",
        "derivedFrom",
        "hasMember",
        "component",
        "evidence",
        "stage",
        "contained",
        "extension",
        "statusReason",
    }
)
# Of those, the ones a resource type has as a single element in R4 (0..1): wrapping them would
# make a valid resource invalid. MedicationAdministration.dosage is one object (R4 and R5),
# unlike MedicationStatement.dosage and MedicationRequest.dosageInstruction.
_SINGLE_FIELDS: dict[str, frozenset[str]] = {
    "MedicationAdministration": frozenset({"dosage", "category"}),
    "MedicationRequest": frozenset({"statusReason", "performer"}),
    "MedicationStatement": frozenset({"category"}),
    "Observation": frozenset({"bodySite"}),
}
_NO_SINGLES: frozenset[str] = frozenset()
_INDEXED = frozenset({"Medication", "Specimen"})  # found by reference (ResourceSet._index)

_FROM_ISO = date.fromisoformat
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def parse_date(value: Any) -> date | None:
    """FHIR date/dateTime/instant to a date (partial dates take the first day); None if invalid."""
    if not isinstance(value, str):
        return None
    if len(value) >= 10 and value[4] == "-" and value[7] == "-":
        try:  # the common full-date case, in C: only ASCII YYYY-MM-DD passes, as int() reads it
            return _FROM_ISO(value[:10])
        except ValueError:
            pass
        if value[:4].isdigit():
            try:  # the rest of the full-date case (what int() reads, such as " 1"), no regex
                return date(int(value[:4]), int(value[5:7]), int(value[8:10]))
            except ValueError:
                pass
    m = _DATE.match(value.strip())
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    except ValueError:
        return None


def ref_id(resource: dict[str, Any]) -> str:
    """The "Type/id" reference of a resource (a stable placeholder when it has no id)."""
    rid = resource.get("id")
    return f"{resource.get('resourceType', 'Resource')}/{rid if rid else '(no id)'}"


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def repair(resource: dict[str, Any]) -> dict[str, Any]:
    """Wrap single objects where R4 has arrays (the sandbox sends reasonCode/category as objects)."""
    fixed: dict[str, Any] | None = None
    # Only the array fields the resource has (a C-level set intersection): most resources
    # carry none or one, and walking every element in Python was most of collect's time.
    for key in _LIST_FIELDS.intersection(resource):
        value = resource[key]
        if isinstance(value, dict):
            if key in _SINGLE_FIELDS.get(str(resource.get("resourceType")), _NO_SINGLES):
                continue
            if fixed is None:
                fixed = dict(resource)
            fixed[key] = [value]
    return fixed if fixed is not None else resource


@dataclass
class ResourceSet:
    """The resources of one patient, grouped by type, with the Medications they reference."""

    by_type: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    medications: dict[str, dict[str, Any]] = field(default_factory=dict)
    specimens: dict[str, dict[str, Any]] = field(default_factory=dict)
    issues: list[DataIssue] = field(default_factory=list)
    _positions: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    def of(self, rtype: str) -> list[dict[str, Any]]:
        return self.by_type.get(rtype, [])

    def add(self, resource: dict[str, Any]) -> None:
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or rtype not in RELEVANT_TYPES:
            return
        resource = repair(resource)
        same_type = self.by_type.get(rtype)
        if same_type is None:
            same_type = self.by_type[rtype] = []
        rid = resource.get("id")
        if isinstance(rid, str) and rid:
            # The same resource often arrives twice (prefetch and a search, or two prefetch
            # keys): keep one, the most recently updated when the copies differ.
            key = (rtype, rid)
            seen = self._positions.get(key)
            if seen is not None:
                kept = same_type[seen]
                if kept != resource:
                    self.issues.append(
                        DataIssue(f"{rtype}/{rid}", "sent twice with different content")
                    )
                    if _updated(resource) > _updated(kept):
                        same_type[seen] = resource
                        self._index(rtype, rid, resource)
                return
            self._positions[key] = len(same_type)
            if rtype in _INDEXED:
                self._index(rtype, rid, resource)
        same_type.append(resource)

    def _index(self, rtype: str, rid: str, resource: dict[str, Any]) -> None:
        if rtype == "Medication":
            self.medications[f"Medication/{rid}"] = resource
            self.medications[f"urn:uuid:{rid}"] = resource
        elif rtype == "Specimen":
            self.specimens[f"Specimen/{rid}"] = resource
            self.specimens[f"urn:uuid:{rid}"] = resource


def _updated(resource: dict[str, Any]) -> str:
    meta = resource.get("meta")
    value = meta.get("lastUpdated") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else ""


def iter_resources(data: Any) -> Iterator[dict[str, Any]]:
    """Yield the resources in a resource, a Bundle (any type), a list, or a prefetch mapping."""
    found: list[dict[str, Any]] = []
    _walk(data, found.append)
    return iter(found)


_ABSENT = object()


def _walk(data: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    """Call `visit` on each resource, in order (recursion, not a generator per nesting level)."""
    if isinstance(data, list):
        for item in data:
            _walk(item, visit)
        return
    if not isinstance(data, dict):
        return
    rtype = data.get("resourceType", _ABSENT)
    if rtype is _ABSENT:  # a prefetch mapping: key -> resource / Bundle / null
        for value in data.values():
            _walk(value, visit)
        return
    if rtype == "Bundle":
        for entry in as_list(data.get("entry")):
            if isinstance(entry, dict):
                resource = entry.get("resource")
                if isinstance(resource, dict):
                    inner = resource.get("resourceType", _ABSENT)
                    if inner is not _ABSENT and inner != "Bundle":
                        visit(resource)  # the common case, without a call per entry
                        continue
                _walk(resource, visit)
        return
    visit(data)


def collect(data: Iterable[Any] | Any) -> ResourceSet:
    """Group the relevant resources of any input shape; everything else is skipped cheaply."""
    rs = ResourceSet()
    _walk(data, rs.add)
    return rs


# ---------------------------------------------------------------------------------------------
# Validation with fhir.resources, for the resources the engine actually uses
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _model(rtype: str, r5: bool) -> Any:
    import importlib

    module = "fhir.resources" if r5 else "fhir.resources.R4B"
    mod = importlib.import_module(f"{module}.{rtype.lower()}")
    return getattr(mod, rtype)


def is_r5_shape(resource: dict[str, Any]) -> bool:
    """R5 medication resources carry `medication` as a CodeableReference."""
    med = resource.get("medication")
    return isinstance(med, dict) and ("concept" in med or "reference" in med)


_deferred: ContextVar[list[dict[str, Any]] | None] = ContextVar("her2cds_deferred", default=None)


@contextmanager
def deferred_validation() -> Iterator[list[dict[str, Any]]]:
    """Collect, instead of validating, the resources the mappers use.

    Conformance to the FHIR models never changes a fact the mappers read (they read the raw
    JSON defensively), so a service that must answer fast validates the collected resources
    after it has answered (`conformance_issues`); `evaluate` and `population` validate inline.
    """
    pending: list[dict[str, Any]] = []
    token = _deferred.set(pending)
    try:
        yield pending
    finally:
        _deferred.reset(token)


def conformance_issues(resources: Iterable[dict[str, Any]]) -> list[DataIssue]:
    """The FHIR-model conformance problems of these resources."""
    issues: list[DataIssue] = []
    for resource in resources:
        _check(resource, issues)
    return issues


def validate(resource: dict[str, Any], issues: list[DataIssue]) -> bool:
    """Validate one resource against its FHIR model; report (never raise) when it is malformed.

    Inside `deferred_validation()` the resource is only collected, for checking later."""
    pending = _deferred.get()
    if pending is not None:
        pending.append(resource)
        return True
    return _check(resource, issues)


def _check(resource: dict[str, Any], issues: list[DataIssue]) -> bool:
    rtype = str(resource.get("resourceType"))
    try:
        model = _model(rtype, is_r5_shape(resource))
    except (ImportError, AttributeError):
        return True
    try:
        model.model_validate(resource)
    except Exception as exc:  # pydantic.ValidationError and friends: report, don't crash
        first = str(exc).splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) if len(first) > 1 else str(exc)
        issues.append(DataIssue(ref_id(resource), f"does not conform to FHIR {rtype}: {detail}"))
        return False
    return True


def warm_models() -> None:
    """Import the FHIR models the mappers use (done at service start-up, not per request)."""
    for rtype in VALIDATED_TYPES:
        _model(rtype, False)
        _model(rtype, True)


def coding_codes(concept: Any, system: str | None = None) -> list[str]:
    """The codes of a CodeableConcept (optionally of one system)."""
    if not isinstance(concept, dict):
        return []
    return [
        str(c["code"])
        for c in as_list(concept.get("coding"))
        if isinstance(c, dict)
        and c.get("code")
        and (system is None or canonical_system(c.get("system")) == system)
    ]


def concept_text(concept: Any) -> str:
    """Human text of a CodeableConcept: its text, else the first display, else the first code."""
    if not isinstance(concept, dict):
        return ""
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return str(concept["text"]).strip()
    for c in as_list(concept.get("coding")):
        if isinstance(c, dict) and c.get("display"):
            return str(c["display"])
    for c in as_list(concept.get("coding")):
        if isinstance(c, dict) and c.get("code"):
            return str(c["code"])
    return ""


def now_date() -> date:
    return datetime.now().date()
