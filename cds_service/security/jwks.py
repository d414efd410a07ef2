"""Trusted CDS clients (HER2CDS_TRUSTED_CLIENTS) and their public keys: JWK Sets given inline,
in a file, or at a URL.

Only keys that can verify ES384 (EC P-384) or RS384 (RSA, 2048 bits or more) are kept: in a set
the operator configured any other key is an error, in a set fetched from a URL it is skipped. A URL is fetched with a timeout, cached,
and fetched again when a token names a `kid` the cache does not hold, at most once a minute
(so a flood of made-up `kid`s cannot turn the service into a fetch loop), and when the cache is
older than an hour.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from cds_service.config import PREFIX, ConfigError
from cds_service.errors import Her2CdsError
from cds_service.prefetch.fhir_servers import ServerPatternError, parse_patterns

log = logging.getLogger("her2cds.auth")

ALGORITHMS = ("ES384", "RS384")
REFRESH_INTERVAL = 60.0  # seconds between two fetches of one URL, whatever the reason
MAX_AGE = 3600.0  # a fetched set is fetched again after this long
MAX_BYTES = 256 * 1024  # a JWK Set larger than this is refused
MIN_RSA_BITS = 2048
VARIABLE = f"{PREFIX}TRUSTED_CLIENTS"
ENTRY_FIELDS = {
    "iss",
    "jwks",
    "jwks_url",
    "jwks_file",
    "tenant",
    "jku",
    "fhir_servers",
    "description",
}
KEY_FIELDS = ("jwks", "jwks_url", "jwks_file")

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
Fetch = Callable[[str, float], Any]  # (url, timeout) -> the parsed JSON document
Clock = Callable[[], float]


class JwksError(Her2CdsError, ValueError):
    """A JWK Set that cannot be used; the message says why (no key material in it)."""


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    algorithm: str  # ES384 or RS384: the only algorithm this key may verify
    key: PublicKey


def _key_algorithm(jwk: Mapping[str, Any]) -> str:
    kty = jwk.get("kty")
    if kty == "EC":
        if jwk.get("crv") != "P-384":
            raise JwksError(f"EC key on curve {jwk.get('crv')!r}; ES384 needs P-384")
        algorithm = "ES384"
    elif kty == "RSA":
        algorithm = "RS384"
    else:
        raise JwksError(f"key type {kty!r} is not allowed (only EC P-384 or RSA)")
    declared = jwk.get("alg")
    if declared is not None and declared != algorithm:
        raise JwksError(f"key declares alg {declared!r}; only {algorithm} fits this key")
    return algorithm


def parse_key(jwk: Any) -> VerificationKey:
    """One JWK -> a verification key, or JwksError."""
    if not isinstance(jwk, Mapping):
        raise JwksError("a key is not a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise JwksError("a key has no 'kid'")
    if "d" in jwk or jwk.get("kty") == "oct" or "k" in jwk:
        raise JwksError(f"key {kid!r} is private or symmetric: publish public keys only")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise JwksError(f"key {kid!r} has use {use!r}, not 'sig'")
    algorithm = _key_algorithm(jwk)
    try:
        key = PyJWK(dict(jwk), algorithm=algorithm).key
    except (PyJWKError, ValueError, TypeError, KeyError) as exc:
        raise JwksError(f"key {kid!r} cannot be read ({type(exc).__name__})") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise JwksError(f"key {kid!r} is not a public key")
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise JwksError(f"RSA key {kid!r} has {key.key_size} bits; at least {MIN_RSA_BITS}")
    return VerificationKey(kid, algorithm, key)


def parse_jwks(document: Any, *, strict: bool = True) -> dict[str, VerificationKey]:
    """A JWK Set document -> {kid: key}; JwksError if it is malformed or holds no usable key.

    strict (a set the operator configured): any key we cannot use is an error. Not strict (a
    set published at a URL, which may also hold encryption keys or keys for other algorithms):
    such keys are skipped with a warning.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JwksError("not a JWK Set (an object with a 'keys' array)")
    keys: dict[str, VerificationKey] = {}
    for jwk in document["keys"]:
        try:
            key = parse_key(jwk)
            if key.kid in keys:
                raise JwksError(f"kid {key.kid!r} appears twice")
        except JwksError as exc:
            if strict:
                raise
            log.warning("JWKS key skipped: %s", exc)
            continue
        keys[key.kid] = key
    if not keys:
        raise JwksError("the JWK Set has no usable keys")
    return keys


