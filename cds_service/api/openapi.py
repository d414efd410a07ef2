"""An OpenAPI 3.1 description of this service's own endpoints, served at `/openapi.json`.

Every route of the app is listed from its URL map, so the document never drifts from what the
app serves; the known ones in full: each CDS service's request (its hook's context, with the
schemas the service validates with, and its prefetch keys), every status an operation can
answer, and which operations need the client's JWT (only those under /cds-services, and only
with HER2CDS_AUTH=required). A route not known here is listed with its view's docstring.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Flask, Response, current_app

from cds_service.api.openapi_schemas import components, example_request, request_body
from cds_service.responses import json_response
from cds_service.services import BY_ID, SERVICES, Service
from cds_service.state import service_state

bp = Blueprint("openapi", __name__)

_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_SKIP_METHODS = {"HEAD", "OPTIONS"}
_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _outcome(description: str) -> dict[str, Any]:
    return {
        "description": description + " (a FHIR OperationOutcome says why)",
        "content": {_JSON: {"schema": _ref("OperationOutcome")}},
    }


def _service_id_param() -> dict[str, Any]:
    return {
        "name": "service_id",
        "in": "path",
        "required": True,
        "description": "a service id from discovery",
        "schema": {"type": "string", "enum": [s.id for s in SERVICES]},
    }


def _guarded(op: dict[str, Any], auth: bool, unavailable: str | None = None) -> dict[str, Any]:
    """An operation under /cds-services: with auth required, it needs the client's JWT
    (cds_service.security.auth) and may answer 401, 403 and 503; `unavailable`: its own 503."""
    responses = op["responses"]
    if auth:
        op["security"] = [{"cdsHooksJwt": []}]
        challenge = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        responses["401"] = {**_outcome("no valid CDS Hooks JWT"), "headers": challenge}
        responses["403"] = {
            **_outcome("a valid JWT of a client whose tenant may not call the service"),
            "headers": challenge,
        }
        unavailable = " or ".join(
            filter(None, ["credentials cannot be checked now (replay cache)", unavailable])
        )
    if unavailable:
        responses["503"] = _outcome(unavailable)
    op["responses"] = dict(sorted(responses.items()))
    return op


def _post_errors(read_deadline: bool = True) -> dict[str, Any]:
    """What every POST may answer before its view runs (and while it reads the body)."""
    out = {
        "413": _outcome("request body too large (HER2CDS_MAX_BODY_BYTES)"),
        "415": _outcome("the body is not application/json (Content-Type)"),
    }
    if read_deadline:
        out["408"] = _outcome("the request body stopped arriving (HER2CDS_BODY_TIMEOUT)")
    return out


def _call(service: Service, auth: bool) -> dict[str, Any]:
    op = {
        "operationId": f"callService.{service.id}",
        "summary": f"{service.title} ({service.hook} hook)",
        "description": (
            f"{service.description} The context is the {service.hook} hook's "
            f"(HookContext.{service.hook}). Prefetch keys that are missing, or hold an "
            "OperationOutcome, are fetched from fhirServer with fhirAuthorization, only when "
            "that server is on the allow-list (HER2CDS_FHIR_SERVERS or the client's "
            "fhir_servers); otherwise, or when it cannot give the data, 412."
        ),
        "requestBody": request_body(service),
        "responses": {
            "200": {
                "description": "cards (possibly none)",
                "content": {_JSON: {"schema": _ref("CdsResponse")}},
            },
            "400": _outcome("malformed request, wrong hook or context"),
            "412": _outcome(
                "data neither prefetched nor fetchable from fhirServer (names the resource "
                "type and what the FHIR server answered)"
            ),
            **_post_errors(),
        },
    }
    return _guarded(op, auth)


_HTML = "text/html"


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_HTML: {"schema": {"type": "string"}}}}


def _timeline() -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """The timeline pages (cds_service.api.timeline): not behind the client JWT."""
    page = {
        "operationId": "timelinePage",
        "summary": "The timeline page a patient-view card links to",
        "description": (
            "Opens only with the `view` token of the card's link (a recent call for this "
            "patient and client); without it, or once it expired or was replaced, 404."
        ),
        "security": [{"timelineLink": []}],
        "parameters": [
            {"name": "patient_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {
            "200": _html("the timeline page"),
            "404": {
                "description": (
                    "no picture for this patient and token (an HTML page), or no such "
                    "endpoint (a path the route does not match: an OperationOutcome)"
                ),
                "content": {
                    _HTML: {"schema": {"type": "string"}},
                    _JSON: {"schema": _ref("OperationOutcome")},
                },
            },
        },
    }
    build = {
        "operationId": "timelineFromData",
        "summary": "The timeline page of the FHIR data in the body, built on the spot",
        "parameters": [
            {"name": "patient", "in": "query", "schema": {"type": "string"}},
            {"name": "as_of", "in": "query", "schema": {"type": "string", "format": "date"}},
        ],
        "requestBody": {
            "required": True,
            "content": {
                _JSON: {
                    "schema": {
                        "anyOf": [
                            _ref("HookContext.resource"),
                            {"type": "array", "items": _ref("HookContext.resource")},
                        ]
                    }
                }
            },
        },
        "responses": {
            "200": _html("the timeline page"),
            "400": _outcome("not JSON, not a Bundle or list of resources, or a bad as_of"),
            **_post_errors(read_deadline=False),
        },
    }
    return {
        ("/timeline/{patient_id}", "get"): {"/timeline/{patient_id}": page},
        ("/timeline", "post"): {"/timeline": build},
    }


def _operations(auth: bool) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """(route path, method) -> {documented path: operation}. The hook route is one path per
    service, so that each service's request is described with its own hook's context."""
    discovery = {
        "operationId": "discovery",
        "summary": "CDS Hooks discovery: the services, their hooks and prefetch templates",
        "responses": {
            "200": {
                "description": "the service definitions",
                "content": {_JSON: {"schema": _ref("Discovery")}},
            }
        },
    }
    feedback = {
        "operationId": "feedback",
        "summary": "Report what the user did with the service's cards",
        "parameters": [_service_id_param()],
        "requestBody": {
            "required": True,
            "content": {
                _JSON: {
                    "schema": _ref("Feedback"),
                    "examples": {
                        "minimal": {
                            "summary": "one card accepted, one overridden",
                            "value": example_request("feedback"),
                        }
                    },
                }
            },
        },
        "responses": {
            "200": {
                "description": "feedback stored (idempotently)",
                "content": {_JSON: {"schema": _ref("FeedbackReceipt")}},
            },
            "400": _outcome("malformed feedback"),
            "404": _outcome("unknown service id"),
            **_post_errors(),
        },
    }
    json_200 = {"200": {"description": "OK", "content": {_JSON: {"schema": {"type": "object"}}}}}
    ready = {
        "200": {"description": "ready", "content": {_JSON: {"schema": {"type": "object"}}}},
        "503": {
            **_outcome("not ready: the knowledge base or the database"),
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
        },
    }
    metrics_200 = {"200": {"description": "Prometheus metrics", "content": {"text/plain": {}}}}
    return {
        ("/cds-services", "get"): {"/cds-services": _guarded(discovery, auth)},
        ("/cds-services/{service_id}", "post"): {
            f"/cds-services/{s.id}": _call(s, auth) for s in SERVICES
        },
        ("/cds-services/{service_id}/feedback", "post"): {
            "/cds-services/{service_id}/feedback": _guarded(
                feedback, auth, "the database is not available"
            )
        },
        ("/openapi.json", "get"): {
            "/openapi.json": {
                "operationId": "openapi",
                "summary": "This OpenAPI description",
                "responses": json_200,
            }
        },
        ("/healthz", "get"): {
            "/healthz": {"operationId": "healthz", "summary": "Liveness", "responses": json_200}
        },
        ("/readyz", "get"): {
            "/readyz": {"operationId": "readyz", "summary": "Readiness", "responses": ready}
        },
        ("/metrics", "get"): {
            "/metrics": {"operationId": "metrics", "summary": "Metrics", "responses": metrics_200}
        },
        **_timeline(),
    }


def _package_version() -> str:
    try:
        return version("her2-cds")
    except PackageNotFoundError:
        return "0.0.0"


def _generic(view: Any, params: list[str]) -> dict[str, Any]:
    doc = (getattr(view, "__doc__", None) or "").strip().splitlines()
    op: dict[str, Any] = {
        "summary": doc[0] if doc else f"{getattr(view, '__name__', 'endpoint')}",
        "responses": {"200": {"description": "OK"}},
    }
    if params:
        op["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
    return op


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document for `app`: its routes, the CDS Hooks ones in full."""
    known = _operations(service_state(app).config.auth == "required")
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        path = _PARAM.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - _SKIP_METHODS):
            m = method.lower()
            ops = known.get((path, m)) or {
                path: _generic(app.view_functions.get(rule.endpoint), sorted(rule.arguments))
            }
            for where, op in ops.items():
                paths.setdefault(where, {})[m] = {"operationId": f"{rule.endpoint}.{m}", **op}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "HER2 next-line CDS Hooks service",
            "version": _package_version(),
            "description": (
                "CDS Hooks 2.0 services for HER2-positive metastatic breast cancer: next line "
                f"of therapy and order safety checks. Services: {', '.join(BY_ID)}. "
                "Every error is a FHIR OperationOutcome; an operation without `security` "
                "needs no credentials (keep /metrics, /healthz, /readyz off the public network)."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": components(),
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    """This OpenAPI description."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return json_response(build_document(app))
