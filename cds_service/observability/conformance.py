"""FHIR-model conformance of the resources a hook call used, checked after it is answered.

Validating every used resource against fhir.resources costs about 0.2 ms each (three
quarters of the CPU of a 5,000-resource request) and changes no card: the mappers read the
raw JSON defensively and report what they cannot read. So the service answers first and
checks afterwards: operators see non-conforming data per resource type in /metrics and the
log (types and counts only, no content); `her2-cds evaluate` shows each problem inline.

Even after the answer, checking everything would hold the worker (about 190 ms for a
1,000-resource call), so the service checks one resource of each distinct shape (resource
type and which elements it has, and of what JSON kind), at most MAX_CHECKED per call: a
sample that shows which resource types an EHR sends malformed, at a bounded cost.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from cds_service.observability import metrics
from cds_service.storage.after_response import defer
from fhir_mappers.resources import conformance_issues, deferred_validation

log = logging.getLogger(__name__)


@contextmanager
def checked_after_response() -> Iterator[None]:
    """Collect the resources the mappers use inside this block; check them after the answer."""
    with deferred_validation() as pending:
        yield
    if pending:
        defer(partial(_report, list(pending)))


MAX_CHECKED = 50


def _shape(resource: dict[str, Any]) -> tuple[Any, ...]:
    """Resource type, element names in order and their JSON kinds (about 1 us; sorting the
    pairs cost 5: the same elements in another order only count as one more shape)."""
    return (resource.get("resourceType"), tuple(resource), tuple(map(type, resource.values())))


def sample(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One resource per distinct shape, at most MAX_CHECKED."""
    seen: set[tuple[Any, ...]] = set()
    out: list[dict[str, Any]] = []
    for resource in resources:
        shape = _shape(resource)
        if shape not in seen:
            seen.add(shape)
            out.append(resource)
            if len(out) == MAX_CHECKED:
                break
    return out


MAX_REMEMBERED = 4096
_verdicts: OrderedDict[tuple[Any, ...], bool] = OrderedDict()  # shape -> conforms (per worker)


def _report(resources: list[dict[str, Any]]) -> None:
    """Count the non-conforming shapes of this call: a shape already judged in this worker is
    counted from memory, a new one is validated (EHR data repeats a handful of shapes, so in
    steady state this costs almost nothing)."""
    by_type: Counter[str] = Counter()
    for resource in sample(resources):
        shape = _shape(resource)
        verdict = _verdicts.get(shape)
        if verdict is None:
            verdict = not conformance_issues([resource])
            _verdicts[shape] = verdict
            if len(_verdicts) > MAX_REMEMBERED:
                _verdicts.popitem(last=False)
        if not verdict:
            by_type[str(resource.get("resourceType"))] += 1
    if not by_type:
        return
    for rtype, count in by_type.items():
        metrics.nonconforming(rtype, count)
    log.info(
        "used resources not conforming to the FHIR models: %s",
        ", ".join(f"{t} {n}" for t, n in sorted(by_type.items())),
    )