def check_url(url: Any) -> str:
    """A JWKS URL must be https (http only to a loopback host, for local testing)."""
    if not isinstance(url, str) or not url:
        raise JwksError("a JWKS URL must be a non-empty string")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return url
    raise JwksError(f"JWKS URL {url!r} must use https (http only on a loopback host)")


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_fetch(url: str, timeout: float) -> Any:
    """GET a JWK Set: no redirects, a size limit, JSON."""
    with requests.get(
        url,
        timeout=timeout,
        allow_redirects=False,
        stream=True,
        headers={"Accept": "application/json"},
    ) as resp:
        if resp.status_code != 200:
            raise JwksError(f"HTTP {resp.status_code}")
        body = bytearray()
        for chunk in resp.iter_content(16384):
            body.extend(chunk)
            if len(body) > MAX_BYTES:
                raise JwksError(f"larger than {MAX_BYTES} bytes")
    return json.loads(bytes(body))


class StaticKeys:
    """Keys given in the trusted-clients file itself or in a local file."""

    failed = False  # a key set in a file never fails to be fetched

    def __init__(self, keys: dict[str, VerificationKey], origin: str) -> None:
        self.keys = keys
        self.origin = origin

    def get(self, kid: str) -> VerificationKey | None:
        return self.keys.get(kid)


