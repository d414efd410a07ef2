"""Liveness and readiness for load balancers and orchestrators.

GET /healthz: the process answers (liveness; no dependency is checked, so a database outage
never gets healthy workers restarted). GET /readyz: the knowledge base is loaded and the database
answers; otherwise 503 with an OperationOutcome naming what is not ready, so the balancer sends
traffic elsewhere until it recovers.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from cds_service.errors import operation_outcome
from cds_service.responses import json_response
from cds_service.state import service_state
from cds_service.storage.db import METADATA

bp = Blueprint("health", __name__)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz() -> Response:
    return _no_store(json_response({"status": "ok"}))


def _knowledge_version() -> str | None:
    """The version of the knowledge set the app decides with (create_app loaded and checked
    it: an app without one is not ready)."""
    try:
        return service_state(current_app).knowledge.version
    except Exception:  # a knowledge set that is missing makes the service not ready
        current_app.logger.exception("knowledge base not loaded")
        return None


def _database_problem() -> str | None:
    """None when the database answers and has our tables (created now if they were missed)."""
    state = service_state(current_app)
    db = state.db
    if not db.ping():
        return "database unreachable"
    if state.readiness.schema_ready:
        return None
    db.create_tables()  # idempotent; a replica that started before its database catches up
    try:
        present = set(inspect(db.engine).get_table_names())
    except SQLAlchemyError:
        return "database unreachable"
    missing = sorted(set(METADATA.tables) - present)
    state.readiness.schema_ready = not missing
    return f"database tables missing: {', '.join(missing)}" if missing else None


@bp.get("/readyz")
def readyz() -> Response:
    version = _knowledge_version()
    database = _database_problem()
    if version is not None and database is None:
        body: dict[str, Any] = {
            "status": "ready",
            "knowledgeVersion": version,
            "checks": {"knowledge": "ok", "database": "ok"},
        }
        return _no_store(json_response(body))
    problems = ["knowledge base not loaded"] if version is None else []
    problems += [database] if database else []
    outcome = operation_outcome(problems[0], "transient")
    outcome["issue"] += [operation_outcome(p, "transient")["issue"][0] for p in problems[1:]]
    response = _no_store(json_response(outcome, 503))
    response.headers["Retry-After"] = "5"
    return response
