"""Client authentication: the CDS client's JWT (CDS Hooks 2.0 "Security and Safety").

With HER2CDS_AUTH=required every call under /cds-services (discovery, hooks, feedback) needs
`Authorization: Bearer <JWT>`. The token is accepted only if all of these hold:
- header: alg ES384 or RS384 (never none, never HMAC), typ JWT when given, a kid;
- iss is a trusted client (HER2CDS_TRUSTED_CLIENTS) and the kid is one of its keys (a jku in
  the token is fetched only when that client lists it; otherwise the configured keys are used);
- the signature verifies with that key, and the key's type fits alg;
- aud (string or array) holds the URL called: HER2CDS_PUBLIC_BASE_URL + path when set, else the
  request URL;
- exp is in the future, iat not in the future, exp - iat at most HER2CDS_JWT_MAX_LIFETIME
  (all with HER2CDS_JWT_CLOCK_SKEW seconds of leeway);
- jti was not used before by the same iss while the token lives (replay cache, in the database);
- tenant is one the client entry names, when it names any.

A failure answers 401 (403 for a valid token of a trusted client whose tenant is not allowed)
with WWW-Authenticate and an OperationOutcome that does not say what was wrong; the log says
why (a reason category), never the token.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from flask import Flask, Response, g, request
from jwt.exceptions import (
    InvalidAudienceError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)
from sqlalchemy.exc import SQLAlchemyError

from cds_service.config import PREFIX, Config, ConfigError
from cds_service.db import Database
from cds_service.errors import operation_outcome
from cds_service.hooks import json_response
from cds_service.jwks import (
    ALGORITHMS,
    Clock,
    Fetch,
    JwksError,
    StaticKeys,
    UrlKeys,
    VerificationKey,
    check_url,
    default_clock,
    http_fetch,
    parse_jwks,
)
from cds_service.replay import ReplayCache

log = logging.getLogger("her2cds.auth")

VARIABLE = f"{PREFIX}TRUSTED_CLIENTS"
PROTECTED_PREFIX = "/cds-services"
MAX_TOKEN_CHARS = 16 * 1024
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
ENTRY_FIELDS = {"iss", "jwks", "jwks_url", "jwks_file", "tenant", "jku", "description"}
KEY_FIELDS = ("jwks", "jwks_url", "jwks_file")

UNAUTHORIZED_MESSAGE = (
    "authentication failed: this service needs a valid CDS Hooks JWT (Authorization: Bearer)"
)
FORBIDDEN_MESSAGE = "this CDS client is not allowed to call this service"


class AuthFailure(Exception):
    """A rejected call. `reason` is a category for the log, never shown to the caller."""

    def __init__(self, reason: str, status: int = 401, *, iss: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.iss = iss


class AuthUnavailable(Exception):
    """The replay cache (database) cannot be reached: the call cannot be checked."""


@dataclass(frozen=True)
class TrustedClient:
    iss: str
    keys: StaticKeys | UrlKeys
    tenants: frozenset[str] = frozenset()
    jku: Mapping[str, UrlKeys] = field(default_factory=dict)

    def find_key(self, kid: str, jku: Any) -> VerificationKey | None:
        sources: list[StaticKeys | UrlKeys] = []
        if isinstance(jku, str) and jku in self.jku:
            sources.append(self.jku[jku])
        sources.append(self.keys)
        for source in sources:
            key = source.get(kid)
            if key is not None:
                return key
        return None


@dataclass(frozen=True)
class Identity:
    """Who called: stored on flask.g.her2cds_client for the rest of the request."""

    iss: str
    tenant: str | None
    jti: str


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
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{VARIABLE}: cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{VARIABLE}: {path} is not valid JSON ({exc})") from exc
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
    return TrustedClient(iss, keys, _tenants(entry.get("tenant")), _jku(entry.get("jku"), url_keys))


def _file_keys(name: Any, base: Path) -> StaticKeys:
    if not isinstance(name, str) or not name:
        raise ConfigError("'jwks_file' must be a path")
    path = Path(name) if Path(name).is_absolute() else base / name
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read jwks_file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"jwks_file {path} is not valid JSON ({exc})") from exc
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


# --- verification ---------------------------------------------------------------------------


class Authenticator:
    """Verifies one Authorization header against the trusted clients."""

    def __init__(
        self,
        clients: Mapping[str, TrustedClient],
        replay: ReplayCache,
        *,
        clock: Clock = default_clock,
        skew: float = 60.0,
        max_lifetime: float = 3600.0,
    ) -> None:
        self.clients = clients
        self.replay = replay
        self.clock = clock
        self.skew = skew
        self.max_lifetime = max_lifetime

    def authenticate(self, authorization: str | None, url: str) -> Identity:
        token = _bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except InvalidTokenError as exc:
            raise AuthFailure("malformed") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise AuthFailure("algorithm")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise AuthFailure("malformed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthFailure("no-kid")
        iss = unverified.get("iss")
        client = self.clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise AuthFailure("unknown-issuer", iss=iss if isinstance(iss, str) else None)
        key = client.find_key(kid, header.get("jku"))
        if key is None:
            raise AuthFailure("unknown-kid", iss=client.iss)
        if key.algorithm != alg:
            raise AuthFailure("algorithm", iss=client.iss)
        claims = self._verify(token, key, url, client.iss)
        exp = self._check_times(claims, client.iss)
        tenant = claims.get("tenant")
        if client.tenants and not (isinstance(tenant, str) and tenant in client.tenants):
            raise AuthFailure("tenant", 403, iss=client.iss)
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthFailure("malformed", iss=client.iss)
        try:
            first = self.replay.first_use(client.iss, jti, exp + self.skew)
        except SQLAlchemyError as exc:
            raise AuthUnavailable(type(exc).__name__) from exc
        if not first:
            raise AuthFailure("replay", iss=client.iss)
        return Identity(client.iss, tenant if isinstance(tenant, str) else None, jti)

    def _verify(self, token: str, key: VerificationKey, url: str, iss: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[key.algorithm],
                audience=url,
                issuer=iss,
                # times are checked below against our (injectable) clock
                options={
                    "require": REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except InvalidSignatureError as exc:
            raise AuthFailure("signature", iss=iss) from exc
        except InvalidAudienceError as exc:
            raise AuthFailure("audience", iss=iss) from exc
        except MissingRequiredClaimError as exc:
            raise AuthFailure("missing-claim", iss=iss) from exc
        except InvalidTokenError as exc:
            raise AuthFailure("malformed", iss=iss) from exc
        return claims

    def _check_times(self, claims: Mapping[str, Any], iss: str) -> float:
        exp, iat, nbf = (_number(claims.get(name)) for name in ("exp", "iat", "nbf"))
        if exp is None or iat is None or ("nbf" in claims and nbf is None):
            raise AuthFailure("malformed", iss=iss)
        now = self.clock()
        if exp <= now - self.skew:
            raise AuthFailure("expired", iss=iss)
        if iat > now + self.skew or (nbf is not None and nbf > now + self.skew):
            raise AuthFailure("not-yet-valid", iss=iss)
        if not 0 < exp - iat <= self.max_lifetime:
            raise AuthFailure("lifetime", iss=iss)
        return exp


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthFailure("missing")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthFailure("not-bearer")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthFailure("malformed")
    return token


# --- Flask wiring ---------------------------------------------------------------------------


def expected_audience(public_base_url: str) -> str:
    """The URL the client called, as it must appear in aud."""
    if public_base_url:
        return public_base_url.rstrip("/") + request.path
    return request.base_url


def is_protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def _printable(value: str | None, limit: int = 80) -> str:
    if value is None:
        return "-"
    cleaned = "".join(c if c.isprintable() else "?" for c in value[:limit])
    return cleaned + ("…" if len(value) > limit else "")


def rejection(failure: AuthFailure) -> Response:
    """401/403 with WWW-Authenticate (RFC 6750) and an OperationOutcome without details."""
    if failure.status == 403:
        response = json_response(operation_outcome(FORBIDDEN_MESSAGE, "forbidden"), 403)
        error = "insufficient_scope"
    else:
        response = json_response(operation_outcome(UNAUTHORIZED_MESSAGE, "login"), 401)
        error = {"missing": "", "not-bearer": "invalid_request"}.get(
            failure.reason, "invalid_token"
        )
    challenge = 'Bearer realm="her2-cds"'
    if error:
        challenge += f', error="{error}"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def init_auth(app: Flask, cfg: Config) -> None:
    """With auth required: load the trusted clients (ConfigError if bad) and guard /cds-services.

    Not guarded: CORS preflight (OPTIONS carries no Authorization by design) and everything
    outside /cds-services (/healthz, /readyz, /metrics: keep those off the public network).
    """
    if cfg.auth != "required":
        return
    clock: Clock = cfg.extra.get("auth_clock", default_clock)
    fetch: Fetch = cfg.extra.get("jwks_fetch", http_fetch)
    clients = load_trusted_clients(
        cfg.trusted_clients, timeout=cfg.jwks_timeout, fetch=fetch, clock=clock
    )
    db = app.extensions["her2cds.db"]
    assert isinstance(db, Database)
    replay = ReplayCache(db.engine, clock)
    try:
        replay.create_table()
    except SQLAlchemyError as exc:
        log.warning("replay cache table not created at start-up: %s", type(exc).__name__)
    authenticator = Authenticator(
        clients, replay, clock=clock, skew=cfg.jwt_clock_skew, max_lifetime=cfg.jwt_max_lifetime
    )
    app.extensions["her2cds.auth"] = authenticator
    if not cfg.public_base_url:
        log.warning(
            "%sPUBLIC_BASE_URL is not set: the JWT aud check trusts each request's Host header; "
            "set it to the service's public URL in production",
            PREFIX,
        )
    log.info("client authentication required; trusted issuers: %s", ", ".join(sorted(clients)))

    @app.before_request
    def _authenticate() -> Response | None:
        if request.method == "OPTIONS" or not is_protected(request.path):
            return None
        try:
            g.her2cds_client = authenticator.authenticate(
                request.headers.get("Authorization"), expected_audience(cfg.public_base_url)
            )
        except AuthFailure as failure:
            g.her2cds_auth_failure = failure.reason
            log.warning(
                "authentication failed: reason=%s status=%d path=%s iss=%s",
                failure.reason,
                failure.status,
                _printable(request.path),
                _printable(failure.iss),
            )
            return rejection(failure)
        except AuthUnavailable as exc:
            log.error("authentication unavailable: replay cache error %s", exc)
            return json_response(
                operation_outcome("the service cannot check credentials now", "transient"), 503
            )
        log.debug("authenticated: iss=%s path=%s", g.her2cds_client.iss, _printable(request.path))
        return None
