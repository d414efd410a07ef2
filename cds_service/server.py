"""Production serving on gunicorn (the same command the README, the bench and the image run).

- Workers: HER2CDS_WORKERS, or 2 per CPU this process may use (CPU affinity and the cgroup CPU
  quota, so a container limited to 1 CPU gets 2 workers, not 2 per host core), 2 to 8.
- Threads: each worker answers HER2CDS_THREADS requests at once (gthread), so slow or stalled
  clients hold threads, not workers, and /healthz keeps answering; a request body that stops
  arriving for HER2CDS_BODY_TIMEOUT seconds is answered 408 and its thread is freed.
- Timeouts: a worker silent for HER2CDS_TIMEOUT seconds is restarted; on SIGTERM workers finish
  their requests for up to HER2CDS_GRACEFUL_TIMEOUT seconds (keep it below the orchestrator's
  grace period, 30 s in deploy/k8s).
- The app is loaded once in the master (knowledge base validated before any worker starts; a bad
  knowledge file stops the start-up) and each worker gets fresh database connections.
- Logs: JSON lines on stderr. The access log is the app's request line (path without the query
  string); gunicorn's own access log stays off.
- Metrics: with PROMETHEUS_MULTIPROC_DIR set, the directory is emptied at start-up and every
  worker's samples are summed at /metrics.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import socket
import sys
from pathlib import Path
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from cds_service.config import Config
from cds_service.errors import Her2CdsError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: affinity, capped by a cgroup v2 `cpu.max` quota if any."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def default_workers(cpus: int | None = None) -> int:
    return max(2, min(8, (cpus or available_cpus()) * 2))


def reset_multiprocess_dir() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR of samples of earlier runs (before workers start)."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    own = f"_{os.getpid()}.db"  # this (master) process's metric files, already open
    for name in os.listdir(path):
        if name.endswith(".db") and not name.endswith(own):
            os.remove(os.path.join(path, name))


def _post_fork(server: Any, worker: Any) -> None:
    """A worker must not share the master's pooled database connections: drop them (not close)."""
    from cds_service.state import service_state

    app = worker.app.wsgi()  # with preload_app, the app the master loaded
    service_state(app).db.engine.dispose(close=False)


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, without building access-log lines nobody reads.

    With a logging dict config, gunicorn formats every request's access-log atoms and then
    drops them at the `gunicorn.access` level (WARNING here: the app logs its own request
    line). That was about 4% of a worker's CPU on small hook calls (py-spy)."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


def _worker_exit(server: Any, worker: Any) -> None:
    """A worker stopping normally commits the writes it still holds (after_response)."""
    from cds_service.storage import after_response

    after_response.flush()


def _child_exit(server: Any, worker: Any) -> None:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def gunicorn_options(cfg: Config, *, host: str, port: int, workers: int | None) -> dict[str, Any]:
    from cds_service.observability.logging_setup import dict_config

    options: dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers or cfg.workers or default_workers(),
        # Threads: a client that is slow to send its request holds one thread, not the worker
        # (with sync workers two stalled clients held both workers until `timeout`).
        "worker_class": "gthread",
        "threads": cfg.threads,
        "timeout": cfg.timeout,
        "graceful_timeout": cfg.graceful_timeout,
        "keepalive": 5,
        "preload_app": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": cfg.log_level.lower(),
        "logconfig_dict": dict_config(cfg.log_level),
        "logger_class": GunicornLogger,
        "proc_name": "her2-cds",
        "post_fork": _post_fork,
        "worker_exit": _worker_exit,
        "child_exit": _child_exit,
    }
    if Path("/dev/shm").is_dir():  # worker heartbeats off the (maybe slow, read-only) disk
        options["worker_tmp_dir"] = "/dev/shm"
    return options


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, cfg: Config, options: dict[str, Any]) -> None:
        self.cfg_service = cfg
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from cds_service.app import create_app
        from cds_service.state import service_state

        app = create_app(self.cfg_service)
        service_state(app).db.dispose()  # the master serves nothing: no idle connections
        return app


class PortUnavailable(Her2CdsError):
    """The address cannot be bound; the message is one sentence for the operator."""


def check_port(host: str, port: int) -> None:
    """Bind HOST:PORT once (as gunicorn will, with SO_REUSEADDR) so that a busy port is one
    sentence before start-up, not gunicorn's retries of "Connection in use"."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortUnavailable(f"cannot bind {host}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortUnavailable(f"port {port} is in use on {host}; try --port") from exc
            raise PortUnavailable(
                f"cannot bind {host}:{port}: {exc.strerror or exc}; try another --host or --port"
            ) from exc


def _database(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def startup_line(cfg: Config, *, host: str, port: int, workers: int) -> str:
    """The one plain line `serve` prints before the JSON logs."""
    shown = f"[{host}]" if ":" in host else host
    auth = "required" if cfg.auth == "required" else "OFF"
    return (
        f"her2-cds: serving http://{shown}:{port}/cds-services; authentication {auth}; "
        f"database {_database(cfg.database_url)}; {workers} workers x {cfg.threads} threads"
    )


def run(cfg: Config, *, host: str, port: int, workers: int | None) -> int:
    """Serve until stopped; 1 with one sentence on stderr when the address cannot be bound."""
    try:
        check_port(host, port)
    except PortUnavailable as exc:
        print(f"her2-cds: {exc}", file=sys.stderr)
        return 1
    options = gunicorn_options(cfg, host=host, port=port, workers=workers)
    print(startup_line(cfg, host=host, port=port, workers=options["workers"]), file=sys.stderr)
    sys.stderr.flush()
    reset_multiprocess_dir()
    _Gunicorn(cfg, options).run()
    return 0