class UrlKeys:
    """Keys fetched from a JWKS URL, cached, refreshed on an unknown kid (rate-limited)."""

    def __init__(self, url: str, *, timeout: float, fetch: Fetch, clock: Clock) -> None:
        self.url = check_url(url)
        self.origin = url
        self.timeout = timeout
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self.failed = False  # the last attempt failed: the set could not be fetched
        self._lock = threading.Lock()

    def get(self, kid: str) -> VerificationKey | None:
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= MAX_AGE
            if (stale or kid not in self._keys) and self._may_try(now):
                self._refresh(now)
            return self._keys.get(kid)

    def _may_try(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= REFRESH_INTERVAL

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            keys = parse_jwks(self._fetch(self.url, self.timeout), strict=False)
        except (requests.RequestException, ValueError) as exc:
            # JwksError and JSON errors are ValueErrors; the old keys stay in use.
            log.warning("JWKS fetch failed: url=%s error=%s", self.url, _describe(exc))
            self.failed = True
            return
        self.failed = False
        self._keys = keys
        self._fetched_at = now
        log.info("JWKS fetched: url=%s keys=%d", self.url, len(keys))


def _describe(exc: Exception) -> str:
    if isinstance(exc, JwksError):
        return f"JwksError: {exc}"
    return type(exc).__name__


def default_clock() -> float:
    return time.time()


@dataclass(frozen=True)
class TrustedClient:
    """One entry of the trusted-clients file: an issuer, its keys, its tenants, allowed jku."""

    iss: str
    keys: StaticKeys | UrlKeys
    tenants: frozenset[str] = frozenset()
    jku: Mapping[str, UrlKeys] = field(default_factory=dict)
    fhir_servers: tuple[str, ...] = ()  # FHIR servers this client may name as fhirServer

    def _sources(self, jku: Any) -> list[StaticKeys | UrlKeys]:
        sources: list[StaticKeys | UrlKeys] = []
        if isinstance(jku, str) and jku in self.jku:
            sources.append(self.jku[jku])
        sources.append(self.keys)
        return sources

    def find_key(self, kid: str, jku: Any) -> VerificationKey | None:
        """The key named `kid`: from the token's jku if this client allows it, else its own."""
        for source in self._sources(jku):
            key = source.get(kid)
            if key is not None:
                return key
        return None

    def keys_unreachable(self, jku: Any) -> bool:
        """Whether a key set `find_key` looked in could not be fetched on its last try (so an
        unknown kid may be a key we could not see, not a key that does not exist)."""
        return any(source.failed for source in self._sources(jku))


# --- the trusted-clients file ---------------------------------------------------------------


def load_trusted_clients(
    path: str,
    *,
    timeout: float = 3.0,
    fetch: Fetch = http_fetch,
    clock: Clock = default_clock,
) -> dict[str, TrustedClient]:
    """Read and check the file named by HER2CDS_TRUSTED_CLIENTS; ConfigError names the variable."""
    file = Path(path)
    document = _read_json(file, f"{VARIABLE}: ", str(path))
    if not isinstance(document, list) or not document:
        raise ConfigError(f"{VARIABLE}: {path} must hold a non-empty JSON array of clients")
    urls: dict[str, UrlKeys] = {}

    def url_keys(url: str) -> UrlKeys:
        if url not in urls:
            urls[url] = UrlKeys(check_url(url), timeout=timeout, fetch=fetch, clock=clock)
        return urls[url]

    clients: dict[str, TrustedClient] = {}
    for number, entry in enumerate(document, start=1):
        where = f"{VARIABLE}: {path}: client {number}"
        try:
            client = _client(entry, file.parent, url_keys)
        except (ConfigError, JwksError) as exc:
            iss = entry.get("iss") if isinstance(entry, dict) else None
            named = f" ({iss})" if isinstance(iss, str) else ""
            raise ConfigError(f"{where}{named}: {exc}") from exc
        if client.iss in clients:
            raise ConfigError(f"{where}: iss {client.iss!r} is listed twice")
        clients[client.iss] = client
    return clients


def _client(entry: Any, base: Path, url_keys: Any) -> TrustedClient:
    if not isinstance(entry, dict):
        raise ConfigError("must be a JSON object")
    unknown = sorted(set(entry) - ENTRY_FIELDS)
    if unknown:
        raise ConfigError(f"unknown field(s) {unknown}; allowed: {sorted(ENTRY_FIELDS)}")
    iss = entry.get("iss")
    if not isinstance(iss, str) or not iss:
        raise ConfigError("needs 'iss', the client's issuer (a non-empty string)")
    given = [k for k in KEY_FIELDS if k in entry]
    if len(given) != 1:
        raise ConfigError("needs exactly one of 'jwks', 'jwks_url', 'jwks_file'")
    keys: StaticKeys | UrlKeys
    if "jwks" in entry:
        keys = StaticKeys(parse_jwks(entry["jwks"]), "inline")
    elif "jwks_file" in entry:
        keys = _file_keys(entry["jwks_file"], base)
    else:
        keys = url_keys(entry["jwks_url"])
    return TrustedClient(
        iss,
        keys,
        _tenants(entry.get("tenant")),
        _jku(entry.get("jku"), url_keys),
        _fhir_servers(entry.get("fhir_servers")),
    )


def _fhir_servers(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError("'fhir_servers' must be an array of FHIR server origins or base URLs")
    try:
        parse_patterns(tuple(value))
    except ServerPatternError as exc:
        raise ConfigError(f"'fhir_servers': {exc}") from exc
    return tuple(value)


def _read_json(path: Path, prefix: str, subject: str) -> Any:
    """A JSON file's content; else ConfigError "<prefix>cannot read <subject>: <why>" or
    "<prefix><subject> is not valid JSON (<why>)"."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{prefix}cannot read {subject}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{prefix}{subject} is not valid JSON ({exc})") from exc


def _file_keys(name: Any, base: Path) -> StaticKeys:
    if not isinstance(name, str) or not name:
        raise ConfigError("'jwks_file' must be a path")
    path = Path(name) if Path(name).is_absolute() else base / name
    document = _read_json(path, "", f"jwks_file {path}")
    try:
        return StaticKeys(parse_jwks(document), str(path))
    except JwksError as exc:
        raise ConfigError(f"jwks_file {path}: {exc}") from exc


def _tenants(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) and v for v in values)
    ):
        raise ConfigError("'tenant' must be a non-empty string or array of strings")
    return frozenset(values)


def _jku(value: Any, url_keys: Any) -> dict[str, UrlKeys]:
    if value is None:
        return {}
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("'jku' must be an array of allowed JWKS URLs")
    return {url: url_keys(url) for url in value}
