"""The FHIR-server allow-list (issue 20 items 1 and 3, issue 19 item 5): an unlisted fhirServer is
never contacted, in any auth mode; redirects are not followed; requests per call are capped;
answers that are not what was asked for are a 412 naming the resource type and the answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.config import ConfigError, from_env
from tests.auth_support import (
    HOOK,
    ISS,
    TENANT_ISS,
    FakeClock,
    bearer,
    keys,
    make_app,
    mint,
    write_clients,
)
from tests.cds_service.prefetch.test_prefetch import TOKEN, closed_port_url, fixture_server, served
from tests.conftest import load_fixture
from tests.protocol_support import (
    FhirServer,
    assert_operation_outcome,
    checking_client,
    fallback_request,
)

PV = "/cds-services/her2-next-line"


def app_with(tmp_path: Path, **settings: Any) -> FlaskClient:
    return checking_client(
        create_app({"database_url": f"sqlite:///{tmp_path / 'db'}", "testing": True, **settings})
    )


def outcome(resp: Any) -> str:
    return assert_operation_outcome(resp.get_json())


# --------------------------------------------------------------------------- deny by default


def test_unlisted_servers_are_never_contacted_and_all_get_the_same_answer(
    tmp_path: Path,
) -> None:
    """A live server, a 404 one, a 500 one and a closed port: one answer, no request made."""
    client = app_with(tmp_path, fhir_servers=())
    ok, pid = served()
    missing, _ = served(status=404)
    failing, _ = served(status=500)
    try:
        answers = []
        for url in (ok.url, missing.url, failing.url, closed_port_url()):
            started = time.monotonic()
            resp = client.post(PV, json=fallback_request("patient-view", pid, url, TOKEN))
            assert time.monotonic() - started < 1.0
            assert resp.status_code == 412
            answers.append(resp.get_json())
        assert all(a == answers[0] for a in answers), answers
        assert "not contacted" in answers[0]["issue"][0]["diagnostics"]
        assert ok.requests == missing.requests == failing.requests == []
    finally:
        for s in (ok, missing, failing):
            s.stop()


def test_the_default_configuration_reads_no_fhir_server() -> None:
    cfg = from_env({})
    assert cfg.fhir_servers == () and cfg.open_fhir_servers == ()


@pytest.mark.parametrize(
    ("entry", "allowed"),
    [
        ("http://127.0.0.1:*", True),
        ("http://127.0.0.1:*/fhir", True),
        ("HTTP://127.0.0.1:*/fhir/", True),
        ("http://127.0.0.1:*/other", False),
        ("http://127.0.0.1:*/fhi", False),  # a prefix of a path segment is not that path
        ("https://127.0.0.1:*", False),
        ("http://127.0.0.1", False),  # port 80 only
        ("http://localhost:*", False),
    ],
)
def test_origins_base_urls_and_any_port(tmp_path: Path, entry: str, allowed: bool) -> None:
    client = app_with(tmp_path, fhir_servers=(entry,))
    server, pid = served()
    try:
        resp = client.post(PV, json=fallback_request("patient-view", pid, server.url, TOKEN))
        assert (resp.status_code == 200) is allowed, resp.get_json()
        assert bool(server.requests) is allowed
    finally:
        server.stop()


@pytest.mark.parametrize(
    "bad", ["ftp://fhir.example.org", "fhir.example.org", "https://", "https://a.org/x?q=1"]
)
def test_bad_allow_list_entries_are_configuration_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="HER2CDS_FHIR_SERVERS"):
        from_env({"HER2CDS_FHIR_SERVERS": f"https://ok.example.org, {bad}"})


def test_user_info_in_fhir_server_does_not_pass_the_list(tmp_path: Path) -> None:
    client = app_with(tmp_path, fhir_servers=("http://127.0.0.1:*",))
    server, pid = served()
    try:
        tricked = server.url.replace("http://", "http://127.0.0.1:1@")
        resp = client.post(PV, json=fallback_request("patient-view", pid, tricked, TOKEN))
        assert resp.status_code == 412
        assert server.requests == []
    finally:
        server.stop()


# --------------------------------------------------------------------------- per client


def test_each_trusted_client_may_name_its_own_servers(tmp_path: Path) -> None:
    """With auth on, a client's `fhir_servers` (trusted-clients file) are read for it only."""
    server, pid = served()
    (tmp_path / "tenant-jwks.json").write_text(json.dumps({"keys": [keys().jwk("es", "ec-t")]}))
    clients = write_clients(
        tmp_path / "clients.json",
        [
            {"iss": ISS, "jwks": keys().jwks(), "fhir_servers": [server.url]},
            {"iss": TENANT_ISS, "jwks_file": "tenant-jwks.json"},
        ],
    )
    clock = FakeClock()
    app = make_app(tmp_path, clock, clients=clients, fhir_servers=())
    http = checking_client(app)
    body = fallback_request("patient-view", pid, server.url, TOKEN)
    try:
        other = http.post(
            PV, json=body, headers=bearer(mint(HOOK, clock(), iss=TENANT_ISS, kid="ec-t"))
        )
        assert other.status_code == 412 and server.requests == []
        own = http.post(PV, json=body, headers=bearer(mint(HOOK, clock())))
        assert own.status_code == 200, own.get_json()
        assert server.requests
    finally:
        server.stop()


