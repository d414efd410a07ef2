"""One clock per request: started before it is handled, read once when it is answered.

The request log line and the latency histogram both take `request_seconds()`, so the two
report the same figure for the same request.
"""

from __future__ import annotations

import time

from flask import Flask, g

_START = "her2cds_t0"
_SECONDS = "her2cds_seconds"


def init_app(app: Flask) -> None:
    """Start the clock before every request (register before the hooks that read it)."""

    @app.before_request
    def _start_clock() -> None:
        setattr(g, _START, time.perf_counter())


def request_seconds() -> float | None:
    """Seconds from the request's start to the first call of this function in the request
    (later calls give the same figure); None when the clock was not started."""
    if _SECONDS not in g:
        start = g.get(_START)
        setattr(g, _SECONDS, time.perf_counter() - start if start is not None else None)
    seconds = g.get(_SECONDS)
    return seconds if isinstance(seconds, float) else None
