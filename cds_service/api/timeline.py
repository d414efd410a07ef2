"""The timeline view: an HTML page with an SVG of the patient's treatment over time.

Two ways to get it (see docs/cards.md):
- `GET /timeline/<patientId>?view=<token>`: the page of a recent patient-view call for that
  patient. The call keeps the part of its picture the page draws (cards.timeline.timeline_record,
  as JSON) in the service's database for a short time (15 minutes), so the card's link opens on
  any worker or replica; the page is drawn when the link is opened, not on every call. Only the
  latest call per patient and CDS client is kept (the next call replaces it, and with it the
  link), so the table holds at most one row per patient and client, whatever the load. The token
  is in the card's SMART link; without it nothing is shown, so patient data is never served for
  a bare (guessable) patient id.
- `POST /timeline` with a FHIR Bundle (or a list of resources) as the body: the page for that
  data, built on the spot (`?patient=<id>` and `?as_of=YYYY-MM-DD` optional).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from datetime import date
from functools import lru_cache, partial
from typing import Any
from urllib.parse import quote

import orjson
from flask import Blueprint, Response, current_app, request
from sqlalchemy import Column, Connection, Float, String, Table, Text, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.sansio.utils import get_current_url

from cards.timeline import timeline_page, timeline_record
from cds_service.errors import BadRequestError
from cds_service.state import service_state
from cds_service.storage.after_response import defer_write, flush, paused
from cds_service.storage.db import METADATA, Database
from engine import record_json
from engine.model import PatientRecord
from fhir_mappers import KnowledgeSet, build_record

log = logging.getLogger(__name__)
bp = Blueprint("timeline", __name__)

TTL_SECONDS = 15 * 60
_PRUNE_EVERY = 100  # writes between deletions of expired pages

# One row per patient and CDS client: the drawn part of the latest call's picture
# (engine.record_json), the token its link names, and the knowledge version of its cards.
# (Before: one row per call in `timeline_pictures`, which grew by the request rate, and before
# 2026.11.22 the rendered HTML in `timeline_views`; both are no longer read and may be dropped.)
timeline_pictures = Table(
    "timeline_latest",
    METADATA,
    Column("patient_id", String(64), primary_key=True),
    Column("client", String(64), primary_key=True),  # sha256 of the caller's iss; "-": no auth
    Column("token", String(64), nullable=False, index=True),
    Column("knowledge_version", String(64), nullable=False),
    Column("record", Text, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)
_COLUMNS = ("token", "knowledge_version", "record", "expires_at")
service_secrets = Table(
    "service_secrets",
    METADATA,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
)


@lru_cache(maxsize=4)
def _upsert(dialect: str) -> Any:
    """INSERT, or replace the row of the same patient and client, in one statement built once
    per dialect (SQLAlchemy compiles a statement per structure)."""
    dialects: dict[str, Any] = {"postgresql": postgresql, "sqlite": sqlite}
    if dialect not in dialects:
        return None
    stmt = dialects[dialect].insert(timeline_pictures)
    return stmt.on_conflict_do_update(
        index_elements=[timeline_pictures.c.patient_id, timeline_pictures.c.client],
        set_={c: stmt.excluded[c] for c in _COLUMNS},
    )


def client_key(iss: str | None) -> str:
    """The client column: a fixed-length digest of the caller's issuer, "-" without auth."""
    return hashlib.sha256(iss.encode()).hexdigest() if iss else "-"


_secrets: dict[str, bytes] = {}
_writes = 0


def _db() -> Database:
    return service_state(current_app).db


def _knowledge() -> KnowledgeSet:
    return service_state(current_app).knowledge


def _secret(db: Database) -> bytes:
    """The link secret, drawn once and kept in the database so every worker and replica signs
    the same links (first writer wins; the others read what it wrote)."""
    cached = _secrets.get(db.url)
    if cached is not None:
        return cached
    with db.engine.begin() as conn:
        value = conn.execute(
            select(service_secrets.c.value).where(service_secrets.c.name == "timeline")
        ).scalar()
    if value is None:
        try:
            with db.engine.begin() as conn:
                conn.execute(
                    insert(service_secrets).values(name="timeline", value=secrets.token_hex(32))
                )
        except IntegrityError:
            pass  # another process drew it first
        with db.engine.begin() as conn:
            value = conn.execute(
                select(service_secrets.c.value).where(service_secrets.c.name == "timeline")
            ).scalar_one()
    _secrets[db.url] = bytes.fromhex(str(value))
    return _secrets[db.url]


def view_token(instance: str) -> str:
    """The token naming one hook call's page: an HMAC of the hookInstance under the service's
    secret. The same call gives the same link on every worker (cards stay deterministic), while
    knowing a hookInstance (not a security token in CDS Hooks, and often logged) is not enough
    to open the page."""
    db = _db()
    try:
        key = _fallback_key() if paused(db) else _secret(db)
    except SQLAlchemyError:
        key = _fallback_key()
    return hmac.new(key, instance.encode(), hashlib.sha256).hexdigest()[:32]


