"""Work that must happen for a hook call but need not delay its answer.

Storing the timeline page behind a card's link, the card-to-rule map that feedback needs, and
checking the used resources against the FHIR models change nothing in the cards: they run
after the response has been sent (WSGI `close`), in the same worker. A job captures what it
needs while the request is live; a failing job is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from flask import Flask, Response, g, has_request_context

log = logging.getLogger(__name__)
Job = Callable[[], None]


def defer(job: Job) -> None:
    """Run `job` once this request's response is sent (inside a request; else run it now)."""
    if not has_request_context():
        _run([job])
        return
    jobs: list[Job] = g.setdefault("her2cds_after_response", [])
    jobs.append(job)


def _run(jobs: list[Job]) -> None:
    for job in jobs:
        try:
            job()
        except Exception:
            log.exception("after-response work failed")


def init_app(app: Flask) -> None:
    @app.after_request
    def _attach(response: Response) -> Response:
        jobs = g.pop("her2cds_after_response", None)
        if jobs:
            response.call_on_close(partial(_run, jobs))
        return response
