"""Request validation with JSON Schema (precompiled once): the envelope, each hook's context,
and feedback. Messages name the failing field; values under fhirAuthorization are never echoed.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from flask import current_app, request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from cds_service.errors import BadRequestError, RequestTimeoutError
from cds_service.state import service_state

SCHEMAS = Path(__file__).parent / "schemas"
HOOKS = ("patient-view", "order-select", "order-sign")
_SECRET_FIELDS = frozenset({"fhirAuthorization"})


def load_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


@lru_cache(maxsize=1)
def _validators() -> tuple[Draft202012Validator, dict[str, Draft202012Validator]]:
    envelope = load_schema("request.schema.json")
    contexts = load_schema("contexts.schema.json")
    per_hook = {
        hook: Draft202012Validator({"$defs": contexts["$defs"], "$ref": f"#/$defs/{hook}"})
        for hook in HOOKS
    }
    return Draft202012Validator(envelope), per_hook


@lru_cache(maxsize=1)
def _feedback_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema("feedback.schema.json"))


@lru_cache(maxsize=1)
def _fast_validators() -> tuple[Any, dict[str, Any]] | None:
    """The same schemas compiled by jsonschema-rs (Rust): a request they accept is accepted in
    about a microsecond instead of 150-400 us; anything else goes through the jsonschema
    validators above, which decide and word the error. None when jsonschema-rs is missing."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - it is a dependency; the slow path still works
        return None
    envelope = load_schema("request.schema.json")
    contexts = load_schema("contexts.schema.json")
    per_hook = {
        hook: jsonschema_rs.validator_for({"$defs": contexts["$defs"], "$ref": f"#/$defs/{hook}"})
        for hook in HOOKS
    }
    return jsonschema_rs.validator_for(envelope), per_hook


def warm() -> None:
    _validators()
    _feedback_validator()
    _fast_validators()


def _message(err: ValidationError, where: str) -> str:
    path = [str(p) for p in err.absolute_path]
    shown = "/".join([where, *path])
    if path and path[0] in _SECRET_FIELDS:
        # jsonschema messages quote the value; a token must never be echoed (or logged).
        reason = f"fails the {err.validator!r} rule of the CDS Hooks request schema"
        if err.validator == "required":
            reason = "lacks a required field (access_token, token_type)"
        return f"{shown}: {reason}"
    if err.validator == "pattern" and isinstance(err.instance, str) and "\x00" in err.instance:
        return f"{shown}: contains a NUL character (U+0000), which cannot be stored"
    return f"{shown}: {_shorten(err.message)}"


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_error(validator: Draft202012Validator, data: Any) -> ValidationError | None:
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    return errors[0] if errors else None


@contextmanager
def _body_deadline() -> Iterator[None]:
    """Each read of the body from the client's socket waits at most HER2CDS_BODY_TIMEOUT
    seconds (gunicorn's socket; other servers keep their own rules): a client that stalls is
    a 408, and the thread that reads for it is freed."""
    sock = request.environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket):
        yield
        return
    seconds = float(service_state(current_app).config.body_timeout)
    before = sock.gettimeout()
    sock.settimeout(seconds)
    try:
        yield
    except TimeoutError as exc:
        # nothing more is read from this client (gunicorn would otherwise wait for the rest of
        # the body before the next request on the connection); the 408 is still written
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
        raise RequestTimeoutError(
            f"the request body stopped arriving for {seconds:g} s (HER2CDS_BODY_TIMEOUT)"
        ) from exc
    finally:
        with suppress(OSError):
            sock.settimeout(before)


def _read(reader: Callable[[], bytes]) -> bytes:
    with _body_deadline():
        return reader()


def read_body() -> bytes:
    """The request body, within MAX_CONTENT_LENGTH.

    With a Content-Length (held to the limit before any view runs) the body is read straight
    from the server's input stream, which ends at that length (PEP 3333): Werkzeug's limited
    stream would read it in 64 KB pieces and copy it twice (a tenth of the request path's own
    time on a small hook call, and two copies of an 11 MB body). A body that ends early (the
    client went away) is a 400, not a truncated JSON. A chunked body (no Content-Length) goes
    through Werkzeug, which stops at the limit without saying so: reading one byte more
    raises RequestEntityTooLarge (413)."""
    length = request.content_length
    limit = request.max_content_length
    if length is not None:
        if limit is not None and length > limit:
            raise RequestEntityTooLarge()
        stream = request.environ["wsgi.input"]
        raw: bytes = _read(lambda: stream.read(length)) if length else b""
        if len(raw) != length:
            raise BadRequestError(f"the request body ended after {len(raw)} of {length} bytes")
        return raw
    raw = _read(lambda: request.get_data(cache=False))
    if limit is not None and len(raw) >= limit:
        request.stream.read(1)  # past the limit: raises RequestEntityTooLarge (413)
    return raw


def parse_body(raw: bytes) -> dict[str, Any]:
    """Parse a request body with orjson; anything but a JSON object is a 400."""
    if not raw:
        raise BadRequestError("the request body is empty; a JSON object is expected")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    return body


def validate_request(body: dict[str, Any], expected_hook: str) -> None:
    """The envelope, the hook name, the hook's context, and selections against draftOrders."""
    if not _fast_accepts(body, expected_hook):
        envelope, per_hook = _validators()
        err = _first_error(envelope, body)
        if err is not None:
            raise BadRequestError(_message(err, "request"))
        if body["hook"] != expected_hook:
            raise BadRequestError(
                f"this service answers the {expected_hook!r} hook, not {_shorten(body['hook'], 80)!r}"
            )
        err = _first_error(per_hook[expected_hook], body["context"])
        if err is not None:
            raise BadRequestError(_message(err, "context"))
    if expected_hook == "order-select":
        context = body["context"]
        _check_selections(context["selections"], context["draftOrders"])


def _fast_accepts(body: dict[str, Any], expected_hook: str) -> bool:
    """True when jsonschema-rs accepts the envelope and context (the common case, about 1 us);
    otherwise the jsonschema validators decide and word the error."""
    fast = _fast_validators()
    return bool(
        fast is not None
        and body.get("hook") == expected_hook
        and fast[0].is_valid(body)
        and fast[1][expected_hook].is_valid(body["context"])
    )


def _check_selections(selections: list[str], draft_orders: dict[str, Any]) -> None:
    present = set()
    for entry in draft_orders.get("entry") or []:
        resource = entry["resource"]
        if isinstance(resource.get("id"), str):
            present.add(f"{resource['resourceType']}/{resource['id']}")
    missing = [s for s in selections if s not in present]
    if missing:
        raise BadRequestError(
            "context/selections: " + ", ".join(missing[:5]) + " not found in draftOrders"
        )


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time (the schema checked its shape) as an aware UTC datetime."""
    value = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    return value.astimezone(UTC)


def validate_feedback(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The feedback items of a valid body; BadRequestError naming the first problem otherwise."""
    err = _first_error(_feedback_validator(), body)
    if err is not None:
        raise BadRequestError(_message(err, "feedback request"))
    items: list[dict[str, Any]] = body["feedback"]
    for n, item in enumerate(items):
        try:
            parse_rfc3339(item["outcomeTimestamp"])
        except ValueError as exc:
            raise BadRequestError(
                f"feedback request/feedback/{n}/outcomeTimestamp: not a valid date-time ({exc})"
            ) from exc
        except OverflowError as exc:  # valid where it was written, but not a year 1-9999 in UTC
            raise BadRequestError(
                f"feedback request/feedback/{n}/outcomeTimestamp: outside years 0001-9999 in UTC"
            ) from exc
    return items
