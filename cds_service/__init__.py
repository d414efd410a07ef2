"""HTTP: the CDS Hooks 2.0 service and its configuration (the command line is her2cds_cli).

`create_app` is loaded on first use, so that `her2-cds serve` can set up Prometheus'
multiprocess mode (an environment variable read when prometheus_client is imported) before
anything imports the app and its metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cds_service.config import Config, ConfigError, from_env

if TYPE_CHECKING:
    from cds_service.app import create_app

__all__ = ["Config", "ConfigError", "create_app", "from_env"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from cds_service.app import create_app

        return create_app
    raise AttributeError(f"module 'cds_service' has no attribute {name!r}")
