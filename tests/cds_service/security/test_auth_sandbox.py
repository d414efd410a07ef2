"""The public CDS Hooks sandbox's real requests verify (captures in ../shared/captures)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from bench.shared import missing
from cds_service.security.auth import Authenticator, AuthFailure
from cds_service.state import service_state
from tests.auth_support import (
    MINTED,
    FakeClock,
    assert_rejected,
    authenticator_of,
    make_app,
    no_token_in_logs,
    service_log,
    write_clients,
)
from tests.conftest import CAPTURES, ROOT

__all__ = ["no_token_in_logs", "service_log"]

SANDBOX_JWKS = CAPTURES / "sandbox-jwks.json"
EXAMPLE = ROOT / "examples" / "trusted-clients.sandbox.json"
SANDBOX_JWKS_URL = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
CAPTURED = ["sandbox-patient-view.json", "sandbox-order-select.json", "sandbox-order-sign.json"]

pytestmark = [
    pytest.mark.usefixtures("no_token_in_logs"),
    pytest.mark.skipif(not SANDBOX_JWKS.exists(), reason=missing(SANDBOX_JWKS)),
]


def capture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURES / name).read_text(encoding="utf-8"))
    MINTED.append(data["headers"]["Authorization"].removeprefix("Bearer "))  # for the log checks
    return data


class CapturedJwks:
    """Stands in for the network: answers the sandbox's JWKS URL with the captured key set."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str, timeout: float) -> Any:
        self.urls.append(url)
        assert url == SANDBOX_JWKS_URL
        return json.loads(SANDBOX_JWKS.read_text(encoding="utf-8"))


def test_captured_patient_view_verifies_with_the_example_file(tmp_path: Path) -> None:
    pv = capture("sandbox-patient-view.json")
    claims = pv["jwt"]["claims"]
    assert claims["aud"] == "http://127.0.0.1:8091/cds-services/her2-pv"
    fetch = CapturedJwks()
    clock = FakeClock(claims["iat"] + 10)  # the capture's token expired minutes after it was sent
    app = make_app(
        tmp_path,
        clock,
        clients=EXAMPLE,
        public_base_url="http://127.0.0.1:8091",
        extra={"jwks_fetch": fetch},
    )
    http = app.test_client()
    headers = {"Authorization": pv["headers"]["Authorization"], "Origin": pv["headers"]["Origin"]}
    first = http.post("/cds-services/her2-pv", json=pv["body"], headers=headers)
    # authenticated; the sandbox was pointed at a service id we do not have
    assert first.status_code == 404
    assert fetch.urls == [SANDBOX_JWKS_URL]  # jwks_url and the allowed jku share one cache
    assert_rejected(http.post("/cds-services/her2-pv", json=pv["body"], headers=headers))  # replay


@pytest.mark.parametrize("name", CAPTURED)
def test_captured_requests_verify_with_a_local_jwks_file(tmp_path: Path, name: str) -> None:
    """The offline way: keys from a file; the token's jku is not on the list, so never fetched."""
    data = capture(name)
    claims = data["jwt"]["claims"]
    clients = write_clients(
        tmp_path / "clients.json",
        [{"iss": "https://sandbox.cds-hooks.org", "jwks_file": str(SANDBOX_JWKS)}],
    )

    def no_network(url: str, timeout: float) -> Any:
        raise AssertionError(f"fetched {url}")

    clock = FakeClock(claims["iat"] + 1)
    app = make_app(tmp_path, clock, clients=clients, extra={"jwks_fetch": no_network})
    auth = service_state(app).auth
    assert auth is not None
    assert isinstance(auth, Authenticator)
    header = data["headers"]["Authorization"]
    identity = auth.authenticate(header, claims["aud"])
    assert (identity.iss, identity.jti, identity.tenant) == (claims["iss"], claims["jti"], None)


@pytest.mark.parametrize(
    ("reason", "clock_offset", "url"),
    [
        ("expired", 300 + 61, None),  # exp = iat + 300; 60 s of skew
        ("audience", 1, "https://cds.example.org/cds-services/her2-pv"),
    ],
)
def test_captured_token_is_still_checked(
    tmp_path: Path, reason: str, clock_offset: int, url: str | None
) -> None:
    pv = capture("sandbox-patient-view.json")
    claims = pv["jwt"]["claims"]
    clients = write_clients(
        tmp_path / "clients.json",
        [{"iss": "https://sandbox.cds-hooks.org", "jwks_file": str(SANDBOX_JWKS)}],
    )
    app = make_app(tmp_path, FakeClock(claims["iat"] + clock_offset), clients=clients)
    with pytest.raises(AuthFailure) as failure:
        authenticator_of(app).authenticate(pv["headers"]["Authorization"], url or claims["aud"])
    assert failure.value.reason == reason


def test_captured_token_does_not_verify_once_tampered(tmp_path: Path) -> None:
    pv = capture("sandbox-patient-view.json")
    claims = pv["jwt"]["claims"]
    head, _payload, signature = pv["headers"]["Authorization"].removeprefix("Bearer ").split(".")
    forged = dict(claims, aud="http://127.0.0.1:8091/cds-services/her2-next-line")
    payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    clients = write_clients(
        tmp_path / "clients.json",
        [{"iss": "https://sandbox.cds-hooks.org", "jwks_file": str(SANDBOX_JWKS)}],
    )
    app = make_app(tmp_path, FakeClock(claims["iat"] + 1), clients=clients)
    with pytest.raises(AuthFailure) as failure:
        authenticator_of(app).authenticate(f"Bearer {head}.{payload}.{signature}", forged["aud"])
    assert failure.value.reason == "signature"
