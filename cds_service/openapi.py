"""An OpenAPI 3.1 description of this service's own endpoints, served at `/openapi.json`.

The CDS Hooks endpoints are described in full, with the same JSON Schemas the service validates
requests with. Every other route of the app (health, metrics, ...) is listed from the URL map
with its view's docstring, so the document never drifts from what the app serves.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app

from cds_service.config import Config
from cds_service.services import BY_ID, SERVICES
from cds_service.validation import load_schema

bp = Blueprint("openapi", __name__)

_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_SKIP_METHODS = {"HEAD", "OPTIONS"}
_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _hoist(schema: dict[str, Any], name: str, into: dict[str, Any]) -> None:
    """Put a JSON Schema file into components: its $defs become `<name>.<def>` components."""
    defs = schema.get("$defs", {})

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                    out[k] = f"#/components/schemas/{name}.{v[len('#/$defs/') :]}"
                else:
                    out[k] = rewrite(v)
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    for def_name, sub in defs.items():
        into[f"{name}.{def_name}"] = rewrite(sub)
    top = {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs")}
    if top.get("type") or top.get("$ref") or top.get("properties"):
        into[name] = rewrite(top)


def _outcome(description: str) -> dict[str, Any]:
    return {
        "description": description + " (a FHIR OperationOutcome says why)",
        "content": {_JSON: {"schema": _ref("OperationOutcome")}},
    }


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "OperationOutcome": {
            "type": "object",
            "required": ["resourceType", "issue"],
            "properties": {
                "resourceType": {"const": "OperationOutcome"},
                "issue": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["severity", "code"],
                        "properties": {
                            "severity": {"enum": ["fatal", "error", "warning", "information"]},
                            "code": {"type": "string"},
                            "diagnostics": {"type": "string"},
                        },
                    },
                },
            },
        },
        "ServiceDefinition": {
            "type": "object",
            "required": ["hook", "id", "description"],
            "properties": {
                "hook": {"type": "string"},
                "id": {"type": "string"},
                "title": {"type": "string"},
                "description": {"type": "string"},
                "usageRequirements": {"type": "string"},
                "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                "extension": {"type": "object"},
            },
        },
        "Discovery": {
            "type": "object",
            "required": ["services"],
            "properties": {"services": {"type": "array", "items": _ref("ServiceDefinition")}},
        },
        "CdsResponse": {
            "type": "object",
            "required": ["cards"],
            "description": 'Cards as CDS Hooks 2.0 defines them; `{"cards": []}` is no advice.',
            "properties": {
                "cards": {"type": "array", "items": {"type": "object"}},
                "systemActions": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            },
        },
        "FeedbackReceipt": {
            "type": "object",
            "required": ["received", "stored"],
            "properties": {
                "received": {"type": "integer", "description": "feedback items in the request"},
                "stored": {
                    "type": "integer",
                    "description": "items newly stored (repeats are stored once)",
                },
            },
        },
    }
    _hoist(load_schema("request.schema.json"), "CdsRequest", schemas)
    _hoist(load_schema("contexts.schema.json"), "HookContext", schemas)
    _hoist(load_schema("feedback.schema.json"), "Feedback", schemas)
    return {
        "schemas": schemas,
        "securitySchemes": {
            "cdsHooksJwt": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "CDS Hooks 2.0 client JWT (ES384/RS384), when authentication is on",
            }
        },
    }


def _service_id_param() -> dict[str, Any]:
    return {
        "name": "service_id",
        "in": "path",
        "required": True,
        "description": "a service id from discovery",
        "schema": {"type": "string", "enum": [s.id for s in SERVICES]},
    }


def _documented() -> dict[tuple[str, str], dict[str, Any]]:
    """(path, method) -> operation, for the endpoints this module knows in full."""
    hooks = ", ".join(f"`{s.id}` ({s.hook})" for s in SERVICES)
    return {
        ("/cds-services", "get"): {
            "operationId": "discovery",
            "summary": "CDS Hooks discovery: the services, their hooks and prefetch templates",
            "responses": {
                "200": {
                    "description": "the service definitions",
                    "content": {_JSON: {"schema": _ref("Discovery")}},
                }
            },
        },
        ("/cds-services/{service_id}", "post"): {
            "operationId": "callService",
            "summary": "Call a CDS service with a hook request",
            "description": (
                f"Services: {hooks}. The context must match the service's hook (see the "
                "HookContext.* schemas). Prefetch keys that are missing, or hold an "
                "OperationOutcome, are fetched from fhirServer with fhirAuthorization, only when "
                "that server is on the allow-list (HER2CDS_FHIR_SERVERS or the client's "
                "fhir_servers); otherwise, or when it cannot give the data, 412."
            ),
            "parameters": [_service_id_param()],
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": _ref("CdsRequest")}},
            },
            "responses": {
                "200": {
                    "description": "cards (possibly none)",
                    "content": {_JSON: {"schema": _ref("CdsResponse")}},
                },
                "400": _outcome("malformed request, wrong hook or context"),
                "401": _outcome("authentication required or failed"),
                "404": _outcome("unknown service id"),
                "403": _outcome("this client's tenant may not call the service"),
                "408": _outcome("the request body stopped arriving"),
                "412": _outcome(
                    "data neither prefetched nor fetchable from fhirServer (names the resource "
                    "type and what the FHIR server answered)"
                ),
                "413": _outcome("request body too large"),
                "415": _outcome("the body is not application/json"),
                "503": _outcome("credentials cannot be checked now"),
            },
        },
        ("/cds-services/{service_id}/feedback", "post"): {
            "operationId": "feedback",
            "summary": "Report what the user did with the service's cards",
            "parameters": [_service_id_param()],
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": _ref("Feedback")}},
            },
            "responses": {
                "200": {
                    "description": "feedback stored (idempotently)",
                    "content": {_JSON: {"schema": _ref("FeedbackReceipt")}},
                },
                "400": _outcome("malformed feedback"),
                "401": _outcome("authentication required or failed"),
                "403": _outcome("this client's tenant may not call the service"),
                "404": _outcome("unknown service id"),
                "408": _outcome("the request body stopped arriving"),
                "413": _outcome("request body too large"),
                "415": _outcome("the body is not application/json"),
                "503": _outcome("the database is not available"),
            },
        },
        ("/openapi.json", "get"): {
            "operationId": "openapi",
            "summary": "This OpenAPI description",
            "responses": {"200": {"description": "OpenAPI 3.1 document"}},
        },
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
    known = _documented()
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        path = _PARAM.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - _SKIP_METHODS):
            m = method.lower()
            op = known.get((path, m)) or _generic(
                app.view_functions.get(rule.endpoint), sorted(rule.arguments)
            )
            op = {"operationId": f"{rule.endpoint}.{m}", **op}
            paths.setdefault(path, {})[m] = op
    cfg = app.config.get("HER2CDS")
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "HER2 next-line CDS Hooks service",
            "version": _package_version(),
            "description": (
                "CDS Hooks 2.0 services for HER2-positive metastatic breast cancer: next line "
                f"of therapy and order safety checks. Services: {', '.join(BY_ID)}."
            ),
        },
        "paths": paths,
        "components": _components(),
    }
    if isinstance(cfg, Config) and cfg.auth == "required":
        doc["security"] = [{"cdsHooksJwt": []}]
    return doc


@bp.get("/openapi.json")
def openapi() -> Response:
    """This OpenAPI description."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return Response(orjson.dumps(build_document(app)), mimetype="application/json")
