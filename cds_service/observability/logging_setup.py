"""Structured logs: one JSON object per line, and one line per request.

The request line carries the method, the route (never the query string, never a path argument
other than the public service id: /timeline/<patient_id> stays a template), endpoint, service,
status, latency, and for hook calls the hookInstance, the rules that fired and the patient id as
a salted hash (HMAC-SHA256 with HER2CDS_LOG_SALT; without it a random salt per start, so lines
of one process correlate but nothing links them to a patient). Headers and bodies are never
logged, so neither are JWTs nor FHIR access tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

import orjson
from flask import Flask, Request, Response, g, request

from cds_service.config import Config
from cds_service.observability.timing import request_seconds
from cds_service.storage.after_response import defer

REQUEST_LOGGER = "her2cds.request"
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: ts, level, logger, message, and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def dict_config(level: str = "INFO") -> dict[str, Any]:
    """logging.config.dictConfig for the server: JSON lines on stderr, gunicorn's too."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": handler},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


# Loggers of the HTTP client under requests: their DEBUG lines carry the URL path and query of
# every FHIR GET (`"GET /fhir/Observation?patient=<id>&code=..." 200`), their warnings the URL
# of a retried request; paths name patients.
HTTP_CLIENT_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)
_URL_PATH = re.compile(r"(https?://[^\s/'\"?#]+)[/?#][^\s'\"]*")
_BARE_PATH = re.compile(r"(?<![\w.:/])/[^\s'\"]*")


class RedactPaths(logging.Filter):
    """Rewrites a record's message without URL paths and queries (`/…`): no patient id, name
    or token from a URL reaches a log line, at any level."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _BARE_PATH.sub("/…", _URL_PATH.sub(r"\1/…", message))
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def redact_http_client_logs() -> None:
    """Install RedactPaths on the HTTP client's loggers (once)."""
    for name in HTTP_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactPaths) for f in logger.filters):
            logger.addFilter(RedactPaths())


@lru_cache(maxsize=1024)  # a chart is opened again and again: one HMAC per patient and salt
def patient_hash(patient_id: str, salt: str) -> str:
    """A stable pseudonym for a patient id: the first 16 hex digits of HMAC-SHA256(salt, id)."""
    digest = hmac.new(salt.encode(), patient_id.encode(), hashlib.sha256).hexdigest()
    return digest[:16]


def loggable_path(req: Request, limit: int = 200) -> str:
    """The request's route with only public parts filled in (the service id): a path argument
    such as /timeline/<patient_id> is never logged as such. Unmatched paths as sent, cut."""
    rule = req.url_rule
    if rule is None:
        return req.path[:limit]
    path = rule.rule
    service_id = (req.view_args or {}).get("service_id")
    if isinstance(service_id, str):  # service ids are public (discovery)
        path = path.replace("<service_id>", service_id[:100])
    return path


def note_hook(body: Mapping[str, Any], rules: list[str]) -> None:
    """Note a hook call's hookInstance, patient and the rules of its cards for its log line
    (call inside the request)."""
    context, instance = body.get("context"), body.get("hookInstance")
    g.her2cds_hook = {
        "hookInstance": str(instance)[:100] if instance is not None else "",
        "patientId": str(context.get("patientId", "")) if isinstance(context, Mapping) else "",
        "rules": sorted(set(rules)),
        "cards": len(rules),
    }


def init_app(app: Flask, cfg: Config) -> None:
    """Log one JSON-ready line per request on the `her2cds.request` logger (timed by
    cds_service.observability.timing, registered before this)."""
    salt = cfg.log_salt or secrets.token_hex(16)
    redact_http_client_logs()
    log = logging.getLogger(REQUEST_LOGGER)

    @app.after_request
    def _log_request(response: Response) -> Response:
        seconds = request_seconds()
        latency_ms = round(seconds * 1000, 2) if seconds is not None else None
        status = response.status_code
        level = logging.WARNING if status >= 500 else logging.INFO
        if log.isEnabledFor(level):
            # Written once the answer is sent (after_response): making, formatting and writing
            # the line was about 7% of a small hook call's time in the worker (py-spy). What
            # lives only in the request context (g) is taken now; the rest is read from the
            # request object, which outlives it.
            noted = (
                g.get("her2cds_auth_failure"),
                g.get("her2cds_client"),
                g.pop("her2cds_hook", None),
            )
            req: Request = request._get_current_object()  # type: ignore[attr-defined]
            defer(partial(_emit, log, level, req, status, latency_ms, noted, salt))
        return response


def _emit(
    log: logging.Logger,
    level: int,
    req: Request,
    status: int,
    latency_ms: float | None,
    noted: tuple[Any, Any, Any],
    salt: str,
) -> None:
    """The request line: what log.log does, without looking up the caller's frame."""
    from cds_service.observability.metrics import request_labels

    failure, client, hook = noted
    endpoint, service = request_labels(req)
    fields: dict[str, Any] = {
        "event": "request",
        "method": req.method,
        "path": loggable_path(req),
        "endpoint": endpoint,
        "service": service or None,
        "status": status,
        "latency_ms": latency_ms,
    }
    request_id = req.headers.get("X-Request-Id")
    if request_id:  # set by the proxy (deploy/nginx): joins its access line to this one
        fields["requestId"] = request_id[:64]
    if failure:
        fields["authFailure"] = str(failure)[:64]
    if client is not None and getattr(client, "iss", None):
        fields["client"] = str(client.iss)[:200]  # the issuer, never the token
    if isinstance(hook, dict):
        fields["hookInstance"] = hook["hookInstance"]
        fields["rules"] = hook["rules"]
        fields["cards"] = hook["cards"]
        pid = hook.get("patientId")
        fields["patient"] = patient_hash(pid, salt) if pid else None
    log.handle(log.makeRecord(log.name, level, __file__, 0, "request", (), None, extra=fields))
