"""Prometheus metrics at GET /metrics, and the functions the rest of the service calls to count.

One set of metrics per process. Under gunicorn with several workers, set
PROMETHEUS_MULTIPROC_DIR to an empty, writable directory before the service starts (`her2-cds
serve` empties it at start-up): each worker then writes its samples there and any worker's
/metrics answers the sum over all of them. Without it, a scrape sees only the worker that
answered it.

Other modules count through the small functions here (`cards_emitted`, `fhir_call`,
`auth_failure`, `feedback`), so the metric names and labels stay in one file. Label values are
bounded: rule ids come from the knowledge base, reasons and outcomes from the code; anything
else is cut to a short string.
"""

from __future__ import annotations

import http.cookiejar
import os
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

import requests
from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    g,
    request,
)
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from cds_service.observability.timing import request_seconds
from cds_service.storage import card_rules
from cds_service.storage.after_response import defer
from cds_service.storage.db import Database

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROC_ENV):  # the metrics below write their files there from now on
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "her2cds_requests",
    "HTTP requests answered, by endpoint, CDS service id and status.",
    ["endpoint", "service", "status"],
)
LATENCY = Histogram(
    "her2cds_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint, CDS service id and status.",
    ["endpoint", "service", "status"],
    buckets=_LATENCY_BUCKETS,
)
CARDS = Counter(
    "her2cds_cards",
    "Cards emitted, by CDS service, card kind and rule (warning or order-check rule id, "
    "the missing data for data-needed cards, 'next-line' for the recommendation).",
    ["service", "kind", "rule"],
)
NONCONFORMING = Counter(
    "her2cds_fhir_nonconforming_resources",
    "Resources the engine used that do not conform to the FHIR models, by resource type "
    "(checked after the answer is sent; the mappers read such resources defensively).",
    ["resource_type"],
)
FHIR_CALLS = Counter(
    "her2cds_fhir_calls",
    "Calls to the CDS client's FHIR server for missing prefetch, by outcome.",
    ["outcome"],
)
FHIR_ERRORS = Counter(
    "her2cds_fhir_errors",
    "Failed calls to the CDS client's FHIR server, by reason.",
    ["reason"],
)
FHIR_LATENCY = Histogram(
    "her2cds_fhir_call_duration_seconds",
    "Time of one call to the CDS client's FHIR server, until its response headers.",
    buckets=_LATENCY_BUCKETS,
)
AUTH_FAILURES = Counter(
    "her2cds_auth_failures",
    "Requests refused by client authentication, by reason.",
    ["reason"],
)
FEEDBACK = Counter(
    "her2cds_feedback",
    "Card feedback items received from CDS clients, by the card's rule ('unknown' when the "
    "card is older than the retention or was not recorded) and outcome (accepted, overridden).",
    ["rule", "outcome"],
)

bp = Blueprint("metrics", __name__)


def _label(value: object, limit: int = 64) -> str:
    text = str(value) if value is not None else ""
    return text[:limit]


_CHILDREN_MAX = 10_000
_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


