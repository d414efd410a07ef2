"""Helpers for the authentication tests: keys, token minting, a clock, apps, log checks.

No tests here; the test_auth*.py modules import from it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from werkzeug.test import TestResponse

from cds_service import create_app
from cds_service.security.auth import FORBIDDEN_MESSAGE, UNAUTHORIZED_MESSAGE, Authenticator
from cds_service.state import service_state

ISS = "https://ehr.example.org"
TENANT_ISS = "https://tenant-ehr.example.org"
BASE = "https://cds.example.org"
DISCOVERY = f"{BASE}/cds-services"
HOOK = f"{BASE}/cds-services/her2-next-line"

# Every token a test mints, so that the log checks can look for each of them.
MINTED: list[str] = []
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")
BASE64URL_RUN = re.compile(r"[A-Za-z0-9_-]{20,}")


class FakeClock:
    """An injectable clock (seconds since the epoch) that tests move by hand."""

    def __init__(self, now: float | None = None) -> None:
        self.now = float(int(time.time()) if now is None else now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Keys:
    es: ec.EllipticCurvePrivateKey
    rsa: rsa.RSAPrivateKey
    other_es: ec.EllipticCurvePrivateKey  # not trusted: signs "bad signature" tokens
    es256: ec.EllipticCurvePrivateKey  # P-256, for an ES256 token

    def jwk(self, which: str, kid: str) -> dict[str, Any]:
        keys: dict[str, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey] = {
            "es": self.es,
            "rsa": self.rsa,
            "other_es": self.other_es,
        }
        key = keys[which]
        alg = "RS384" if which == "rsa" else "ES384"
        data: dict[str, Any] = json.loads(jwt.get_algorithm_by_name(alg).to_jwk(key.public_key()))
        data.update(kid=kid, use="sig", alg=alg)
        return data

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk("es", "ec-1"), self.jwk("rsa", "rsa-1")]}


@functools.lru_cache(maxsize=1)
def keys() -> Keys:
    return Keys(
        es=ec.generate_private_key(ec.SECP384R1()),
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        other_es=ec.generate_private_key(ec.SECP384R1()),
        es256=ec.generate_private_key(ec.SECP256R1()),
    )


def claims(
    aud: Any, now: float, *, iss: str = ISS, lifetime: int = 300, **extra: Any
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": int(now),
        "exp": int(now) + lifetime,
        "jti": str(uuid.uuid4()),
    }
    payload.update(extra)
    return {k: v for k, v in payload.items() if v is not None}


def mint(
    aud: Any,
    now: float,
    *,
    alg: str = "ES384",
    kid: str | None = None,
    key: Any = None,
    headers: dict[str, Any] | None = None,
    **claim_overrides: Any,
) -> str:
    """A signed JWT as a CDS client makes it; claim_overrides set (or, with None, drop) claims."""
    if key is None:
        key = keys().rsa if alg.startswith("RS") else keys().es
    if kid is None:
        kid = "rsa-1" if alg.startswith("RS") else "ec-1"
    header = {"typ": "JWT", "kid": kid, **(headers or {})}
    token = jwt.encode(claims(aud, now, **claim_overrides), key, algorithm=alg, headers=header)
    MINTED.append(token)
    return token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT refuses to make: alg none (secret None) or HS384 with `secret` as the key."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = b""
    if secret is not None:
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}[header["alg"]]
        signature = hmac.new(secret, signing_input.encode(), digest).digest()
    token = f"{signing_input}.{_b64(signature)}"
    MINTED.append(token)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_clients(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def default_clients(tmp_path: Path) -> Path:
    """Two trusted clients: ISS (inline JWKS, ES384 + RS384), TENANT_ISS (a jwks_file, a tenant)."""
    (tmp_path / "tenant-jwks.json").write_text(
        json.dumps({"keys": [keys().jwk("es", "ec-t")]}), encoding="utf-8"
    )
    return write_clients(
        tmp_path / "trusted-clients.json",
        [
            {"iss": ISS, "jwks": keys().jwks()},
            {"iss": TENANT_ISS, "jwks_file": "tenant-jwks.json", "tenant": ["org-a", "org-b"]},
        ],
    )


def make_app(
    tmp_path: Path,
    clock: FakeClock,
    *,
    clients: Path | None = None,
    db_name: str = "auth.db",
    **overrides: Any,
) -> Flask:
    extra = {"auth_clock": clock, **overrides.pop("extra", {})}
    settings: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / db_name}",
        "testing": True,
        "auth": "required",
        "trusted_clients": str(clients or default_clients(tmp_path)),
        "public_base_url": BASE,
        "extra": extra,
        **overrides,
    }
    return create_app(settings)


def assert_rejected(resp: TestResponse, status: int = 401) -> None:
    """A rejection: status, a Bearer challenge, and an OperationOutcome that tells nothing more."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="her2-cds"')
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome"
    message = UNAUTHORIZED_MESSAGE if status == 401 else FORBIDDEN_MESSAGE
    assert body["issue"] == [
        {
            "severity": "error",
            "code": "login" if status == 401 else "forbidden",
            "diagnostics": message,
        }
    ]


def assert_no_token(text: str) -> None:
    """No JWT, and no piece of 20 characters or more of any token the tests used, in `text`."""
    assert not JWT_SHAPE.search(text), "a JWT appears in the log"
    minted = "\n".join(MINTED)
    for run in BASE64URL_RUN.findall(text):
        for start in range(len(run) - 19):
            piece = run[start : start + 20]
            assert piece not in minted, f"a piece of a token appears in the log: {piece[:6]}…"


@pytest.fixture(scope="session")
def service_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The service's log written to a file, as an operator would keep it, for the whole session."""
    path = tmp_path_factory.mktemp("log") / "her2cds.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield path
    root.removeHandler(handler)
    handler.close()


@pytest.fixture
def no_token_in_logs(caplog: pytest.LogCaptureFixture, service_log: Path) -> Iterator[None]:
    """After each test: neither the captured log records nor the log file hold a token."""
    caplog.set_level(logging.DEBUG)
    yield
    assert_no_token(caplog.text)
    for record in caplog.records:
        assert_no_token(str(record.args))
    assert_no_token(service_log.read_text(encoding="utf-8"))


def authenticator_of(app: Flask) -> Authenticator:
    """The app's JWT verifier (apps built by make_app always have one)."""
    auth = service_state(app).auth
    assert auth is not None, "this app verifies no JWTs"
    return auth
