"""HER2CDS_AUTH=required: every call under /cds-services needs the CDS client's JWT."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cds_service import create_app
from cds_service.security.auth import AuthFailure
from cds_service.state import service_state
from tests.auth_support import (
    BASE,
    DISCOVERY,
    HOOK,
    ISS,
    TENANT_ISS,
    FakeClock,
    assert_rejected,
    bearer,
    hand_made,
    keys,
    make_app,
    mint,
    no_token_in_logs,
    service_log,
)
from tests.conftest import hook_request, load_fixture

__all__ = ["no_token_in_logs", "service_log"]  # fixtures used by name

pytestmark = pytest.mark.usefixtures("no_token_in_logs")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth_app(tmp_path: Path, clock: FakeClock) -> Iterator[Flask]:
    yield make_app(tmp_path, clock)


@pytest.fixture
def http(auth_app: Flask) -> FlaskClient:
    return auth_app.test_client()


def call_hook(http: FlaskClient, token: str | None, url: str = HOOK) -> Any:
    headers = bearer(token) if token is not None else {}
    body = hook_request(load_fixture("her2_de_novo"))
    return http.post(url.removeprefix(BASE), json=body, headers=headers)


def feedback_route(app: Flask) -> bool:
    return any(rule.rule.endswith("/feedback") for rule in app.url_map.iter_rules())


# --- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
@pytest.mark.parametrize("as_array", [False, True], ids=["aud-string", "aud-array"])
def test_valid_token_opens_discovery(
    http: FlaskClient, clock: FakeClock, alg: str, as_array: bool
) -> None:
    aud: Any = [DISCOVERY, "https://other.example.org/x"] if as_array else DISCOVERY
    resp = http.get("/cds-services", headers=bearer(mint(aud, clock(), alg=alg)))
    assert resp.status_code == 200
    assert {s["id"] for s in resp.get_json()["services"]} >= {"her2-next-line"}


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
@pytest.mark.parametrize("as_array", [False, True], ids=["aud-string", "aud-array"])
def test_valid_token_opens_a_hook(
    http: FlaskClient, clock: FakeClock, alg: str, as_array: bool
) -> None:
    resp = call_hook(http, mint([HOOK] if as_array else HOOK, clock(), alg=alg))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["cards"]


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
@pytest.mark.parametrize("as_array", [False, True], ids=["aud-string", "aud-array"])
def test_feedback_needs_and_accepts_a_token(
    auth_app: Flask, http: FlaskClient, clock: FakeClock, alg: str, as_array: bool
) -> None:
    path = "/cds-services/her2-next-line/feedback"
    url = BASE + path
    body = {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "outcomeTimestamp": "2026-01-01T00:00:00Z",
            }
        ]
    }
    assert_rejected(http.post(path, json=body))
    resp = http.post(
        path, json=body, headers=bearer(mint([url] if as_array else url, clock(), alg=alg))
    )
    if feedback_route(auth_app):
        assert 200 <= resp.status_code < 300, resp.get_data(as_text=True)
    else:  # the feedback endpoint is not on this branch: authentication passed, routing did not
        assert resp.status_code == 404


def test_without_public_base_url_aud_is_the_request_url(tmp_path: Path, clock: FakeClock) -> None:
    http = make_app(tmp_path, clock, public_base_url="").test_client()
    ok = http.get("/cds-services", headers=bearer(mint("http://localhost/cds-services", clock())))
    assert ok.status_code == 200
    assert_rejected(http.get("/cds-services", headers=bearer(mint(DISCOVERY, clock()))))


def test_tenant_is_checked_when_the_client_names_one(http: FlaskClient, clock: FakeClock) -> None:
    def token(**extra: Any) -> dict[str, str]:
        return bearer(mint(DISCOVERY, clock(), iss=TENANT_ISS, kid="ec-t", **extra))

    assert http.get("/cds-services", headers=token(tenant="org-b")).status_code == 200
    # a valid token of a trusted client, for a tenant it is not allowed: forbidden, not 401
    assert_rejected(http.get("/cds-services", headers=token(tenant="org-z")), 403)
    assert_rejected(http.get("/cds-services", headers=token()), 403)
    assert_rejected(http.get("/cds-services", headers=token(tenant=["org-a"])), 403)


def test_tenant_in_token_is_ignored_when_the_client_names_none(
    http: FlaskClient, clock: FakeClock
) -> None:
    resp = http.get("/cds-services", headers=bearer(mint(DISCOVERY, clock(), tenant="any")))
    assert resp.status_code == 200


def test_clock_skew_is_tolerated(http: FlaskClient, clock: FakeClock) -> None:
    issued_ahead = mint(DISCOVERY, clock() + 30)  # the client's clock is 30 s ahead
    assert http.get("/cds-services", headers=bearer(issued_ahead)).status_code == 200
    just_expired = mint(DISCOVERY, clock() - 330)  # exp 30 s ago: within the 60 s skew
    assert http.get("/cds-services", headers=bearer(just_expired)).status_code == 200


# --- rejected ------------------------------------------------------------------------------


def _payload(now: float, jti: str) -> dict[str, Any]:
    return {"iss": ISS, "aud": DISCOVERY, "iat": int(now), "exp": int(now) + 300, "jti": jti}


def _bad_signature(now: float) -> str:
    head, body, _ = mint(DISCOVERY, now).split(".")
    return f"{head}.{body}.{mint(DISCOVERY, now, key=keys().other_es).split('.')[2]}"


def _rsa_public_pem() -> bytes:
    return keys().rsa.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


REJECTED: dict[str, tuple[str, Callable[[float], str | None]]] = {  # case: (logged reason, token)
    "no token": (
        "missing",
        lambda now: None,
    ),
    "bad signature": (
        "signature",
        _bad_signature,
    ),
    "untrusted key under a trusted kid": (
        "signature",
        lambda now: mint(DISCOVERY, now, key=keys().other_es),
    ),
    "unknown kid": (
        "unknown-kid",
        lambda now: mint(DISCOVERY, now, kid="who-knows"),
    ),
    "unknown iss": (
        "unknown-issuer",
        lambda now: mint(DISCOVERY, now, iss="https://evil.example.org"),
    ),
    "no iss": (
        "unknown-issuer",
        lambda now: mint(DISCOVERY, now, iss=None),
    ),
    "expired": (
        "expired",
        lambda now: mint(DISCOVERY, now - 3600),
    ),
    "issued in the future": (
        "not-yet-valid",
        lambda now: mint(DISCOVERY, now + 600),
    ),
    "not before in the future": (
        "not-yet-valid",
        lambda now: mint(DISCOVERY, now, nbf=int(now) + 600),
    ),
    "lifetime over the maximum": (
        "lifetime",
        lambda now: mint(DISCOVERY, now, lifetime=2 * 3600),
    ),
    "wrong aud": (
        "audience",
        lambda now: mint(HOOK, now),
    ),
    "wrong aud array": (
        "audience",
        lambda now: mint([HOOK, BASE], now),
    ),
    "aud of another host": (
        "audience",
        lambda now: mint("https://evil.example.org/cds-services", now),
    ),
    "no aud": (
        "missing-claim",
        lambda now: mint(None, now),
    ),
    "no exp": (
        "missing-claim",
        lambda now: mint(DISCOVERY, now, exp=None),
    ),
    "no iat": (
        "missing-claim",
        lambda now: mint(DISCOVERY, now, iat=None),
    ),
    "no jti": (
        "missing-claim",
        lambda now: mint(DISCOVERY, now, jti=None),
    ),
    "exp not a number": (
        "malformed",
        lambda now: mint(DISCOVERY, now, exp="soon"),
    ),
    "HS256 keyed with the public key": (
        "algorithm",
        lambda now: hand_made(
            {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, _payload(now, "h1"), _rsa_public_pem()
        ),
    ),
    "HS384": (
        "algorithm",
        lambda now: hand_made(
            {"alg": "HS384", "typ": "JWT", "kid": "ec-1"}, _payload(now, "h2"), b"secret"
        ),
    ),
    "alg none": (
        "algorithm",
        lambda now: hand_made(
            {"alg": "none", "typ": "JWT", "kid": "ec-1"}, _payload(now, "n1"), None
        ),
    ),
    "alg None": (
        "algorithm",
        lambda now: hand_made(
            {"alg": "None", "typ": "JWT", "kid": "ec-1"}, _payload(now, "n2"), None
        ),
    ),
    "ES256": (
        "algorithm",
        lambda now: mint(DISCOVERY, now, alg="ES256", key=keys().es256),
    ),
    "RS256": (
        "algorithm",
        lambda now: mint(DISCOVERY, now, alg="RS256"),
    ),
    "ES384 header on the RSA key": (
        "algorithm",
        lambda now: mint(DISCOVERY, now, alg="ES384", kid="rsa-1"),
    ),
    "no kid": (
        "no-kid",
        lambda now: jwt.encode(
            _payload(now, "k1"), keys().es, algorithm="ES384", headers={"typ": "JWT"}
        ),
    ),
    "typ not JWT": (
        "malformed",
        lambda now: mint(DISCOVERY, now, headers={"typ": "at+jwt"}),
    ),
    "malformed: one segment": (
        "malformed",
        lambda now: "abc",
    ),
    "malformed: junk segments": (
        "malformed",
        lambda now: "a.b.c",
    ),
    "malformed: payload not JSON": (
        "malformed",
        lambda now: "eyJhbGciOiJFUzM4NCJ9.bm90IGpzb24.c2ln",
    ),
    "malformed: header only": (
        "malformed",
        lambda now: mint(DISCOVERY, now).split(".")[0] + "..",
    ),
}


@pytest.mark.parametrize("case", REJECTED)
def test_rejected_with_401_and_no_details(
    http: FlaskClient, clock: FakeClock, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    reason, make = REJECTED[case]
    token = make(clock())
    resp = http.get("/cds-services", headers=bearer(token) if token is not None else {})
    assert_rejected(resp)
    assert f"reason={reason} " in caplog.text


@pytest.mark.parametrize(
    "case", ["no token", "bad signature", "expired", "alg none", "unknown kid"]
)
def test_rejected_on_hooks_too(http: FlaskClient, clock: FakeClock, case: str) -> None:
    token = REJECTED[case][1](clock())
    assert_rejected(call_hook(http, token))
    # the service id is not revealed to an unauthenticated caller either
    assert_rejected(call_hook(http, token, url=f"{BASE}/cds-services/no-such-service"))


def test_replayed_jti_is_rejected(http: FlaskClient, clock: FakeClock) -> None:
    token = mint(HOOK, clock())
    assert call_hook(http, token).status_code == 200
    assert_rejected(call_hook(http, token))
    # the same jti in a new token (new exp) from the same issuer is a replay too
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert_rejected(call_hook(http, mint(HOOK, clock() + 5, jti=jti)))
    # ... but the same jti from another issuer is another nonce
    other = mint(DISCOVERY, clock(), iss=TENANT_ISS, kid="ec-t", jti=jti, tenant="org-a")
    assert http.get("/cds-services", headers=bearer(other)).status_code == 200


def test_jti_may_come_back_after_its_token_expired(http: FlaskClient, clock: FakeClock) -> None:
    first = mint(DISCOVERY, clock(), lifetime=120)
    jti = jwt.decode(first, options={"verify_signature": False})["jti"]
    assert http.get("/cds-services", headers=bearer(first)).status_code == 200
    clock.advance(120 + 60 + 1)  # lifetime + skew: the first token is dead
    again = mint(DISCOVERY, clock(), jti=jti)
    assert http.get("/cds-services", headers=bearer(again)).status_code == 200
    assert_rejected(http.get("/cds-services", headers=bearer(again)))


def test_authorization_scheme_must_be_bearer(http: FlaskClient, clock: FakeClock) -> None:
    token = mint(DISCOVERY, clock())
    for header in (f"Basic {token}", token, "Bearer", f"Bearer {token} extra"):
        resp = http.get("/cds-services", headers={"Authorization": header})
        assert_rejected(resp)
        assert 'error="invalid_request"' in resp.headers["WWW-Authenticate"]
    # the scheme is case-insensitive (RFC 7235)
    assert (
        http.get("/cds-services", headers={"Authorization": f"bearer {token}"}).status_code == 200
    )


def test_challenge_follows_rfc_6750(http: FlaskClient, clock: FakeClock) -> None:
    missing = http.get("/cds-services")
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="her2-cds"'
    expired = http.get("/cds-services", headers=bearer(mint(DISCOVERY, clock() - 3600)))
    assert expired.headers["WWW-Authenticate"] == 'Bearer realm="her2-cds", error="invalid_token"'


def test_rejections_carry_cors_headers_for_browser_clients(http: FlaskClient) -> None:
    resp = http.get("/cds-services", headers={"Origin": "http://127.0.0.1:8080"})
    assert_rejected(resp)
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


# --- what is not guarded -------------------------------------------------------------------


def test_cors_preflight_needs_no_token(http: FlaskClient) -> None:
    for path in (
        "/cds-services",
        "/cds-services/her2-next-line",
        "/cds-services/her2-next-line/feedback",
    ):
        resp = http.open(
            path,
            method="OPTIONS",
            headers={
                "Origin": "http://127.0.0.1:8080",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert resp.status_code == 204
        assert "authorization" in resp.headers["Access-Control-Allow-Headers"].lower()


def test_paths_outside_cds_services_are_not_guarded(http: FlaskClient) -> None:
    # /healthz, /readyz and /metrics live outside /cds-services; an unknown path is a plain 404
    resp = http.get("/no-such-path")
    assert resp.status_code == 404
    assert "WWW-Authenticate" not in resp.headers


def test_auth_off_is_the_app_factory_default(tmp_path: Path) -> None:
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'x.db'}", "testing": True})
    assert app.test_client().get("/cds-services").status_code == 200
    assert service_state(app).auth is None


def test_replay_cache_down_is_503_not_a_pass(
    auth_app: Flask, http: FlaskClient, clock: FakeClock
) -> None:
    from sqlalchemy import text

    with service_state(auth_app).db.engine.begin() as conn:
        conn.execute(text("DROP TABLE auth_jti"))
    resp = http.get("/cds-services", headers=bearer(mint(DISCOVERY, clock())))
    assert resp.status_code == 503
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_log_says_why_without_the_token(
    http: FlaskClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    token = mint(DISCOVERY, clock() - 3600)
    http.get("/cds-services", headers=bearer(token))
    records = [r for r in caplog.records if r.name == "her2cds.auth" and "failed" in r.getMessage()]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "reason=expired" in message and f"iss={ISS}" in message
    assert token not in message


# --- property: a token that is changed in any way does not pass ---------------------------

_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _decoded(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_changed_character_is_rejected(
    auth_app: Flask, clock: FakeClock, data: st.DataObject
) -> None:
    authenticator = service_state(auth_app).auth
    assert authenticator is not None
    token = mint(DISCOVERY, clock(), alg=data.draw(st.sampled_from(["ES384", "RS384"])))
    position = data.draw(st.integers(0, len(token) - 1).filter(lambda i: token[i] != "."))
    replacement = data.draw(st.sampled_from(_B64URL).filter(lambda c: c != token[position]))
    changed = token[:position] + replacement + token[position + 1 :]
    try:
        same_bytes = _decoded(changed) == _decoded(token)
    except ValueError:
        same_bytes = False
    # base64url's last character may carry unused bits: such a change leaves the token as it was
    assume(not same_bytes)
    with pytest.raises(AuthFailure) as failure:
        authenticator.authenticate(f"Bearer {changed}", DISCOVERY)
    assert failure.value.status == 401
    assert failure.value.reason != "replay"  # rejected for the change itself
    assert (
        authenticator.authenticate(f"Bearer {token}", DISCOVERY).iss == ISS
    )  # the original passes


def test_missing_public_base_url_is_warned_once_per_process(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    http = make_app(tmp_path, clock, public_base_url="").test_client()
    assert "PUBLIC_BASE_URL" not in caplog.text  # not at start-up: logging may not be set up yet
    for _ in range(3):
        http.get("/cds-services")
    assert caplog.text.count("HER2CDS_PUBLIC_BASE_URL is not set") == 1