def test_a_bad_fhir_servers_entry_in_the_trusted_clients_file_is_refused(tmp_path: Path) -> None:
    clients = write_clients(
        tmp_path / "clients.json",
        [{"iss": ISS, "jwks": keys().jwks(), "fhir_servers": ["gopher://x"]}],
    )
    with pytest.raises(ConfigError, match="fhir_servers"):
        make_app(tmp_path, FakeClock(), clients=clients)


# --------------------------------------------------------------------------- redirects, caps


class _Redirecting(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.target + self.path.removeprefix("/fhir"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def redirecting() -> Iterator[tuple[str, FhirServer, str]]:
    """(a listed server that redirects every GET, the server it redirects to, patient id)."""
    target, pid = served()
    handler = type("Handler", (_Redirecting,), {"target": target.url})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/fhir", target, pid
    finally:
        httpd.shutdown()
        httpd.server_close()
        target.stop()


def test_redirects_are_not_followed(
    tmp_path: Path, redirecting: tuple[str, FhirServer, str]
) -> None:
    url, target, pid = redirecting
    client = app_with(tmp_path, fhir_servers=("http://127.0.0.1:*",))
    resp = client.post(PV, json=fallback_request("patient-view", pid, url, TOKEN))
    assert resp.status_code == 412
    text = outcome(resp)
    assert "redirect" in text and "302" in text
    assert any(t in text for t in ("Condition", "Observation", "Medication", "Patient"))
    assert target.requests == []


def test_requests_per_call_are_capped(tmp_path: Path) -> None:
    """Small pages: the fixture needs more than 5 GETs; the sixth is never sent."""
    client = app_with(tmp_path, fhir_max_requests=5)
    server, pid = served(page_size=1)
    try:
        resp = client.post(PV, json=fallback_request("patient-view", pid, server.url, TOKEN))
        assert resp.status_code == 412
        assert "HER2CDS_FHIR_MAX_REQUESTS" in outcome(resp)
        assert len(server.requests) <= 5
    finally:
        server.stop()


def test_the_default_cap_is_about_fifty() -> None:
    assert from_env({}).fhir_max_requests == 50
    with pytest.raises(ConfigError, match="FHIR_MAX_REQUESTS"):
        from_env({"HER2CDS_FHIR_MAX_REQUESTS": "0"})


# --------------------------------------------------------------------------- what failed


class _OneTypeFails(FhirServer):
    """A fixture server whose answers for one resource type are replaced."""

    def __init__(self, rtype: str, status: int, body: Any) -> None:
        server, _ = fixture_server()
        super().__init__(server.resources, patient_keys=server.patient_keys)
        self.failing, self.fail_status, self.fail_body = rtype, status, body

    def answer(self, path: str, query: str) -> tuple[int, Any]:
        if path.removeprefix(self.base_path + "/").split("/")[0] == self.failing:
            return self.fail_status, self.fail_body
        return super().answer(path, query)


PATIENT = {"resourceType": "Patient", "id": "thp-prog"}
OUTCOME_200 = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "processing", "diagnostics": "search failed"}],
}


@pytest.mark.parametrize(
    ("rtype", "status", "body", "said"),
    [
        ("Observation", 500, OUTCOME_200, "HTTP 500"),
        ("MedicationStatement", 403, OUTCOME_200, "HTTP 403"),
        # issue 20 item 3: answers that are not a search Bundle are not "no data"
        ("MedicationRequest", 200, PATIENT, "'Patient', not a Bundle"),
        ("Condition", 200, OUTCOME_200, "OperationOutcome"),
        ("Condition", 200, {"resourceType": "Bundle", "type": "collection"}, "searchset"),
        ("Observation", 200, [1, 2], "not a resource"),
        # a read that answers another resource, or another patient
        ("Patient", 200, {"resourceType": "Condition", "id": "thp-prog"}, "not a Patient"),
        ("Patient", 200, {"resourceType": "Patient", "id": "someone-else"}, "another Patient"),
    ],
)
def test_a_failed_fetch_names_the_resource_type_and_the_answer(
    client: FlaskClient, rtype: str, status: int, body: Any, said: str
) -> None:
    server = _OneTypeFails(rtype, status, body).start()
    try:
        resp = client.post(PV, json=fallback_request("patient-view", "thp-prog", server.url, TOKEN))
        assert resp.status_code == 412, resp.get_json()
        text = outcome(resp)
        assert f"{rtype} could not be read from fhirServer" in text
        assert said in text
    finally:
        server.stop()


def test_a_listed_server_that_is_down_is_named_as_unreachable(client: FlaskClient) -> None:
    resp = client.post(
        PV, json=fallback_request("patient-view", "thp-prog", closed_port_url(), TOKEN)
    )
    assert resp.status_code == 412
    assert "could not be reached" in outcome(resp)


def test_the_fixture_reads_fine_from_a_listed_server(app: Flask) -> None:
    """The control: the same server without a failing type answers cards."""
    server = _OneTypeFails("Nothing", 200, {}).start()
    try:
        resp = checking_client(app).post(
            PV, json=fallback_request("patient-view", "thp-prog", server.url, TOKEN)
        )
        assert resp.status_code == 200 and resp.get_json()["cards"]
        assert load_fixture("her2_after_thp_progression")["entry"]
    finally:
        server.stop()
