"""The Flask application factory."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from cds_service.api import health
from cds_service.api.feedback import bp as feedback_bp
from cds_service.api.hooks import bp as hooks_bp
from cds_service.api.openapi import bp as openapi_bp
from cds_service.api.timeline import bp as timeline_bp
from cds_service.config import Config, from_env
from cds_service.errors import (
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceError,
    UnsupportedMediaTypeError,
)
from cds_service.observability import logging_setup, metrics, timing
from cds_service.responses import json_response, outcome_response
from cds_service.state import ServiceState, attach
from cds_service.storage import after_response
from cds_service.storage.db import Database
from fhir_mappers import KnowledgeSet, load_knowledge_set

log = logging.getLogger("her2cds")


# Young-generation threshold of the cyclic garbage collector once warm. Request data is parsed
# JSON (dicts and lists, freed by reference counting); with CPython's default (700) a 20,000-
# resource request triggers hundreds of collections whose older-generation passes rescan the
# whole request (bench/README.md: parsing a 5,000-resource body 83 ms -> 20 ms).
GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Move everything loaded so far (modules, FHIR models, knowledge) out of the collector's
    sight, and collect young objects less often. With gunicorn's preload this runs in the
    master before the fork, so workers also keep sharing those pages (no copy-on-write from
    the collector touching object headers)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GC_GEN0_THRESHOLD, gc.get_threshold()[0]), gen1, gen2)


WARM_UP_RECORD = Path(__file__).parent / "warmup.json"


def warm_up(knowledge: KnowledgeSet | None = None) -> KnowledgeSet:
    """Load and validate the knowledge set (knowledge, terminology, line rules), import the FHIR
    models, then run a small record through request validation and both pipelines, so that the
    first request a worker answers pays none of the first-use costs (about 50-100 ms otherwise:
    regexes, pydantic validators of each FHIR model, caches). Returns the knowledge set."""
    from cds_service.api.validation import warm
    from cds_service.services import prefetch_templates
    from fhir_mappers import warm_models

    ks = knowledge or load_knowledge_set()
    warm_models()
    warm()
    prefetch_templates()
    try:
        run_warm_up_record(ks)
    except Exception:  # a warm-up problem must not stop the service; real requests will show it
        log.exception("warm-up record failed; the first requests will be slower")
    return ks


def run_warm_up_record(
    knowledge: KnowledgeSet | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The warm-up record through request validation and both pipelines: (patient-view cards,
    order-sign cards)."""
    from cds_service import pipeline
    from cds_service.api.validation import validate_request

    sample = orjson.loads(WARM_UP_RECORD.read_bytes())
    context = {"patientId": "warm-up", "userId": "Practitioner/warm-up"}
    validate_request(
        {"hook": "patient-view", "hookInstance": "w", "context": context}, "patient-view"
    )
    as_of = date(2026, 1, 1)
    view = pipeline.patient_view(
        sample["record"], instance="warm-up", patient_id="warm-up", as_of=as_of, knowledge=knowledge
    )
    orders = pipeline.order_check(
        sample["record"],
        sample["draftOrders"],
        instance="warm-up",
        patient_id="warm-up",
        selections=None,
        signing=True,
        as_of=as_of,
        knowledge=knowledge,
    )
    return view.cards, orders.cards


JSON = "application/json"


def _no_sniff(response: Response) -> Response:
    """Answers are what their Content-Type says; JSON answers (cards, patient data, errors) are
    never stored by a browser or a proxy."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    mimetype = response.mimetype or ""
    if mimetype == JSON or mimetype.endswith("+json"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _cors(response: Response, cfg: Config) -> Response:
    origin = request.headers.get("Origin")
    allowed = cfg.cors_origins
    if "*" in allowed:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin and origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
    if request.method == "OPTIONS":  # only a preflight's answer is read for these (Fetch)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


class ServiceFlask(Flask):
    """Flask, remembering per function what `ensure_sync` decided: Flask asks it of every
    before/after-request function on every request (eight here), and each time inspect works
    out again whether the function is a coroutine function. The functions are this app's own
    views, hooks and error handlers: a fixed, small set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        sync = self._sync.get(func)
        if sync is None:
            sync = self._sync[func] = super().ensure_sync(func)
        return sync


def create_app(
    config: Config | dict[str, Any] | None = None, *, knowledge: KnowledgeSet | None = None
) -> Flask:
    """Build the service. `config` is a Config, a dict of overrides, or None (environment);
    `knowledge` the knowledge set it decides with (default: the installed files, validated)."""
    from cds_service.security.auth import init_auth

    cfg = config.validate() if isinstance(config, Config) else from_env(**(config or {}))
    app = ServiceFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    knowledge = warm_up(knowledge)
    db = Database(cfg.database_url)
    db.create_tables()
    authenticator = init_auth(app, cfg, db)  # HER2CDS_AUTH=required: JWT on /cds-services
    attach(
        app,
        ServiceState(
            config=cfg,
            knowledge=knowledge,
            db=db,
            fhir_session=metrics.InstrumentedSession(),
            auth=authenticator,
        ),
    )
    app.register_blueprint(hooks_bp)
    app.register_blueprint(feedback_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(timeline_bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    timing.init_app(app)  # the one clock both below read
    metrics.init_app(app)
    logging_setup.init_app(app, cfg)
    after_response.init_app(app, cfg)
    tune_gc()

    @app.before_request
    def _preflight() -> Response | None:
        if request.method == "OPTIONS":
            return Response(status=204)
        length = request.content_length
        if length is not None and length > cfg.max_body_bytes:
            raise PayloadTooLargeError(
                f"the request body is larger than {cfg.max_body_bytes} bytes"
            )
        if (
            request.method == "POST"
            and request.routing_exception is None
            and (request.mimetype != JSON)
        ):
            # also stops "simple" cross-origin posts (text/plain, forms) that skip a preflight
            raise UnsupportedMediaTypeError(
                "POST bodies must be application/json, not "
                f"{(request.mimetype or 'none')[:80]!r} (Content-Type)"
            )
        return None

    @app.after_request
    def _after(response: Response) -> Response:
        return _cors(_no_sniff(response), cfg)

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        if exc.status >= 500:
            log.error("request failed: %s", exc.message)
        return json_response(exc.outcome(), exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if isinstance(exc, RequestEntityTooLarge):
            return _service_error(
                PayloadTooLargeError(f"the request body is larger than {cfg.max_body_bytes} bytes")
            )
        if exc.code == 404:
            return _service_error(NotFoundError(f"no such endpoint: {request.path}"))
        if exc.code == 405:
            response = _service_error(
                MethodNotAllowedError(f"{request.method} is not allowed on {request.path}")
            )
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(sorted({*allowed, "OPTIONS"}))
            return response
        status = exc.code or 500
        return outcome_response(exc.description or exc.name, "processing", status)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error on %s", logging_setup.loggable_path(request))
        return outcome_response("internal error; the service log has the details", "exception", 500)

    return app
