"""Tables whose rows expire (card rules, timeline pictures): one way to write and prune them.

A write is one statement per dialect, built once (SQLAlchemy compiles a statement per
structure, and a fresh INSERT per call cost a compile on every hook call): PostgreSQL and
SQLite insert with ON CONFLICT on the primary key, either keeping the row already there or
replacing the given columns. Every `prune_every` writes of a process, the expired rows go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, delete
from sqlalchemy.dialects import postgresql, sqlite

_UPSERTING: dict[str, Any] = {"postgresql": postgresql, "sqlite": sqlite}


class ExpiringTable:
    """`table`, written through `write` and pruned of the rows `expired(now)` selects."""

    def __init__(
        self,
        table: Table,
        expired: Callable[[float], ColumnElement[bool]],
        prune_every: int,
        replace: Sequence[str] = (),
    ) -> None:
        """`replace`: the columns a write overwrites in a row of the same primary key; empty,
        the row already there is kept."""
        self.table = table
        self.expired = expired
        self.prune_every = prune_every
        self.replace = tuple(replace)
        self._statements: dict[str, Any] = {}
        self._writes = 0

    def _statement(self, dialect: str) -> Any:
        """The insert for this dialect, built once; None where it has no ON CONFLICT."""
        if dialect not in self._statements:
            module = _UPSERTING.get(dialect)
            stmt: Any = None
            if module is not None:
                stmt = module.insert(self.table)
                if self.replace:
                    stmt = stmt.on_conflict_do_update(
                        index_elements=list(self.table.primary_key.columns),
                        set_={c: stmt.excluded[c] for c in self.replace},
                    )
                else:
                    stmt = stmt.on_conflict_do_nothing()
            elif not self.replace:
                stmt = self.table.insert()
            self._statements[dialect] = stmt
        return self._statements[dialect]

    def write(self, conn: Connection, rows: list[dict[str, Any]], now: float) -> None:
        """Insert `rows` (inside the caller's transaction), then prune if it is time."""
        stmt = self._statement(conn.dialect.name)
        if stmt is not None:
            conn.execute(stmt, rows)
        else:  # a dialect without ON CONFLICT: replace by deleting the same key first
            for row in rows:
                key = [c == row[c.name] for c in self.table.primary_key.columns]
                conn.execute(delete(self.table).where(and_(*key)))
                conn.execute(self.table.insert(), row)
        self._writes += 1
        if self._writes % self.prune_every == 0:
            conn.execute(delete(self.table).where(self.expired(now)))
