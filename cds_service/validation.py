"""Request validation with JSON Schema (precompiled once): the envelope and each hook's context."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from cds_service.errors import BadRequest

SCHEMAS = Path(__file__).parent / "schemas"


@lru_cache(maxsize=1)
def _validators() -> tuple[Draft202012Validator, dict[str, Draft202012Validator]]:
    envelope = json.loads((SCHEMAS / "request.schema.json").read_text(encoding="utf-8"))
    contexts = json.loads((SCHEMAS / "contexts.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(envelope)
    Draft202012Validator.check_schema(contexts)
    per_hook = {}
    for hook in ("patient-view", "order-select", "order-sign"):
        schema = {"$defs": contexts["$defs"], "$ref": f"#/$defs/{hook}"}
        per_hook[hook] = Draft202012Validator(schema)
    return Draft202012Validator(envelope), per_hook


def warm() -> None:
    _validators()


def _message(err: ValidationError, where: str) -> str:
    path = "/".join(str(p) for p in err.absolute_path)
    return f"{where}{'/' + path if path else ''}: {err.message}"


def parse_body(raw: bytes) -> dict[str, Any]:
    """Parse a request body with orjson; anything but a JSON object is a 400."""
    if not raw:
        raise BadRequest("the request body is empty; a JSON CDS Hooks request is expected")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def validate_request(body: dict[str, Any], expected_hook: str) -> None:
    envelope, per_hook = _validators()
    err = next(iter(envelope.iter_errors(body)), None)
    if err is not None:
        raise BadRequest(_message(err, "request"))
    if body["hook"] != expected_hook:
        raise BadRequest(f"this service answers the {expected_hook!r} hook, not {body['hook']!r}")
    err = next(iter(per_hook[expected_hook].iter_errors(body["context"])), None)
    if err is not None:
        raise BadRequest(_message(err, "context"))
