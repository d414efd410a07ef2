"""CORS for browser clients such as the CDS Hooks sandbox (section 10, requirement 30)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cds_service import create_app
from cds_service.state import service_state
from tests.conftest import hook_request, load_fixture
from tests.protocol_support import checking_client

SANDBOX = "http://127.0.0.1:8080"
ENDPOINTS = [
    "/cds-services",
    "/cds-services/her2-next-line",
    "/cds-services/her2-order-select",
    "/cds-services/her2-order-sign",
    "/cds-services/her2-next-line/feedback",
    "/cds-services/her2-order-sign/feedback",
]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return checking_client(app)


def preflight(client: FlaskClient, path: str, origin: str = SANDBOX) -> TestResponse:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET" if path == "/cds-services" else "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def _listed(header: str | None) -> set[str]:
    return {p.strip().lower() for p in (header or "").split(",") if p.strip()}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_30_preflight_answers_2xx_with_the_cors_headers(client: FlaskClient, path: str) -> None:
    resp = preflight(client, path)
    assert 200 <= resp.status_code < 300
    headers = resp.headers
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert _listed(headers["Access-Control-Allow-Methods"]) >= {"get", "post", "options"}
    assert _listed(headers["Access-Control-Allow-Headers"]) >= {"authorization", "content-type"}


def test_30_preflight_needs_no_credentials_and_reaches_no_view(client: FlaskClient) -> None:
    """No Authorization on a preflight (browsers send none): it must not be refused."""
    resp = preflight(client, "/cds-services/her2-next-line")
    assert resp.status_code == 204
    assert resp.get_data() == b""


def test_30_real_responses_carry_allow_origin(client: FlaskClient) -> None:
    """Successes and failures alike (the checking client asserts it on every response)."""
    h = {"Origin": SANDBOX}
    assert client.get("/cds-services", headers=h).status_code == 200
    body = hook_request(load_fixture("her2_de_novo"))
    answer = client.post("/cds-services/her2-next-line", json=body, headers=h)
    assert answer.status_code == 200
    # what a browser may send next is said on the preflight only (Fetch: read there alone)
    assert not {"Access-Control-Allow-Methods", "Access-Control-Max-Age"} & set(
        answer.headers.keys()
    )
    assert (
        client.post(
            "/cds-services/her2-next-line", data=b"x", headers=h, content_type="application/json"
        ).status_code
        == 400
    )
    assert client.post("/cds-services/nope", json=body, headers=h).status_code == 404
    assert client.get("/cds-services/her2-next-line", headers=h).status_code == 405
    feedback = {
        "feedback": [
            {"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-22T02:00:00Z"}
        ]
    }
    url = "/cds-services/her2-next-line/feedback"
    assert client.post(url, json=feedback, headers=h).status_code == 200
    for resp in (
        client.get("/cds-services"),
        client.post(url, json={"feedback": "x"}, headers=h),
    ):
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_30_allowed_origins_are_configurable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HER2CDS_CORS_ORIGINS", f"{SANDBOX}, https://ehr.example.org")
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'db'}"})
    assert service_state(app).config.cors_origins == (SANDBOX, "https://ehr.example.org")
    client = checking_client(app)
    ok = preflight(client, "/cds-services/her2-next-line")
    assert ok.headers["Access-Control-Allow-Origin"] == SANDBOX
    assert "Origin" in ok.headers["Vary"]
    other = preflight(client, "/cds-services/her2-next-line", "https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in other.headers
    resp = client.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
