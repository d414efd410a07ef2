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
why (a reason category), never the token. `serve_config` decides whether `her2-cds serve`
requires authentication (README, Authentication).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
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

from cds_service.config import PREFIX, Config, ConfigError, from_env
from cds_service.errors import Her2CdsError
from cds_service.responses import outcome_response
from cds_service.security.jwks import (
    ALGORITHMS,
    Clock,
    Fetch,
    TrustedClient,
    VerificationKey,
    default_clock,
    http_fetch,
    is_loopback_host,
    load_trusted_clients,
)
from cds_service.security.replay import ReplayCache
from cds_service.storage.db import Database

log = logging.getLogger("her2cds.auth")

PROTECTED_PREFIX = "/cds-services"
MAX_TOKEN_CHARS = 16 * 1024
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]

UNAUTHORIZED_MESSAGE = (
    "authentication failed: this service needs a valid CDS Hooks JWT (Authorization: Bearer)"
)
FORBIDDEN_MESSAGE = "this CDS client is not allowed to call this service"


class AuthFailure(Her2CdsError):
    """A rejected call. `reason` is a category for the log, never shown to the caller."""

    def __init__(self, reason: str, status: int = 401, *, iss: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.iss = iss


class AuthUnavailable(Her2CdsError):
    """The replay cache (database) cannot be reached: the call cannot be checked."""


@dataclass(frozen=True)
class Identity:
    """Who called: stored on flask.g.her2cds_client for the rest of the request."""

    iss: str
    tenant: str | None
    jti: str


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
            unreachable = client.keys_unreachable(header.get("jku"))
            raise AuthFailure("jwks-unreachable" if unreachable else "unknown-kid", iss=client.iss)
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
        response = outcome_response(FORBIDDEN_MESSAGE, "forbidden", 403)
        error = "insufficient_scope"
    else:
        response = outcome_response(UNAUTHORIZED_MESSAGE, "login", 401)
        error = {"missing": "", "not-bearer": "invalid_request"}.get(
            failure.reason, "invalid_token"
        )
    challenge = 'Bearer realm="her2-cds"'
    if error:
        challenge += f', error="{error}"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def init_auth(app: Flask, cfg: Config, db: Database) -> Authenticator | None:
    """With auth required: load the trusted clients (ConfigError if bad), guard /cds-services
    and return the authenticator (None when authentication is off; create_app keeps it).

    Not guarded: CORS preflight (OPTIONS carries no Authorization by design) and everything
    outside /cds-services (/healthz, /readyz, /metrics: keep those off the public network).
    """
    if cfg.auth != "required":
        return None
    clock: Clock = cfg.extra.get("auth_clock", default_clock)
    fetch: Fetch = cfg.extra.get("jwks_fetch", http_fetch)
    clients = load_trusted_clients(
        cfg.trusted_clients, timeout=cfg.jwks_timeout, fetch=fetch, clock=clock
    )
    replay = ReplayCache(db.engine, clock)
    try:
        replay.create_table()
    except SQLAlchemyError as exc:
        log.warning("replay cache table not created at start-up: %s", type(exc).__name__)
    authenticator = Authenticator(
        clients, replay, clock=clock, skew=cfg.jwt_clock_skew, max_lifetime=cfg.jwt_max_lifetime
    )
    announced: list[bool] = []

    def announce() -> None:
        """Once per process, at its first guarded call: by then the log is set up."""
        announced.append(True)
        log.info("client authentication required; trusted issuers: %s", ", ".join(sorted(clients)))
        if not cfg.public_base_url:
            log.warning(
                "%sPUBLIC_BASE_URL is not set: the JWT aud check trusts each request's Host "
                "header; set it to the service's public URL in production",
                PREFIX,
            )

    @app.before_request
    def _authenticate() -> Response | None:
        if request.method == "OPTIONS" or not is_protected(request.path):
            return None
        if not announced:
            announce()
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
            return outcome_response("the service cannot check credentials now", "transient", 503)
        log.debug("authenticated: iss=%s path=%s", g.her2cds_client.iss, _printable(request.path))
        return None

    return authenticator


# --- `her2-cds serve`: is authentication on? ------------------------------------------------


SANDBOX_CLIENTS_EXAMPLES = (
    "examples/trusted-clients.sandbox.json",  # in the repository
    "/etc/her2cds/trusted-clients.sandbox.json",  # in the Docker image (Dockerfile)
)


def sandbox_clients_example() -> str:
    """The trusted-clients file for the public sandbox, as a path that exists here."""
    found = [p for p in SANDBOX_CLIENTS_EXAMPLES if os.path.isfile(p)]
    return found[0] if found else SANDBOX_CLIENTS_EXAMPLES[0]


def serve_config(
    host: str | None,
    *,
    auth: str | None = None,
    dev: bool = False,
    env: Mapping[str, str] | None = None,
) -> Config:
    """The configuration `her2-cds serve` runs with; it decides client authentication.

    `auth` (--auth), else HER2CDS_AUTH, else `off` on a loopback address (or with `dev`, the
    --allow-no-auth flag) and `required` on any other. Without `dev`, auth `off` on a
    non-loopback address is refused, so the service never answers the network without
    authentication by accident. The trusted
    clients file is checked here, before any server starts. ConfigError says what to do.
    """
    source = os.environ if env is None else env
    host = host or source.get(f"{PREFIX}HOST") or "127.0.0.1"
    loopback = is_loopback_host(host)
    explicit = auth or source.get(f"{PREFIX}AUTH")
    decided = explicit or ("off" if loopback or dev else "required")
    if not explicit and decided == "required" and not source.get(f"{PREFIX}TRUSTED_CLIENTS"):
        raise ConfigError(
            f"client authentication is required on {host} (not a loopback address), "
            f"so {PREFIX}TRUSTED_CLIENTS must name a trusted-clients JSON file "
            f"(to try it: {sandbox_clients_example()}); "
            "or pass --allow-no-auth to serve without authentication"
        )
    cfg = from_env(source, auth=decided)
    if cfg.auth == "off" and not loopback and not dev:
        raise ConfigError(
            f"refusing to serve on {host} without client authentication; "
            f"set {PREFIX}AUTH=required and {PREFIX}TRUSTED_CLIENTS, "
            "or pass --allow-no-auth to serve without it"
        )
    if cfg.auth == "required":
        load_trusted_clients(cfg.trusted_clients, timeout=cfg.jwks_timeout)
    elif not loopback:
        print(
            f"her2-cds: client authentication is OFF: anyone who can reach {host} may call "
            "the service (see README, Authentication)",
            file=sys.stderr,
        )
    return cfg
