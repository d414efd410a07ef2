"""Work that must happen for a hook call but need not delay its answer.

Storing the picture behind a card's timeline link, the card-to-rule map that feedback needs, and
checking the used resources against the FHIR models change nothing in the cards: they run
after the response has been sent (WSGI `close`), in the same worker. A job captures what it
needs while the request is live; a failing job is logged, never raised. The request's log
line and its metrics are jobs too (logging_setup, metrics): the clinician waits for the
answer, not for them.

Database writes (`defer_write`) are committed together. On SQLite most of a write's cost is
its transaction (connection checkout, BEGIN, COMMIT: about 0.2 ms of the 0.25 ms a call's two
writes cost, measured), and on PostgreSQL a commit is a round trip: so a worker keeps the
writes of the calls it answers for at most `write_delay` seconds (HER2CDS_WRITE_DELAY, 0.2 s
by default), or until BATCH_WRITES are waiting, and one thread of the worker commits them in
one transaction. What this costs:
- A write is visible to other workers and replicas up to `write_delay` after the answer. A
  clinician opens a card's link or sends feedback seconds later; a reader in the same worker
  first commits what is waiting (`flush`), so it always sees its own worker's writes.
- A worker killed without warning (SIGKILL, out of memory) loses up to `write_delay` of writes
  (timeline links then say "not available"; feedback counts under rule "unknown"). A worker
  that stops normally (SIGTERM, restart) commits them first (`flush` at exit).
- An in-memory SQLite database (one connection shared by every thread) and `write_delay` 0
  commit at the end of each call, as before.

After a failed commit, writes to that database pause for PAUSE_SECONDS, so that an unreachable
database (connect timeouts) does not hold the worker after every call.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from functools import partial

from flask import Flask, Response, g, has_request_context
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from cds_service.config import Config
from cds_service.storage.db import Database

log = logging.getLogger(__name__)
Job = Callable[[], None]
Write = Callable[[Connection], None]
Batch = list[tuple[Write, str]]

PAUSE_SECONDS = 30.0
BATCH_WRITES = 64  # this many waiting writes are committed at once, without waiting longer
_paused_until: dict[str, float] = {}  # per database URL


def defer(job: Job) -> None:
    """Run `job` once this request's response is sent (inside a request; else run it now)."""
    if not has_request_context():
        _run([job])
        return
    jobs: list[Job] = g.setdefault("her2cds_after_response", [])
    jobs.append(job)


def free_after_response(*objects: object) -> None:
    """Keep `objects` alive until the response is sent, so that freeing them does not delay it.

    Freeing a parsed request is work the clinician would otherwise wait for: on a record of
    1,000 resources, tens of thousands of dicts and strings (about a third of the time orjson
    took to parse them, measured). Held by the request's job list, they are freed once its
    jobs have run."""
    defer(partial(_nothing, objects))


def _nothing(objects: tuple[object, ...]) -> None:
    """The job that only holds objects (`free_after_response`)."""


def paused(db: Database) -> bool:
    """True while writes to `db` pause after a failure (readers may skip it too)."""
    return time.monotonic() < _paused_until.get(db.url, 0.0)


def defer_write(db: Database, write: Write, what: str) -> None:
    """Run `write(connection)` after the response, in one transaction with other writes to
    `db`; `what` names it in the log when the transaction fails."""
    defer(partial(_write, db, write, what))


def flush(db: Database | None = None) -> None:
    """Commit the writes this worker holds (for `db`, or all) now; readers call it first."""
    _WRITER.flush(db)


def _write(db: Database, write: Write, what: str) -> None:  # outside a request: on its own
    _commit(db, [(write, what)])


def _commit(db: Database, writes: Batch) -> None:
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
    except Exception:
        log.exception("after-response write failed")


class _Writer:
    """The writes a worker holds, and the thread that commits them (started in the process
    that first holds one). A forked child starts afresh: new locks (the parent's thread may
    have held one at the fork), nothing held (the parent commits its own), no thread yet."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._cond = threading.Condition()
        self._committing = threading.Lock()  # a reader's flush waits for a commit under way
        self._held: dict[int, tuple[Database, Batch]] = {}
        self._count = 0
        self._oldest = 0.0
        self._delay = 0.0
        self._thread: threading.Thread | None = None

    def hold(self, db: Database, writes: Batch, delay: float) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="her2cds-writer", daemon=True
                )
                self._thread.start()
            first = not self._held
            if first:
                self._oldest = time.monotonic()
            self._held.setdefault(id(db), (db, []))[1].extend(writes)
            self._count += len(writes)
            self._delay = delay
            if first or self._count >= BATCH_WRITES:
                self._cond.notify()  # the thread starts (or ends) its wait

    def flush(self, db: Database | None = None) -> None:
        with self._committing:
            for held_db, writes in self._take(db):
                _commit(held_db, writes)

    def _take(self, db: Database | None) -> list[tuple[Database, Batch]]:
        with self._cond:
            if db is None:
                taken = list(self._held.values())
                self._held.clear()
            else:
                one = self._held.pop(id(db), None)
                taken = [one] if one else []
            self._count = sum(len(w) for _, w in self._held.values())
            return taken

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._held:
                    self._cond.wait()
                while self._held and self._count < BATCH_WRITES:
                    left = self._oldest + self._delay - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            self.flush()


_WRITER = _Writer()
atexit.register(flush)  # a worker that exits normally commits what it holds
os.register_at_fork(after_in_child=_WRITER.reset)


def _run(jobs: list[Job], delay: float = 0.0) -> None:
    batches: dict[int, tuple[Database, Batch]] = {}
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
        if delay > 0 and not db.shared_connection:
            _WRITER.hold(db, writes, delay)
        else:
            _commit(db, writes)
    jobs.clear()  # what the jobs held (the parsed request, the picture) is freed now


def init_app(app: Flask, cfg: Config) -> None:
    """Run each request's deferred work once its answer is sent (after `cfg.write_delay`)."""

    @app.after_request
    def _attach(response: Response) -> Response:
        # The list itself is attached, not what it holds now: after-request functions that run
        # after this one (Flask runs them in reverse order of registration) may still defer
        # work, such as the request's log line; it is all run at close, in deferral order.
        jobs: list[Job] = g.setdefault("her2cds_after_response", [])
        delay = float(cfg.write_delay)
        response.call_on_close(partial(_run, jobs, delay))
        return response