def _child(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, kept per process: labels() takes a lock and builds the label
    tuple on every call (a few per hook call). Label values are bounded (see above); the cap
    is a backstop, past it children are looked up each time as before."""
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        child = metric.labels(*values)
        if len(_children) < _CHILDREN_MAX:
            _children[key] = child
    return child


# --- what other modules call -------------------------------------------------------------


def card_rule(card: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, rule) of a card from its org.her2cds extension."""
    ext = card.get("extension")
    ours = ext.get("org.her2cds") if isinstance(ext, Mapping) else None
    if not isinstance(ours, Mapping):
        return "unknown", "unknown"
    kind = _label(ours.get("kind") or "unknown")
    rule = ours.get("rule") or ours.get("missing") or kind
    return kind, _label(rule)


def cards_emitted(service: str, cards: list[tuple[str, str, str]]) -> None:
    """Count a hook response's cards ((uuid, kind, rule) each, see `card_rule`) per rule, once
    the answer is sent."""
    defer(partial(_count_cards, _label(service), cards))


def _count_cards(service: str, cards: list[tuple[str, str, str]]) -> None:
    for _, kind, rule in cards:
        _child(CARDS, service, kind, rule).inc()


def fhir_call(outcome: str, seconds: float) -> None:
    """One call to a FHIR server: outcome 'ok', 'not-found', or an error reason."""
    FHIR_CALLS.labels(_label(outcome)).inc()
    FHIR_LATENCY.observe(max(seconds, 0.0))
    if outcome not in ("ok", "not-found"):
        FHIR_ERRORS.labels(_label(outcome)).inc()


def auth_failure(reason: str) -> None:
    """A request refused by authentication (reason: 'missing-token', 'bad-signature', ...)."""
    AUTH_FAILURES.labels(_label(reason)).inc()


def feedback(rule: str, outcome: str) -> None:
    """A feedback entry for a card: outcome 'accepted' or 'overridden'."""
    FEEDBACK.labels(_label(rule), _label(outcome)).inc()


def feedback_received(db: Database, items: list[dict[str, Any]]) -> None:
    """Count feedback items per rule of their card (looked up in the shared database)."""
    known = card_rules.rules_of(db, (str(i.get("card", "")) for i in items))
    for item in items:
        _, rule = known.get(str(item.get("card", "")), ("unknown", "unknown"))
        feedback(rule, str(item.get("outcome", "unknown")))


class InstrumentedSession(requests.Session):
    """The FHIR fallback's HTTP session: times every call and counts outcomes and errors.

    It keeps no cookies, so nothing one CDS client's FHIR server sets reaches another's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.Timeout:
            fhir_call("timeout", time.perf_counter() - start)
            raise
        except requests.ConnectionError:
            fhir_call("connection", time.perf_counter() - start)
            raise
        except requests.RequestException:
            fhir_call("error", time.perf_counter() - start)
            raise
        status = response.status_code
        outcome = "ok" if status < 400 else "not-found" if status == 404 else f"http-{status}"
        fhir_call(outcome, time.perf_counter() - start)
        return response


# --- the endpoint and the request hooks ----------------------------------------------------


def render() -> bytes:
    """The exposition text: all workers' samples in multiprocess mode, else this process's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(registry))
    return bytes(generate_latest(REGISTRY))


@bp.get("/metrics")
def scrape() -> Response:
    return Response(render(), mimetype=None, content_type=CONTENT_TYPE_LATEST)


def request_labels(req: Request) -> tuple[str, str]:
    """(endpoint, service) of a request; bounded: unknown services are ''."""
    from cds_service.services import BY_ID

    endpoint = req.endpoint or "unmatched"
    service_id = (req.view_args or {}).get("service_id")
    service = service_id if isinstance(service_id, str) and service_id in BY_ID else ""
    return endpoint, service


def init_app(app: Flask) -> None:
    """Count every request and its latency (timed by cds_service.observability.timing,
    registered before this; create_app gives the FHIR fallback an InstrumentedSession)."""

    @app.after_request
    def _observe(response: Response) -> Response:
        seconds = request_seconds()
        failure = g.get("her2cds_auth_failure")  # set by cds_service.security.auth on a refusal
        # Counted once the answer is sent (after_response), like the request's log line.
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        defer(partial(_count_request, req, str(response.status_code), seconds, failure))
        return response


def _count_request(req: Request, status: str, seconds: float | None, failure: object) -> None:
    endpoint, service = request_labels(req)
    _child(REQUESTS, endpoint, service, status).inc()
    if failure:
        auth_failure(str(failure))
    if seconds is not None:
        _child(LATENCY, endpoint, service, status).observe(seconds)


def nonconforming(resource_type: str, count: int = 1) -> None:
    """Resources used by a hook call that do not conform to their FHIR model."""
    NONCONFORMING.labels(_label(resource_type)).inc(count)
