"""The timeline view: an HTML page with an SVG of the patient's treatment over time.

Two ways to get it (see docs/cards.md):
- `GET /timeline/<patientId>?view=<token>`: the page of a recent patient-view call for that
  patient. The call keeps the part of its picture the page draws (cards.timeline.timeline_record,
  as JSON) in the service's database for a short time (15 minutes; the store is
  cds_service.storage.timeline_store), so the card's link opens on
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
from datetime import date
from functools import lru_cache, partial
from urllib.parse import quote

import orjson
from flask import Blueprint, Response, current_app, request
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.sansio.utils import get_current_url

from cards.timeline import timeline_page, timeline_record
from cds_service.errors import BadRequestError
from cds_service.state import service_state
from cds_service.storage import timeline_store
from cds_service.storage.after_response import defer_write, paused
from cds_service.storage.db import Database
from engine import record_json
from engine.model import PatientRecord
from fhir_mappers import KnowledgeSet, build_record

log = logging.getLogger(__name__)
bp = Blueprint("timeline", __name__)


def _db() -> Database:
    return service_state(current_app).db


def _knowledge() -> KnowledgeSet:
    return service_state(current_app).knowledge


def view_token(instance: str) -> str:
    """The token naming one hook call's page: an HMAC of the hookInstance under the service's
    secret. The same call gives the same link on every worker (cards stay deterministic), while
    knowing a hookInstance (not a security token in CDS Hooks, and often logged) is not enough
    to open the page."""
    db = _db()
    try:
        key = _fallback_key() if paused(db) else timeline_store.link_secret(db)
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
        partial(_write, token, record, _knowledge().version, timeline_store.client_key(client)),
        "timeline picture",
    )


def _write(token: str, record: PatientRecord, version: str, client: str, conn: Connection) -> None:
    picture = record_json.dumps(timeline_record(record)).decode()
    timeline_store.put(
        conn,
        patient_id=record.patient_id,
        client=client,
        token=token,
        version=version,
        record=picture,
    )


def _stored(token: str, patient_id: str) -> str | None:
    """The page of a stored picture, drawn now; None when there is none (or it is unreadable:
    kept by a version of the service whose model differs)."""
    found = timeline_store.get(_db(), token, patient_id)
    if found is None:
        return None
    try:
        record = record_json.loads(found[0])
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("timeline picture not readable: %s", type(exc).__name__)
        return None
    return timeline_page(record, found[1])


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
