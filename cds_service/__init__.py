"""HTTP: the CDS Hooks 2.0 service, its configuration and its command line."""

from cds_service.app import create_app
from cds_service.config import Config, ConfigError, from_env

__all__ = ["Config", "ConfigError", "create_app", "from_env"]
