"""The floor: the least a CDS service can do with a request, on the same WSGI server.

A bare WSGI app on gunicorn, started with the same options as `her2-cds serve`
(cds_service/server.py): it reads the request body, parses it with orjson and answers
`{"cards": []}`. Whatever the real service costs above this is our own work.

    python -m bench.floor --port 8099 --workers 4
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from gunicorn.app.base import BaseApplication

from cds_service.server import default_workers

EMPTY = orjson.dumps({"cards": []})


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = orjson.loads(raw)
        ok = isinstance(body, dict)
    except orjson.JSONDecodeError:
        ok = False
    if not ok:
        start_response("400 Bad Request", [("Content-Type", "application/json")])
        return [b'{"error": "not a JSON object"}']
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(EMPTY)))]
    )
    return [EMPTY]


def options(host: str, port: int, workers: int) -> dict[str, Any]:
    """The gunicorn options of cds_service.server.run (kept identical on purpose)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        "preload_app": True,
        "accesslog": "-",
        "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
        "errorlog": "-",
    }


class _Floor(BaseApplication):  # type: ignore[misc]
    def __init__(self, opts: dict[str, Any]) -> None:
        self.options = opts
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    _Floor(options(args.host, args.port, args.workers or default_workers())).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
