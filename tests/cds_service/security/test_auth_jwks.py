"""Keys at a URL: fetched over HTTP with a timeout, cached, refreshed at most once a minute."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from tests.auth_support import (
    DISCOVERY,
    ISS,
    FakeClock,
    assert_rejected,
    bearer,
    keys,
    make_app,
    mint,
    no_token_in_logs,
    service_log,
    write_clients,
)

__all__ = ["no_token_in_logs", "service_log"]

pytestmark = pytest.mark.usefixtures("no_token_in_logs")


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose key sets and status the test changes."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {"/jwks.json": {"keys": [keys().jwk("es", "ec-1")]}}
        self.status = 200
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                body = json.dumps(server.documents.get(self.path, {})).encode()
                self.send_response(server.status)
                if server.status in (301, 302):
                    self.send_header("Location", "/jwks.json")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _app(tmp_path: Path, clock: FakeClock, entry: dict[str, Any]) -> FlaskClient:
    clients = write_clients(tmp_path / "clients.json", [{"iss": ISS, **entry}])
    return make_app(tmp_path, clock, clients=clients).test_client()


def _get(http: FlaskClient, clock: FakeClock, kid: str = "ec-1", **headers: Any) -> int:
    token = mint(DISCOVERY, clock(), kid=kid, headers=headers or None)
    return http.get("/cds-services", headers=bearer(token)).status_code


def test_keys_are_fetched_once_and_cached(
    tmp_path: Path, clock: FakeClock, jwks_server: JwksServer
) -> None:
    http = _app(tmp_path, clock, {"jwks_url": f"{jwks_server.base}/jwks.json"})
    assert jwks_server.hits == []  # not fetched at start-up
    assert [_get(http, clock) for _ in range(3)] == [200, 200, 200]
    assert jwks_server.hits == ["/jwks.json"]
    clock.advance(3600)  # an hour later the set is fetched again
    assert _get(http, clock) == 200
    assert len(jwks_server.hits) == 2


def test_unknown_kid_refreshes_at_most_once_a_minute(
    tmp_path: Path, clock: FakeClock, jwks_server: JwksServer
) -> None:
    http = _app(tmp_path, clock, {"jwks_url": f"{jwks_server.base}/jwks.json"})
    assert _get(http, clock) == 200
    # the client rotates its key: the new kid is published after our last fetch
    jwks_server.documents["/jwks.json"] = {
        "keys": [keys().jwk("es", "ec-1"), keys().jwk("rsa", "rsa-2")]
    }
    for _ in range(5):  # a burst of unknown kids does not turn into a burst of fetches
        assert _get(http, clock, kid="made-up") == 401
    assert len(jwks_server.hits) == 1
    clock.advance(61)
    token = mint(DISCOVERY, clock(), alg="RS384", kid="rsa-2")
    assert http.get("/cds-services", headers=bearer(token)).status_code == 200
    assert len(jwks_server.hits) == 2


@pytest.mark.parametrize("status", [500, 302, 404])
def test_a_failing_jwks_url_rejects_then_recovers(
    tmp_path: Path, clock: FakeClock, jwks_server: JwksServer, status: int
) -> None:
    http = _app(tmp_path, clock, {"jwks_url": f"{jwks_server.base}/jwks.json"})
    jwks_server.status = status
    assert _get(http, clock) == 401
    assert _get(http, clock) == 401
    assert len(jwks_server.hits) == 1  # redirects are not followed; retries wait a minute
    jwks_server.status = 200
    clock.advance(60)
    assert _get(http, clock) == 200


def test_an_unreachable_jwks_url_is_a_401_not_a_500(tmp_path: Path, clock: FakeClock) -> None:
    server = JwksServer()
    url = f"{server.base}/jwks.json"
    server.close()  # nothing listens there any more
    http = _app(tmp_path, clock, {"jwks_url": url})
    token = mint(DISCOVERY, clock())
    assert_rejected(http.get("/cds-services", headers=bearer(token)))


def test_token_jku_is_used_only_when_the_client_allows_it(
    tmp_path: Path, clock: FakeClock, jwks_server: JwksServer
) -> None:
    jwks_server.documents["/rotated.json"] = {"keys": [keys().jwk("rsa", "rsa-9")]}
    jwks_server.documents["/elsewhere.json"] = {"keys": [keys().jwk("rsa", "rsa-9")]}
    allowed = f"{jwks_server.base}/rotated.json"
    entry = {"jwks": {"keys": [keys().jwk("es", "ec-1")]}, "jku": [allowed]}
    http = _app(tmp_path, clock, entry)

    def rsa9(jku: str) -> int:
        token = mint(DISCOVERY, clock(), alg="RS384", kid="rsa-9", headers={"jku": jku})
        return http.get("/cds-services", headers=bearer(token)).status_code

    assert rsa9(f"{jwks_server.base}/elsewhere.json") == 401
    assert jwks_server.hits == []  # a jku that is not on the list is never fetched
    assert rsa9(allowed) == 200
    assert jwks_server.hits == ["/rotated.json"]
    # the configured keys still work when the token names an allowed jku
    assert _get(http, clock, jku=allowed) == 200


def test_unusable_keys_in_a_published_set_are_skipped(
    tmp_path: Path, clock: FakeClock, jwks_server: JwksServer
) -> None:
    p256 = json.loads(jwt.get_algorithm_by_name("ES256").to_jwk(keys().es256.public_key())) | {
        "kid": "p256"
    }
    jwks_server.documents["/jwks.json"] = {
        "keys": [
            dict(keys().jwk("rsa", "enc-1"), use="enc"),
            p256,
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            keys().jwk("es", "ec-1"),
        ]
    }
    http = _app(tmp_path, clock, {"jwks_url": f"{jwks_server.base}/jwks.json"})
    assert _get(http, clock) == 200
    token = mint(DISCOVERY, clock(), alg="ES256", kid="p256", key=keys().es256)
    assert_rejected(http.get("/cds-services", headers=bearer(token)))
    token = mint(DISCOVERY, clock(), alg="RS384", kid="enc-1")
    assert_rejected(http.get("/cds-services", headers=bearer(token)))


@pytest.mark.parametrize("how", ["closed-port", "http-500"])
def test_an_unreachable_key_set_has_its_own_reason_in_log_and_metric(
    tmp_path: Path, clock: FakeClock, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 19 item 4: `jwks-unreachable`, not `unknown-kid`, while the set cannot be fetched;
    once it is fetched again, a kid it does not hold is `unknown-kid`."""
    from tests.cds_service.observability.test_metrics import scrape, value

    server = JwksServer()
    url = f"{server.base}/jwks.json"
    if how == "closed-port":
        server.close()
    else:
        server.status = 500
    try:
        http = _app(tmp_path, clock, {"jwks_url": url})
        before = scrape(http)
        caplog.set_level(logging.WARNING, logger="her2cds.auth")
        assert _get(http, clock) == 401
        assert _get(http, clock) == 401  # within the minute: not fetched again, same reason
        reasons = [
            r.getMessage().split("reason=")[1].split()[0]
            for r in caplog.records
            if r.getMessage().startswith("authentication failed")
        ]
        assert reasons == ["jwks-unreachable", "jwks-unreachable"]
        after = scrape(http)
        metric = "her2cds_auth_failures_total"
        assert value(after, metric, reason="jwks-unreachable") - value(
            before, metric, reason="jwks-unreachable"
        ) == pytest.approx(2)
        assert value(after, metric, reason="unknown-kid") == value(
            before, metric, reason="unknown-kid"
        )
        if how == "http-500":
            server.status = 200
            clock.advance(60)
            caplog.clear()
            assert _get(http, clock, kid="not-in-the-set") == 401
            assert "reason=unknown-kid" in caplog.text
            assert _get(http, clock) == 200
    finally:
        if how != "closed-port":
            server.close()
