"""The JWT replay cache: each (iss, jti) is accepted once while its token is alive.

It lives in the service's database, so every worker process (and every replica on one
PostgreSQL) shares it. Accepting a jti is one INSERT on a primary key: the database decides
atomically which of two concurrent calls with the same jti wins. Rows of expired tokens are
pruned at most once a minute per process, and a leftover expired row never blocks a new token.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

from sqlalchemy import Column, Engine, Float, String, Table, delete, insert
from sqlalchemy.exc import IntegrityError

from cds_service.storage.db import METADATA

PRUNE_INTERVAL = 60.0

JTI_TABLE = Table(
    "auth_jti",
    METADATA,
    # sha256 of iss and jti: fixed length, whatever a client sends as jti
    Column("id", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)


def _key(iss: str, jti: str) -> str:
    return hashlib.sha256(f"{iss}\x00{jti}".encode()).hexdigest()


class ReplayCache:
    """Remembers (iss, jti) pairs until their tokens expire. SQLAlchemyError means unavailable."""

    def __init__(self, engine: Engine, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.clock = clock
        self._pruned_at: float | None = None
        self._lock = threading.Lock()

    def create_table(self) -> None:
        JTI_TABLE.create(self.engine, checkfirst=True)

    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        """Record the pair; True if it was not seen before (among live tokens), else False."""
        now = self.clock()
        self._maybe_prune(now)
        key = _key(iss, jti)
        if self._insert(key, expires_at):
            return True
        # The row may belong to an expired token that was not pruned yet: it does not count.
        with self.engine.begin() as conn:
            removed = conn.execute(
                delete(JTI_TABLE).where(JTI_TABLE.c.id == key, JTI_TABLE.c.expires_at < now)
            ).rowcount
        return bool(removed) and self._insert(key, expires_at)

    def _insert(self, key: str, expires_at: float) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(JTI_TABLE).values(id=key, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    def _maybe_prune(self, now: float) -> None:
        with self._lock:
            if self._pruned_at is not None and now - self._pruned_at < PRUNE_INTERVAL:
                return
            self._pruned_at = now
        self.prune(now)

    def prune(self, now: float | None = None) -> int:
        """Delete the rows of expired tokens; returns how many."""
        cutoff = self.clock() if now is None else now
        with self.engine.begin() as conn:
            return int(
                conn.execute(delete(JTI_TABLE).where(JTI_TABLE.c.expires_at < cutoff)).rowcount
            )