_FALLBACK = secrets.token_bytes(32)


def _fallback_key() -> bytes:
    """With the database down the link cannot be stored anyway: an unguessable key that opens
    nothing (the page will say it is not available)."""
    return _FALLBACK


def _base_url() -> str:
    base = service_state(current_app).config.public_base_url or ""
    return base.rstrip("/") if base else _host_url(request.scheme, request.host)


@lru_cache(maxsize=64)
def _host_url(scheme: str, host: str) -> str:
    """What werkzeug's request.host_url gives, without its IRI-to-URI conversion on every call
    (a tenth of a hook call's own time outside the pipeline, measured with py-spy)."""
    return get_current_url(scheme, host).rstrip("/")


def link_for(patient_id: str, token: str) -> str:
    """The absolute URL of the timeline view of a hook call, named by its `view_token` (call
    inside a request)."""
    return f"{_base_url()}/timeline/{quote(patient_id, safe='')}?view={token}"


def remember(record: PatientRecord, token: str, client: str | None = None) -> None:
    """Keep the picture a hook call's page is drawn from, for the card's timeline link, in
    place of the previous one of that patient and client (`client`: the caller's iss).

    Stored after the response is sent (the link is clicked seconds later at the earliest), in
    the call's after-response transaction; best effort: with the database down the link says
    'not available'."""
    defer_write(
        _db(),
        partial(_write, token, record, _knowledge().version, client_key(client)),
        "timeline picture",
    )


def _write(token: str, record: PatientRecord, version: str, client: str, conn: Connection) -> None:
    global _writes
    now = time.time()
    row = {
        "token": token,
        "patient_id": record.patient_id,
        "client": client,
        "knowledge_version": version,
        "record": record_json.dumps(timeline_record(record)).decode(),
        "expires_at": now + TTL_SECONDS,
    }
    upsert = _upsert(conn.dialect.name)
    if upsert is not None:
        conn.execute(upsert, row)
    else:
        conn.execute(
            delete(timeline_pictures).where(
                timeline_pictures.c.patient_id == record.patient_id,
                timeline_pictures.c.client == client,
            )
        )
        conn.execute(insert(timeline_pictures), row)
    _writes += 1
    if _writes % _PRUNE_EVERY == 0:
        conn.execute(delete(timeline_pictures).where(timeline_pictures.c.expires_at < now))


def _stored(token: str, patient_id: str) -> str | None:
    """The page of a stored picture, drawn now; None when there is none (or it is unreadable:
    kept by a version of the service whose model differs)."""
    db = _db()
    flush(db)  # a picture this worker still holds (after_response: writes wait up to 0.2 s)
    try:
        with db.engine.connect() as conn:
            row = conn.execute(
                select(timeline_pictures.c.record, timeline_pictures.c.knowledge_version).where(
                    timeline_pictures.c.token == token,
                    timeline_pictures.c.patient_id == patient_id,
                    timeline_pictures.c.expires_at >= time.time(),
                )
            ).first()
    except SQLAlchemyError as exc:
        log.warning("timeline picture not read: %s", type(exc).__name__)
        return None
    if row is None:
        return None
    try:
        record = record_json.loads(str(row[0]))
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("timeline picture not readable: %s", type(exc).__name__)
        return None
    return timeline_page(record, str(row[1]))


def _html(page: str, status: int = 200) -> Response:
    resp = Response(page, status=status, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors *"
    )
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


_NOT_FOUND = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Timeline not available</title></head><body style="font-family:sans-serif">
<h1>Timeline not available</h1>
<p>No recent picture for this patient and link. Timeline links from cards are valid for a short
time after the card was shown: reopen the patient's chart to refresh them.</p></body></html>
"""


@bp.get("/timeline/<patient_id>")
def show(patient_id: str) -> Response:
    token = request.args.get("view", "")
    page = _stored(token, patient_id) if token else None
    if page is None:
        return _html(_NOT_FOUND, 404)
    return _html(page)


@bp.post("/timeline")
def build() -> Response:
    raw = request.get_data(cache=False)
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"the body is not valid JSON: {exc}") from exc
    if not (isinstance(data, list) or (isinstance(data, dict) and "resourceType" in data)):
        raise BadRequestError("POST /timeline expects a FHIR Bundle (or a list of resources)")
    as_of_raw = request.args.get("as_of")
    try:
        as_of = date.fromisoformat(as_of_raw) if as_of_raw else None
    except ValueError as exc:
        raise BadRequestError(f"as_of must be a date (YYYY-MM-DD), not {as_of_raw!r}") from exc
    ks = _knowledge()
    record = build_record(
        data,
        patient_id=request.args.get("patient"),
        as_of=as_of,
        knowledge=ks.knowledge,
        terminology=ks.terminology,
        line_rules=ks.line_rules,
    )
    return _html(timeline_page(record, ks.version))
