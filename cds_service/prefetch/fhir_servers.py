"""Which FHIR servers the service may read: an allow-list, deny by default.

An entry is an origin (`https://fhir.example.org`) or a base URL (`https://ehr.example.org/fhir`:
that path and below); the port may be `*` (`http://127.0.0.1:*`). `fhirServer` values that match
no entry are never contacted, whatever `fhirAuthorization` says. Entries come from
HER2CDS_FHIR_SERVERS (all clients), HER2CDS_OPEN_FHIR_SERVERS (also readable without a token) and
each trusted client's `fhir_servers` (README, Configuration).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from cds_service.errors import Her2CdsError

DEFAULT_PORTS = {"http": 80, "https": 443}


class ServerPatternError(Her2CdsError, ValueError):
    """An allow-list entry that is not an http(s) origin or base URL; the message says why."""


@dataclass(frozen=True)
class ServerPattern:
    scheme: str
    host: str
    port: int | None  # None: any port (`*`)
    path: str  # "" for a whole origin, else "/fhir" (no trailing slash)

    def matches(self, url: str) -> bool:
        parsed = split_url(url)
        if parsed is None:
            return False
        scheme, host, port, path = parsed
        if scheme != self.scheme or host != self.host:
            return False
        if self.port is not None and port != self.port:
            return False
        return not self.path or path == self.path or path.startswith(self.path + "/")


def split_url(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path without trailing slash) of an http(s) URL; None otherwise
    (another scheme, no host, user info, a bad port)."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc or port is None:
        return None
    return scheme, parts.hostname.lower(), port, parts.path.rstrip("/")


def parse_pattern(entry: str) -> ServerPattern:
    text = entry.strip()
    any_port = False
    parts = urlsplit(text)
    netloc = parts.netloc
    if netloc.endswith(":*"):
        any_port = True
        text = text.replace(netloc, netloc[:-2] + ":1", 1)
    if parts.query or parts.fragment:
        raise ServerPatternError(f"{entry!r}: no query or fragment allowed")
    parsed = split_url(text)
    if parsed is None:
        raise ServerPatternError(
            f"{entry!r} is not an http(s) origin or base URL (e.g. https://fhir.example.org/r4 "
            "or http://127.0.0.1:*)"
        )
    scheme, host, port, path = parsed
    return ServerPattern(scheme, host, None if any_port else port, path)


@lru_cache(maxsize=64)
def parse_patterns(entries: tuple[str, ...]) -> tuple[ServerPattern, ...]:
    """Parsed entries; ServerPatternError for the first bad one."""
    return tuple(parse_pattern(e) for e in entries if e.strip())


def is_allowed(url: str, patterns: Iterable[ServerPattern]) -> bool:
    return any(p.matches(url) for p in patterns)


@dataclass(frozen=True)
class FhirAccess:
    """What one hook call may read: `allowed` servers (with the call's token), `tokenless`
    ones (also without a token), and at most `max_requests` GETs in all."""

    allowed: tuple[ServerPattern, ...] = ()
    tokenless: tuple[ServerPattern, ...] = ()
    max_requests: int = 50

    def may_read(self, url: str) -> bool:
        return is_allowed(url, self.allowed) or is_allowed(url, self.tokenless)

    def may_read_without_token(self, url: str) -> bool:
        return is_allowed(url, self.tokenless)


def origin_of(url: str) -> str:
    """scheme://host:port of a URL, for a log line (never its path: it may name a patient)."""
    parsed = split_url(url)
    if parsed is None:
        return "(not an http(s) URL)"
    return f"{parsed[0]}://{parsed[1][:100]}:{parsed[2]}"
