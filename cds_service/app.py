"""The Flask application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from cds_service import health, logging_setup, metrics
from cds_service.config import Config, from_env
from cds_service.db import Database
from cds_service.errors import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    operation_outcome,
)
from cds_service.feedback import bp as feedback_bp
from cds_service.hooks import bp as hooks_bp
from cds_service.hooks import json_response
from cds_service.openapi import bp as openapi_bp
from cds_service.timeline import bp as timeline_bp

log = logging.getLogger("her2cds")


def warm_up() -> None:
    """Load and validate the knowledge base and terminology; import the FHIR models."""
    from cds_service.services import prefetch_templates
    from cds_service.validation import warm
    from engine import load_knowledge
    from fhir_mappers import load_terminology, warm_models

    load_knowledge()
    load_terminology()
    warm_models()
    warm()
    prefetch_templates()


def _cors(response: Response, cfg: Config) -> Response:
    origin = request.headers.get("Origin")
    allowed = cfg.cors_origins
    if "*" in allowed:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin and origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    """Build the service. `config` is a Config, a dict of overrides, or None (environment)."""
    from cds_service.auth import init_auth

    cfg = config.validate() if isinstance(config, Config) else from_env(**(config or {}))
    app = Flask(__name__)
    app.config["HER2CDS"] = cfg
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    warm_up()
    db = Database(cfg.database_url)
    db.create_tables()
    app.extensions["her2cds.db"] = db
    init_auth(app, cfg)  # HER2CDS_AUTH=required: JWT on every /cds-services call
    app.register_blueprint(hooks_bp)
    app.register_blueprint(feedback_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(timeline_bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    metrics.init_app(app)
    logging_setup.init_app(app, cfg)

    @app.before_request
    def _preflight() -> Response | None:
        if request.method == "OPTIONS":
            return Response(status=204)
        length = request.content_length
        if length is not None and length > cfg.max_body_bytes:
            raise PayloadTooLarge(f"the request body is larger than {cfg.max_body_bytes} bytes")
        return None

    @app.after_request
    def _after(response: Response) -> Response:
        return _cors(response, cfg)

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        if exc.status >= 500:
            log.error("request failed: %s", exc.message)
        return json_response(exc.outcome(), exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if isinstance(exc, RequestEntityTooLarge):
            return _service_error(
                PayloadTooLarge(f"the request body is larger than {cfg.max_body_bytes} bytes")
            )
        if exc.code == 404:
            return _service_error(NotFound(f"no such endpoint: {request.path}"))
        if exc.code == 405:
            response = _service_error(
                MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
            )
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(sorted({*allowed, "OPTIONS"}))
            return response
        status = exc.code or 500
        return json_response(operation_outcome(exc.description or exc.name, "processing"), status)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.path)
        return json_response(
            operation_outcome("internal error; the service log has the details", "exception"), 500
        )

    return app
