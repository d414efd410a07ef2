"""Feedback (CDS Hooks 2.0): `POST /cds-services/<id>/feedback`, validated and stored once.

Clients may report the same card again, and one POST may span several cards: a feedback item is
stored once per (card, outcome, outcomeTimestamp), with the timestamp normalised to UTC, so that
repeats are idempotent. SQLite by default, PostgreSQL when HER2CDS_DATABASE_URL names one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Blueprint, Response, current_app
from sqlalchemy import Column, Integer, String, Table, Text, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cds_service.api.validation import parse_body, parse_rfc3339, read_body, validate_feedback
from cds_service.errors import NotFoundError, UnavailableError
from cds_service.observability import metrics
from cds_service.responses import json_response
from cds_service.services import BY_ID
from cds_service.state import service_state
from cds_service.storage.db import METADATA, Database

log = logging.getLogger(__name__)

bp = Blueprint("feedback", __name__)

FEEDBACK = Table(
    "feedback",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(64), nullable=False),
    Column("card", String(256), nullable=False),
    Column("outcome", String(16), nullable=False),
    # RFC 3339 in UTC with microseconds ("2026-01-02T03:04:05.000000Z"): sorts as it reads.
    Column("outcome_timestamp", String(32), nullable=False),
    Column("accepted_suggestions", Text),  # JSON array of suggestion uuids
    Column("override_system", String(1024)),
    Column("override_code", String(256)),
    Column("override_display", String(1024)),
    Column("override_comment", Text),
    Column("received_at", String(32), nullable=False),
    UniqueConstraint("card", "outcome", "outcome_timestamp", name="uq_feedback_once"),
)
_UNIQUE = ("card", "outcome", "outcome_timestamp")


def utc_text(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds; the year always has four digits (strftime's %Y
    does not pad years before 1000 on every platform)."""
    v = value.astimezone(UTC)
    return f"{v.year:04d}-{v:%m-%dT%H:%M:%S}.{v.microsecond:06d}Z"


def _row(service_id: str, item: dict[str, Any], received_at: str) -> dict[str, Any]:
    override = item.get("overrideReason") or {}
    reason = override.get("reason") or {}
    accepted = [s["id"] for s in item.get("acceptedSuggestions") or []]
    return {
        "service_id": service_id,
        "card": item["card"],
        "outcome": item["outcome"],
        "outcome_timestamp": utc_text(parse_rfc3339(item["outcomeTimestamp"])),
        "accepted_suggestions": orjson.dumps(accepted).decode() if accepted else None,
        "override_system": reason.get("system"),
        "override_code": reason.get("code"),
        "override_display": reason.get("display"),
        "override_comment": override.get("userComment"),
        "received_at": received_at,
    }


def _insert_once(conn: Connection, row: dict[str, Any]) -> bool:
    """Insert unless the same (card, outcome, timestamp) is stored; True when inserted."""
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        # ON CONFLICT DO NOTHING ... RETURNING: a row comes back only when one was inserted
        # (rowcount is not reliable here across drivers).
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(FEEDBACK)
            .values(**row)
            .on_conflict_do_nothing(index_elements=_UNIQUE)
            .returning(FEEDBACK.c.id)
        )
        return conn.execute(stmt).first() is not None
    try:  # any other database: a savepoint per row
        with conn.begin_nested():
            conn.execute(FEEDBACK.insert().values(**row))
        return True
    except IntegrityError:
        return False


def store(db: Database, service_id: str, items: list[dict[str, Any]]) -> int:
    """Store the feedback items once each; the number newly stored."""
    received_at = utc_text(datetime.now(UTC))
    rows = [_row(service_id, item, received_at) for item in items]
    with db.engine.begin() as conn:
        return sum(_insert_once(conn, row) for row in rows)


def stored_feedback(db: Database, card: str | None = None) -> list[dict[str, Any]]:
    """Stored feedback rows (oldest first), optionally for one card."""
    query = select(FEEDBACK).order_by(FEEDBACK.c.id)
    if card is not None:
        query = query.where(FEEDBACK.c.card == card)
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


@bp.post("/cds-services/<service_id>/feedback")
def post_feedback(service_id: str) -> Response:
    """Record what the user did with this service's cards (accepted or overridden)."""
    if service_id not in BY_ID:
        raise NotFoundError(f"no CDS service with id {service_id!r}; see GET /cds-services")
    items = validate_feedback(parse_body(read_body()))
    db = service_state(current_app).db
    try:
        stored = store(db, service_id, items)
    except SQLAlchemyError as exc:
        log.error("feedback not stored: %s", type(exc).__name__)
        raise UnavailableError("feedback could not be stored now; try again later") from exc
    metrics.feedback_received(db, items)
    log.info("feedback for %s: %d received, %d new", service_id, len(items), stored)
    return json_response({"received": len(items), "stored": stored})
