"""Configuration from HER2CDS_* environment variables, validated once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from cds_service.errors import Her2CdsError
from cds_service.prefetch.fhir_servers import ServerPatternError, parse_patterns
from engine import load_knowledge

PREFIX = "HER2CDS_"


class ConfigError(Her2CdsError):
    """A configuration variable has a bad value; the message names it."""


@dataclass(frozen=True)
class Config:
    """Service settings. Each field is read from HER2CDS_<FIELD NAME IN UPPER CASE>."""

    jurisdiction: str = "FDA"
    database_url: str = "sqlite:///her2cds.db"
    max_body_bytes: int = 10 * 1024 * 1024
    fhir_timeout: float = 2.0
    cors_origins: tuple[str, ...] = ("*",)
    fhir_servers: tuple[str, ...] = ()
    open_fhir_servers: tuple[str, ...] = ()
    fhir_max_requests: int = 50
    auth: str = "off"
    trusted_clients: str = ""
    public_base_url: str = ""
    jwt_clock_skew: float = 60.0
    jwt_max_lifetime: float = 3600.0
    jwks_timeout: float = 3.0
    log_level: str = "INFO"
    log_salt: str = field(default="", repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0
    threads: int = 4
    body_timeout: float = 10.0
    timeout: int = 30
    graceful_timeout: int = 20
    write_delay: float = 0.2
    testing: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def validate(self) -> Config:
        judged = load_knowledge().next_line.jurisdictions  # engine/knowledge/next_line.yaml
        if self.jurisdiction not in judged:
            raise ConfigError(
                f"{PREFIX}JURISDICTION must be {' or '.join(judged)}, not {self.jurisdiction!r}"
            )
        if self.auth not in ("off", "required"):
            raise ConfigError(f"{PREFIX}AUTH must be 'required' or 'off', not {self.auth!r}")
        if self.max_body_bytes <= 0:
            raise ConfigError(f"{PREFIX}MAX_BODY_BYTES must be a positive number of bytes")
        if not 0 < self.fhir_timeout <= 60:
            raise ConfigError(f"{PREFIX}FHIR_TIMEOUT must be between 0 and 60 seconds")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(
                f"{PREFIX}LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
                f"not {self.log_level!r}"
            )
        if not 0 < self.port < 65536:
            raise ConfigError(f"{PREFIX}PORT must be between 1 and 65535, not {self.port}")
        if self.workers < 0:
            raise ConfigError(f"{PREFIX}WORKERS must be 0 (from the CPU count) or more")
        if not 1 <= self.threads <= 64:
            raise ConfigError(f"{PREFIX}THREADS must be between 1 and 64 threads per worker")
        if not 0 < self.body_timeout <= 120:
            raise ConfigError(f"{PREFIX}BODY_TIMEOUT must be between 0 and 120 seconds")
        if self.timeout <= 0 or self.graceful_timeout <= 0:
            raise ConfigError(
                f"{PREFIX}TIMEOUT and {PREFIX}GRACEFUL_TIMEOUT must be positive seconds"
            )
        if not 0 <= self.write_delay <= 5:
            raise ConfigError(f"{PREFIX}WRITE_DELAY must be between 0 and 5 seconds")
        for name in ("fhir_servers", "open_fhir_servers"):
            try:
                parse_patterns(getattr(self, name))
            except ServerPatternError as exc:
                raise ConfigError(f"{PREFIX}{name.upper()}: {exc}") from exc
        if not 1 <= self.fhir_max_requests <= 1000:
            raise ConfigError(f"{PREFIX}FHIR_MAX_REQUESTS must be between 1 and 1000")
        if self.auth == "required" and not self.trusted_clients:
            raise ConfigError(f"{PREFIX}AUTH=required needs {PREFIX}TRUSTED_CLIENTS (a JSON file)")
        if self.public_base_url and not self.public_base_url.startswith(("https://", "http://")):
            raise ConfigError(f"{PREFIX}PUBLIC_BASE_URL must be an http(s) URL")
        if not 0 <= self.jwt_clock_skew <= 300:
            raise ConfigError(f"{PREFIX}JWT_CLOCK_SKEW must be between 0 and 300 seconds")
        if not 60 <= self.jwt_max_lifetime <= 86400:
            raise ConfigError(f"{PREFIX}JWT_MAX_LIFETIME must be between 60 and 86400 seconds")
        if not 0 < self.jwks_timeout <= 30:
            raise ConfigError(f"{PREFIX}JWKS_TIMEOUT must be between 0 and 30 seconds")
        return self


def _convert(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError("expected true or false")
            return raw.lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}{name.upper()}: {raw!r} is not valid ({exc})") from exc
    return raw


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """HER2CDS_* variables that are no setting (a typo is otherwise silently ignored)."""
    source = os.environ if env is None else env
    known = {PREFIX + f.name.upper() for f in fields(Config) if f.name != "extra"}
    return sorted(k for k in source if k.startswith(PREFIX) and k not in known)


def from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Read the configuration from the environment (overrides win), and validate it."""
    source = os.environ if env is None else env
    base = Config()
    values: dict[str, Any] = {}
    for f in fields(Config):
        if f.name == "extra":
            continue
        key = PREFIX + f.name.upper()
        if key in source:
            values[f.name] = _convert(f.name, source[key], getattr(base, f.name))
    values.update(overrides)
    if "jurisdiction" in values:
        values["jurisdiction"] = str(values["jurisdiction"]).upper()
    return replace(base, **values).validate()
