"""The timeline pictures behind the cards' links, kept in the service's database for a while.

One row per patient and CDS client: the drawn part of the latest patient-view call's picture
(engine.record_json, as JSON), the token its link names and the knowledge version of its cards,
expiring after TTL_SECONDS. The next call of that patient and client replaces the row (and with
it the link), so the table holds at most one row per patient and client, whatever the load.
Beside it, the link secret every worker and replica signs the links with.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time

from sqlalchemy import Column, Connection, Float, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cds_service.storage.after_response import flush
from cds_service.storage.db import METADATA, Database
from cds_service.storage.expiring import ExpiringTable

log = logging.getLogger(__name__)

TTL_SECONDS = 15 * 60
_PRUNE_EVERY = 100  # writes between deletions of expired pages

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
service_secrets = Table(
    "service_secrets",
    METADATA,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
)
_TABLE = ExpiringTable(
    timeline_pictures,
    expired=lambda now: timeline_pictures.c.expires_at < now,
    prune_every=_PRUNE_EVERY,
    replace=("token", "knowledge_version", "record", "expires_at"),
)


def client_key(iss: str | None) -> str:
    """The client column: a fixed-length digest of the caller's issuer, "-" without auth."""
    return hashlib.sha256(iss.encode()).hexdigest() if iss else "-"


def put(
    conn: Connection, *, patient_id: str, client: str, token: str, version: str, record: str
) -> None:
    """Keep a picture (`record`: its JSON) in place of the patient's and client's previous one,
    inside the caller's transaction (a hook call's after-response writes)."""
    now = time.time()
    row = {
        "token": token,
        "patient_id": patient_id,
        "client": client,
        "knowledge_version": version,
        "record": record,
        "expires_at": now + TTL_SECONDS,
    }
    _TABLE.write(conn, [row], now)


def get(db: Database, token: str, patient_id: str) -> tuple[str, str] | None:
    """(record JSON, knowledge version) of the unexpired picture the token names; None when
    there is none or the database cannot be read."""
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
    return None if row is None else (str(row[0]), str(row[1]))


_secrets: dict[str, bytes] = {}


def link_secret(db: Database) -> bytes:
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
