"""Production serving on gunicorn (the same command the README, the bench and the image run)."""

from __future__ import annotations

import multiprocessing
from typing import Any

from gunicorn.app.base import BaseApplication

from cds_service.config import Config


def default_workers() -> int:
    return max(2, min(8, multiprocessing.cpu_count() * 2))


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

        return create_app(self.cfg_service)


def run(cfg: Config, *, host: str, port: int, workers: int | None) -> int:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers or default_workers(),
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        "preload_app": True,
        "accesslog": "-",
        "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
        "errorlog": "-",
    }
    _Gunicorn(cfg, options).run()
    return 0
