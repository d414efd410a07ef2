"""Which rule each emitted card came from, so feedback (which names only the card) counts per rule.

CDS Hooks feedback carries the card's uuid and nothing else about it. To tell how often
clinicians override each warning, every hook response's (card uuid, kind, rule) is kept in the
shared database for RETENTION_SECONDS; any replica answering the feedback can look it up.
Writing is best effort, after the response is sent: a database that is down never delays or
fails the advice (the feedback is then counted under rule "unknown").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from functools import partial

from sqlalchemy import Column, Connection, Float, String, Table, select
from sqlalchemy.exc import SQLAlchemyError

from cds_service.storage import after_response
from cds_service.storage.db import METADATA, Database
from cds_service.storage.expiring import ExpiringTable

log = logging.getLogger(__name__)

RETENTION_SECONDS = 30 * 24 * 3600
PRUNE_EVERY = 256  # writes per process between deletions of expired rows

CARD_RULES = Table(
    "card_rule",
    METADATA,
    Column("card", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("created_at", Float, nullable=False),  # epoch seconds
)

_TABLE = ExpiringTable(
    CARD_RULES,
    expired=lambda now: CARD_RULES.c.created_at < now - RETENTION_SECONDS,
    prune_every=PRUNE_EVERY,
)


def remember(db: Database, cards: list[tuple[str, str, str]]) -> None:
    """Keep (card uuid, kind, rule) of a hook response's cards once the answer is sent, in the
    call's after-response transaction."""
    after_response.defer_write(db, partial(write, cards), "card rules")


def write(cards: Iterable[tuple[str, str, str]], conn: Connection) -> None:
    """Keep (card uuid, kind, rule) of emitted cards, inside the caller's transaction (the hook
    call's after-response writes: cds_service.storage.after_response.defer_write, which also pauses
    writing while the database is down)."""
    now = time.time()
    rows = [{"card": c, "kind": k, "rule": r, "created_at": now} for c, k, r in cards if c]
    if rows:
        _TABLE.write(conn, rows, now)


def rules_of(db: Database, cards: Iterable[str]) -> dict[str, tuple[str, str]]:
    """{card uuid: (kind, rule)} for the cards still known; {} when the database is down."""
    wanted = sorted({c for c in cards if c})
    if not wanted:
        return {}
    after_response.flush(db)  # rules of cards this worker answered moments ago
    try:
        with db.engine.connect() as conn:
            result = conn.execute(
                select(CARD_RULES.c.card, CARD_RULES.c.kind, CARD_RULES.c.rule).where(
                    CARD_RULES.c.card.in_(wanted)
                )
            )
            return {card: (kind, rule) for card, kind, rule in result}
    except SQLAlchemyError as exc:
        log.debug("card rules not read: %s", type(exc).__name__)
        return {}
