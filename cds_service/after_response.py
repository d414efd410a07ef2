"""Work that must happen for a hook call but need not delay its answer.

Storing the picture behind a card's timeline link, the card-to-rule map that feedback needs, and
checking the used resources against the FHIR models change nothing in the cards: they run
after the response has been sent (WSGI `close`), in the same worker. A job captures what it
needs while the request is live; a failing job is logged, never raised.

Database writes of one call share one transaction (`defer_write`): on SQLite most of a write's
cost is its commit (measured about 0.15 ms of 0.25 ms), and that time is taken from the next
request on a 2-CPU machine. After a failed write, writes to that database pause for
PAUSE_SECONDS, so that an unreachable database (connect timeouts) does not hold every worker
after every call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from flask import Flask, Response, g, has_request_context
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from cds_service.db import Database

log = logging.getLogger(__name__)
Job = Callable[[], None]
Write = Callable[[Connection], None]

PAUSE_SECONDS = 30.0
_paused_until: dict[str, float] = {}  # per database URL


def defer(job: Job) -> None:
    """Run `job` once this request's response is sent (inside a request; else run it now)."""
    if not has_request_context():
        _run([job])
        return
    jobs: list[Job] = g.setdefault("her2cds_after_response", [])
    jobs.append(job)


def paused(db: Database) -> bool:
    """True while writes to `db` pause after a failure (readers may skip it too)."""
    return time.monotonic() < _paused_until.get(db.url, 0.0)


def defer_write(db: Database, write: Write, what: str) -> None:
    """Run `write(connection)` after the response, in one transaction with the call's other
    writes to `db`; `what` names it in the log when the transaction fails."""
    defer(partial(_write, db, write, what))


def _write(db: Database, write: Write, what: str) -> None:  # outside a request: on its own
    _commit(db, [(write, what)])


def _commit(db: Database, writes: list[tuple[Write, str]]) -> None:
    if paused(db):
        return
    try:
        with db.engine.begin() as conn:
            for write, _ in writes:
                write(conn)
    except SQLAlchemyError as exc:
        _paused_until[db.url] = time.monotonic() + PAUSE_SECONDS
        log.warning(
            "%s not stored (writes pause for %.0f s): %s",
            ", ".join(dict.fromkeys(what for _, what in writes)),
            PAUSE_SECONDS,
            type(exc).__name__,
        )


def _run(jobs: list[Job]) -> None:
    batches: dict[int, tuple[Database, list[tuple[Write, str]]]] = {}
    for job in jobs:
        if isinstance(job, partial) and job.func is _write:
            db, write, what = job.args
            batches.setdefault(id(db), (db, []))[1].append((write, what))
            continue
        try:
            job()
        except Exception:
            log.exception("after-response work failed")
    for db, writes in batches.values():
        try:
            _commit(db, writes)
        except Exception:
            log.exception("after-response work failed")


def init_app(app: Flask) -> None:
    @app.after_request
    def _attach(response: Response) -> Response:
        jobs = g.pop("her2cds_after_response", None)
        if jobs:
            response.call_on_close(partial(_run, jobs))
        return response
