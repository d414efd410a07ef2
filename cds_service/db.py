"""The service's one database (SQLAlchemy): SQLite file by default, PostgreSQL when configured.

Modules that store something (feedback, the JWT replay cache) declare their tables on
`METADATA`; `Database` creates them at start-up and answers readiness checks.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, MetaData, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

METADATA = MetaData()


class Database:
    """An engine and the tables on METADATA; safe to share between threads of one worker."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, object] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
            if url in ("sqlite://", "sqlite:///:memory:"):
                kwargs["poolclass"] = StaticPool
        self.engine: Engine = create_engine(url, **kwargs)

    def create_tables(self) -> None:
        """Create missing tables; a database that is down now is reported, not fatal (readyz)."""
        try:
            METADATA.create_all(self.engine)
        except SQLAlchemyError as exc:
            log.warning("database not ready at start-up: %s", type(exc).__name__)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
