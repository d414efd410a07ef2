"""The timeline view: an HTML page with an SVG of the patient's treatment over time.

Two ways to get it (see docs/timeline.md):
- `GET /timeline/<patientId>?view=<token>`: the picture built by a recent patient-view call for
  that patient, held in this process's memory for a short time (HER2CDS default 15 minutes). The
  token is in the card's SMART link; without it nothing is shown, so patient data is never
  served for a bare (guessable) patient id.
- `POST /timeline` with a FHIR Bundle (or a list of resources) as the body: the page for that
  data, built on the spot (`?patient=<id>` and `?as_of=YYYY-MM-DD` optional).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from datetime import date
from urllib.parse import quote

import orjson
from flask import Blueprint, Response, current_app, request

from cards.timeline import timeline_page
from cds_service.errors import BadRequest
from engine import load_knowledge
from engine.model import PatientRecord
from fhir_mappers import build_record

bp = Blueprint("timeline", __name__)

# Per process: a link is only good on the process that holds the picture anyway.
_SECRET = secrets.token_bytes(32)
TTL_SECONDS = 15 * 60
MAX_ENTRIES = 256


class TimelineStore:
    """Recent patient pictures by view token, bounded in size and age (memory only)."""

    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, PatientRecord]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, token: str, record: PatientRecord) -> None:
        with self._lock:
            self._items[token] = (time.monotonic() + self.ttl, record)
            self._items.move_to_end(token)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def get(self, token: str, patient_id: str) -> PatientRecord | None:
        with self._lock:
            item = self._items.get(token)
            if item is None:
                return None
            expires, record = item
            if expires < time.monotonic():
                del self._items[token]
                return None
            return record if record.patient_id == patient_id else None


_STORE = TimelineStore()


def view_token(instance: str) -> str:
    """The token naming one hook call's picture: an HMAC of the hookInstance under a secret
    drawn when the process starts. The same call gives the same link (cards stay deterministic
    within a process), while knowing a hookInstance (not a security token in CDS Hooks, and
    often logged) is not enough to open the picture."""
    return hmac.new(_SECRET, instance.encode(), hashlib.sha256).hexdigest()[:32]


def _base_url() -> str:
    cfg = current_app.config.get("HER2CDS")
    base = str(getattr(cfg, "public_base_url", "") or "") or request.host_url
    return base.rstrip("/")


def link_for(patient_id: str, instance: str) -> str:
    """The absolute URL of the timeline view for this hook call (call inside a request)."""
    return f"{_base_url()}/timeline/{quote(patient_id, safe='')}?view={view_token(instance)}"


def remember(record: PatientRecord, instance: str) -> None:
    """Keep the picture a hook call built, for the card's timeline link."""
    _STORE.put(view_token(instance), record)


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
    record = _STORE.get(token, patient_id) if token else None
    if record is None:
        return _html(_NOT_FOUND, 404)
    return _html(timeline_page(record, load_knowledge().version))


@bp.post("/timeline")
def build() -> Response:
    raw = request.get_data(cache=False)
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if not (isinstance(data, list) or (isinstance(data, dict) and "resourceType" in data)):
        raise BadRequest("POST /timeline expects a FHIR Bundle (or a list of resources)")
    as_of_raw = request.args.get("as_of")
    try:
        as_of = date.fromisoformat(as_of_raw) if as_of_raw else None
    except ValueError as exc:
        raise BadRequest(f"as_of must be a date (YYYY-MM-DD), not {as_of_raw!r}") from exc
    record = build_record(data, patient_id=request.args.get("patient"), as_of=as_of)
    return _html(timeline_page(record, load_knowledge().version))
