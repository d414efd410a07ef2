"""The components of the OpenAPI document; the request of each CDS service: its hook's context
and its prefetch.

`CdsRequest.<service id>` is the envelope (request.schema.json) with that service's hook, the
hook's context (contexts.schema.json, the schema the service validates with) and one property
per prefetch key of the service's discovery templates, each typed by what its template reads.
The examples are real minimal requests (schemas/example-request.<hook>.json), answered 200.
"""

from __future__ import annotations

import json
from typing import Any

from cds_service.api.validation import SCHEMAS, load_schema
from cds_service.prefetch.prefetch import template_type
from cds_service.services import SERVICES, Service, prefetch_templates

_OUTCOME = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"const": "OperationOutcome"}},
    "description": "the client could not fetch this key: the service fetches it from fhirServer",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _resource(rtype: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"const": rtype}, "id": _ref("HookContext.id")},
    }


def _prefetch_value(key: str, template: str, complete: bool) -> dict[str, Any]:
    """What a client may send for one prefetch key (CDS Hooks 2.0 'Prefetch'); `complete`:
    only data (or null), nothing the service would have to fetch."""
    rtype = template_type(template)
    outcome = [] if complete else [_OUTCOME]
    if "?" not in template:  # a read: the resource itself
        shape = _resource(rtype)
        what = f"the {rtype} resource"
    else:  # a search: a searchset Bundle
        entry = {
            "type": "object",
            "required": ["resource"],
            "properties": {"resource": {"anyOf": [_resource(rtype), *outcome]}},
        }
        shape = {
            "type": "object",
            "required": ["resourceType"],
            "properties": {
                "resourceType": {"const": "Bundle"},
                "type": {"const": "searchset"},
                "entry": {"type": "array", "items": entry},
            },
        }
        what = f"a searchset Bundle of {rtype}"
    later = "" if complete else "; an OperationOutcome (or one in the Bundle) is fetched"
    return {
        "description": f"`{template}`: {what}; null is no data{later}",
        "anyOf": [shape, *outcome, {"type": "null"}],
    }


def prefetch_schema(complete: bool) -> dict[str, Any]:
    templates = prefetch_templates()
    values = {key: _prefetch_value(key, t, complete) for key, t in templates.items()}
    if complete:
        return {
            "type": "object",
            "description": (
                "Every key of the discovery prefetch templates, with its data: answered "
                "without reading any FHIR server."
            ),
            "required": sorted(templates),
            "properties": values,
        }
    return {
        "type": "object",
        "description": (
            "The keys of the discovery prefetch templates (other keys are ignored). A key "
            "that is missing, or holds an OperationOutcome, is fetched from fhirServer when "
            "the service may read it, or the call answers 412."
        ),
        "properties": values,
    }


def request_schema(service: Service) -> dict[str, Any]:
    return {
        "description": f"The {service.hook} request of {service.id}.",
        "allOf": [
            _ref("CdsRequest"),
            {
                "type": "object",
                "properties": {
                    "hook": {"const": service.hook},
                    "context": _ref(f"HookContext.{service.hook}"),
                    "prefetch": {
                        "anyOf": [
                            _ref(f"PrefetchComplete.{service.id}"),
                            _ref(f"Prefetch.{service.id}"),
                            {"type": "null"},
                        ]
                    },
                },
            },
        ],
    }


def request_schemas() -> dict[str, Any]:
    """Components: `Prefetch.<id>`, `PrefetchComplete.<id>`, `CdsRequest.<id>` per service."""
    out: dict[str, Any] = {}
    for service in SERVICES:
        out[f"Prefetch.{service.id}"] = prefetch_schema(complete=False)
        out[f"PrefetchComplete.{service.id}"] = prefetch_schema(complete=True)
        out[f"CdsRequest.{service.id}"] = request_schema(service)
    return out


def example_request(name: str) -> dict[str, Any]:
    """A minimal real request: of a hook, or `feedback` (a file in cds_service/schemas)."""
    data: dict[str, Any] = json.loads(
        (SCHEMAS / f"example-request.{name}.json").read_text(encoding="utf-8")
    )
    return data


def request_body(service: Service) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": _ref(f"CdsRequest.{service.id}"),
                "examples": {
                    "minimal": {
                        "summary": f"a minimal {service.hook} request with all prefetch keys",
                        "value": example_request(service.hook),
                    }
                },
            }
        },
    }


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


def _text(**more: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, **more}


def card_schemas() -> dict[str, Any]:
    """Card, Suggestion, Action, Link, Coding: CDS Hooks 2.0 'CDS Service Response' (no empty
    strings, arrays or objects; an optional field without a value is omitted)."""
    many = {"type": "array", "minItems": 1}
    return {
        "Coding": {
            "type": "object",
            "required": ["code", "system"],
            "properties": {"code": _text(), "system": _text(), "display": _text()},
        },
        "Action": {
            "type": "object",
            "required": ["type", "description"],
            "properties": {
                "type": {"enum": ["create", "update", "delete"]},
                "description": _text(),
                "resource": {"type": "object", "required": ["resourceType"]},
                "resourceId": _text(),
            },
        },
        "Suggestion": {
            "type": "object",
            "required": ["label"],
            "properties": {
                "label": _text(),
                "uuid": _text(),
                "isRecommended": {"type": "boolean"},
                "actions": {**many, "items": _ref("Action")},
            },
        },
        "Link": {
            "type": "object",
            "required": ["label", "url", "type"],
            "properties": {
                "label": _text(),
                "url": _text(format="uri"),
                "type": {"enum": ["absolute", "smart"]},
                "appContext": _text(),
                "autolaunchable": {"type": "boolean"},
            },
        },
        "Card": {
            "type": "object",
            "required": ["summary", "indicator", "source"],
            "properties": {
                "uuid": _text(),
                "summary": _text(maxLength=139),
                "detail": _text(),
                "indicator": {"enum": ["info", "warning", "critical"]},
                "source": {
                    "type": "object",
                    "required": ["label"],
                    "properties": {
                        "label": _text(),
                        "url": _text(format="uri"),
                        "icon": _text(format="uri"),
                        "topic": _ref("Coding"),
                    },
                },
                "suggestions": {**many, "items": _ref("Suggestion")},
                "selectionBehavior": {"enum": ["at-most-one", "any"]},
                "overrideReasons": {
                    **many,
                    "items": {"allOf": [_ref("Coding"), {"required": ["display"]}]},
                },
                "links": {**many, "items": _ref("Link")},
                "extension": {"type": "object", "minProperties": 1},
            },
            "dependentRequired": {"suggestions": ["selectionBehavior"]},
        },
    }


def components() -> dict[str, Any]:
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
                "cards": {"type": "array", "items": _ref("Card")},
                "systemActions": {"type": "array", "minItems": 1, "items": _ref("Action")},
            },
        },
        **card_schemas(),
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
    schemas.update(request_schemas())
    return {
        "schemas": schemas,
        "securitySchemes": {
            "cdsHooksJwt": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "CDS Hooks 2.0 client JWT (ES384/RS384): HER2CDS_AUTH=required",
            },
            "timelineLink": {
                "type": "apiKey",
                "in": "query",
                "name": "view",
                "description": "the token in a patient-view card's timeline link",
            },
        },
    }
