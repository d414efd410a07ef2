"""SMART Backend Services: the client-credentials grant with a signed JWT assertion
(RS384 or ES384, hl7.org/fhir/smart-app-launch/backend-services.html), the token cached until
shortly before it expires."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from her2cds_cli.bulk.transport import BulkError, Client, check_tls

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300  # seconds: the spec's ceiling for exp
REFRESH_MARGIN = 30  # seconds before expiry a cached token is replaced

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SigningKey:
    key: PrivateKey
    alg: str
    kid: str


def load_key(path: Path, kid: str | None = None) -> SigningKey:
    """A PEM private key: RSA signs RS384, an EC P-384 key ES384; kid defaults to the key's
    RFC 7638 JWK thumbprint (what a JWKS built from the public key names it)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BulkError(f"cannot read the private key {path}: {exc}.") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise BulkError(f"the RSA key {path} has {key.key_size} bits; 2048 or more needed.")
        alg = "RS384"
    elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        alg = "ES384"
    else:
        raise BulkError(f"the key {path} is neither RSA nor EC P-384 (RS384/ES384 only).")
    return SigningKey(key, alg, kid or thumbprint(key))


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def thumbprint(key: PrivateKey) -> str:
    """RFC 7638 thumbprint (SHA-256) of the public key."""
    pub = key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        members: dict[str, str] = {"e": _b64(nums.e), "kty": "RSA", "n": _b64(nums.n)}
    else:
        pt = pub.public_numbers()
        size = (pub.curve.key_size + 7) // 8
        members = {
            "crv": "P-384",
            "kty": "EC",
            "x": base64.urlsafe_b64encode(pt.x.to_bytes(size, "big")).rstrip(b"=").decode(),
            "y": base64.urlsafe_b64encode(pt.y.to_bytes(size, "big")).rstrip(b"=").decode(),
        }
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def assertion(client_id: str, token_url: str, key: SigningKey, now: float) -> str:
    """The signed client assertion: iss = sub = client_id, aud = the token URL, 5 min, unique jti."""
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": int(now) + ASSERTION_LIFETIME,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key.key, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT"})


def discover(client: Client, base: str) -> dict[str, Any]:
    """[base]/.well-known/smart-configuration (token endpoint, capabilities)."""
    url = base.rstrip("/") + "/.well-known/smart-configuration"
    resp = client.request(
        "GET", url, "SMART discovery", headers={"Accept": "application/json"}, token=False
    )
    if resp.status_code != 200:
        raise BulkError(
            f"SMART discovery failed: {url} answered HTTP {resp.status_code}; give --token-url."
        )
    try:
        config = resp.json()
    except ValueError as exc:
        raise BulkError(f"SMART discovery failed: {url} is not JSON; give --token-url.") from exc
    if not isinstance(config, dict) or not isinstance(config.get("token_endpoint"), str):
        raise BulkError(f"SMART discovery failed: {url} names no token_endpoint; give --token-url.")
    return config


def default_scope(types: list[str], config: dict[str, Any] | None) -> str:
    """Read access to the exported types only: SMART v2 `system/T.rs` when the server says it
    speaks v2 (capability permission-v2), else v1 `system/T.read`."""
    caps = (config or {}).get("capabilities") or []
    suffix = "rs" if "permission-v2" in caps else "read"
    return " ".join(f"system/{t}.{suffix}" for t in types)


@dataclass
class BackendAuth:
    """A TokenSource: the access token of the client-credentials grant, cached until expiry."""

    client: Client
    client_id: str
    key: SigningKey
    token_url: str
    scope: str
    clock: Callable[[], float] = time.time
    _token: str | None = field(default=None, repr=False)
    _expires: float = 0.0

    def header(self) -> str:
        if self._token is None or self.clock() >= self._expires - REFRESH_MARGIN:
            self._fetch()
        return f"Bearer {self._token}"

    def invalidate(self) -> None:
        self._token = None

    def _fetch(self) -> None:
        check_tls(self.token_url)  # the assertion goes out and the token comes back over it
        now = self.clock()
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(self.client_id, self.token_url, self.key, now),
        }
        resp = self.client.request(
            "POST",
            self.token_url,
            "the token request",
            headers={"Accept": "application/json"},
            data=form,
            token=False,
        )
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            err = (
                body.get("error_description") or body.get("error")
                if isinstance(body, dict)
                else None
            )
            raise BulkError(
                f"token request failed: HTTP {resp.status_code} from {self.token_url}"
                + (f": {err}." if err else ".")
            )
        self._token = str(body["access_token"])
        self._expires = now + float(body.get("expires_in") or ASSERTION_LIFETIME)
