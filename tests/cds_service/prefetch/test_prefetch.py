"""Prefetch and the FHIR-server fallback, against a real FHIR server on 127.0.0.1 (section 10,
requirements 11-16 and 29 for the access token; the time budget)."""

from __future__ import annotations

import copy
import logging
import socket
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service import create_app
from cds_service.services import prefetch_templates
from cds_service.state import service_state
from her2cds_cli.local_fhir import patient_keys_of
from tests.conftest import her2_ext, hook_request, load_fixture
from tests.protocol_support import (
    FhirServer,
    checking_client,
    fallback_request,
    fhir_authorization,
)

TOKEN = "s3cr3t-access-token-4f9a1c"
FIXTURE = "her2_after_thp_progression"
PV = "/cds-services/her2-next-line"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return checking_client(app)


def fixture_server(name: str = FIXTURE, **options: Any) -> tuple[FhirServer, str]:
    bundle = load_fixture(name)
    pid, keys = patient_keys_of(bundle)
    assert pid
    resources = [e["resource"] for e in bundle["entry"]]
    return FhirServer(resources, patient_keys=keys, **options), pid


def served(name: str = FIXTURE, **options: Any) -> Any:
    server, pid = fixture_server(name, **options)
    server.start()
    return server, pid


def with_server(body: dict[str, Any], url: str, token: str | None = TOKEN) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["fhirServer"] = url
    if token:
        out["fhirAuthorization"] = fhir_authorization(token)
    return out


def next_line(cards: list[dict[str, Any]]) -> dict[str, Any]:
    return next(her2_ext(c) for c in cards if her2_ext(c)["kind"] == "next-line")


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/fhir"


# --------------------------------------------------------------------------- 11: all prefetched


def test_11_all_keys_prefetched_means_no_fhir_call(client: FlaskClient) -> None:
    server, _ = served()
    try:
        body = with_server(hook_request(load_fixture(FIXTURE)), server.url)
        resp = client.post(PV, json=body)
        assert resp.status_code == 200
        assert next_line(resp.get_json()["cards"])["line"] == 2
        assert server.requests == []
    finally:
        server.stop()


# --------------------------------------------------------------------------- 12: fetched


def test_12_omitted_keys_are_fetched_with_the_bearer_token(client: FlaskClient) -> None:
    server, _ = served()
    try:
        body = hook_request(load_fixture(FIXTURE))
        del body["prefetch"]["conditions"], body["prefetch"]["observations"]
        resp = client.post(PV, json=with_server(body, server.url))
        assert resp.status_code == 200
        assert next_line(resp.get_json()["cards"])["line"] == 2
        paths = sorted(r.path for r in server.requests)
        assert paths == ["/fhir/Condition", "/fhir/Observation"]
        for r in server.requests:
            assert r.headers["Authorization"] == f"Bearer {TOKEN}"
        obs = next(r for r in server.requests if r.path.endswith("Observation"))
        assert "code=" in obs.query and "patient=thp-prog" in obs.query
    finally:
        server.stop()


def test_12_no_prefetch_at_all_gives_the_same_cards_as_full_prefetch(
    client: FlaskClient,
) -> None:
    """The acceptance test of the issue: same card JSON, uuids included (same hookInstance)."""
    paged = 0
    for name in ("her2_after_thp_progression", "her2_ild_after_thp", "her2_de_novo"):
        with_prefetch = hook_request(load_fixture(name))
        server, pid = served(name, page_size=2)  # small pages: next links are followed too
        try:
            bare = fallback_request("patient-view", pid, server.url, TOKEN)
            bare["hookInstance"] = with_prefetch["hookInstance"]
            a = client.post(PV, json=with_prefetch)
            z = client.post(PV, json=bare)
            assert a.status_code == z.status_code == 200
            assert a.get_json()["cards"], name
            assert z.get_json() == a.get_json(), name
            assert len(server.requests) >= len(prefetch_templates())
            paged += sum("_page=" in r.query for r in server.requests)
        finally:
            server.stop()
    assert paged


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_12_order_hooks_without_prefetch_give_the_same_cards(
    client: FlaskClient, hook: str
) -> None:
    name = "her2_ild_after_thp"
    bundle = load_fixture(name)
    pid, _ = patient_keys_of(bundle)
    draft = {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {"text": "trastuzumab deruxtecan"},
    }
    ctx: dict[str, Any] = {
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]}
    }
    if hook == "order-select":
        ctx["selections"] = ["MedicationRequest/draft-1"]
    with_prefetch = hook_request(bundle, hook, extra_context=ctx)
    server, _ = served(name, page_size=2)
    try:
        bare = fallback_request(hook, str(pid), server.url, TOKEN, **ctx)
        bare["hookInstance"] = with_prefetch["hookInstance"]
        path = f"/cds-services/her2-{hook}"
        a = client.post(path, json=with_prefetch)
        z = client.post(path, json=bare)
        assert a.status_code == z.status_code == 200
        rules = [her2_ext(c)["rule"] for c in a.get_json()["cards"]]
        assert rules[0] == "tdxd-ild"  # the critical finding first (lvef-due may follow)
        assert z.get_json() == a.get_json()
    finally:
        server.stop()


# --------------------------------------------------------------------------- 13: 412


def test_13_omitted_key_without_token_is_412(client: FlaskClient) -> None:
    server, _ = served()
    try:
        body = hook_request(load_fixture(FIXTURE))
        del body["prefetch"]["medicationRequests"]
        resp = client.post(PV, json=with_server(body, server.url, token=None))
        assert resp.status_code == 412
        assert "medicationRequests" in resp.get_json()["issue"][0]["diagnostics"]
        assert server.requests == []
    finally:
        server.stop()


def test_13_omitted_key_without_fhir_server_is_412(client: FlaskClient) -> None:
    body = hook_request(load_fixture(FIXTURE))
    del body["prefetch"]["conditions"]
    resp = client.post(PV, json=body)
    assert resp.status_code == 412
    assert resp.get_json()["issue"][0]["code"] == "incomplete"


def test_13_unreachable_fhir_server_is_412(client: FlaskClient) -> None:
    body = fallback_request("patient-view", "thp-prog", closed_port_url(), TOKEN)
    resp = client.post(PV, json=body)
    assert resp.status_code == 412
    assert "could not be reached" in resp.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("status", [401, 403, 500])
def test_13_fhir_server_refusing_is_412(client: FlaskClient, status: int) -> None:
    server, pid = served(status=status)
    try:
        resp = client.post(PV, json=fallback_request("patient-view", pid, server.url, TOKEN))
        assert resp.status_code == 412
        assert str(status) in resp.get_json()["issue"][0]["diagnostics"]
    finally:
        server.stop()


def test_13_the_patient_key_alone_may_be_missing(client: FlaskClient) -> None:
    """The Patient read is optional: the engine works from the other keys."""
    body = hook_request(load_fixture(FIXTURE))
    del body["prefetch"]["patient"]
    resp = client.post(PV, json=body)
    assert resp.status_code == 200
    assert next_line(resp.get_json()["cards"])["line"] == 2


# --------------------------------------------------------------------------- 14: no data


def test_14_null_read_and_empty_bundles_are_no_data_not_412(client: FlaskClient) -> None:
    server, pid = served()
    try:
        empty = {"resourceType": "Bundle", "type": "searchset", "total": 0}
        body = fallback_request("patient-view", pid, None)
        body["prefetch"] = {key: copy.deepcopy(empty) for key in prefetch_templates()}
        body["prefetch"]["patient"] = None
        resp = client.post(PV, json=with_server(body, server.url))
        assert resp.status_code == 200
        assert server.requests == []
        # no data at all: nothing in scope, so no advice (never a guess)
        assert all(her2_ext(c)["kind"] != "next-line" for c in resp.get_json()["cards"])
    finally:
        server.stop()


def test_14_a_404_read_from_the_server_is_no_data(client: FlaskClient) -> None:
    server, _ = served()
    try:
        body = hook_request(load_fixture(FIXTURE), patient_id="thp-prog")
        del body["prefetch"]["patient"]
        body["context"]["patientId"] = "thp-prog"
        server.resources = [r for r in server.resources if r["resourceType"] != "Patient"]
        resp = client.post(PV, json=with_server(body, server.url))
        assert resp.status_code == 200
        assert [r.path for r in server.requests] == ["/fhir/Patient/thp-prog"]
    finally:
        server.stop()


def test_13_a_search_the_server_does_not_offer_is_412_not_no_data(client: FlaskClient) -> None:
    """Unknown medication history must not pass for none (it would change the line count)."""
    server, pid = served(unsupported=frozenset({"MedicationAdministration"}))
    try:
        resp = client.post(PV, json=fallback_request("patient-view", pid, server.url, TOKEN))
        assert resp.status_code == 412
        assert "MedicationAdministration" in resp.get_json()["issue"][0]["diagnostics"]
    finally:
        server.stop()


# --------------------------------------------------------------------------- 15: OperationOutcome


OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "timeout", "diagnostics": "search timed out"}],
}


def test_15_operation_outcome_as_a_value_is_fetched_again(client: FlaskClient) -> None:
    server, _ = served()
    try:
        body = hook_request(load_fixture(FIXTURE))
        body["prefetch"]["medicationStatements"] = copy.deepcopy(OUTCOME)
        resp = client.post(PV, json=with_server(body, server.url))
        assert resp.status_code == 200
        assert [r.path for r in server.requests] == ["/fhir/MedicationStatement"]
        assert next_line(resp.get_json()["cards"])["line"] == 2
        # and without a token it is as missing as an omitted key
        no_token = client.post(PV, json=with_server(body, server.url, token=None))
        assert no_token.status_code == 412
        assert "medicationStatements" in no_token.get_json()["issue"][0]["diagnostics"]
    finally:
        server.stop()


def test_15_operation_outcome_inside_a_bundle_is_fetched_again(client: FlaskClient) -> None:
    server, _ = served()
    try:
        body = hook_request(load_fixture(FIXTURE))
        partial = body["prefetch"]["medicationStatements"]
        partial["entry"] = [
            *partial["entry"][:1],
            {"resource": copy.deepcopy(OUTCOME), "search": {"mode": "outcome"}},
        ]
        resp = client.post(PV, json=with_server(body, server.url))
        assert resp.status_code == 200
        assert [r.path for r in server.requests] == ["/fhir/MedicationStatement"]
        assert next_line(resp.get_json()["cards"])["line"] == 2
    finally:
        server.stop()


def test_15_a_warning_outcome_in_a_bundle_is_dropped_not_refetched(client: FlaskClient) -> None:
    server, _ = served()
    try:
        body = hook_request(load_fixture(FIXTURE))
        warning = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "warning", "code": "informational", "diagnostics": "paged"}],
        }
        body["prefetch"]["conditions"].setdefault("entry", []).append(
            {"resource": warning, "search": {"mode": "outcome"}}
        )
        resp = client.post(PV, json=with_server(body, server.url))
        assert resp.status_code == 200
        assert server.requests == []
    finally:
        server.stop()


# --------------------------------------------------------------------------- 16: pagination


def test_16_next_links_of_prefetched_bundles_are_followed(client: FlaskClient) -> None:
    server, pid = served(page_size=1)
    try:
        full = hook_request(load_fixture(FIXTURE))
        body = copy.deepcopy(full)
        # the client sent page 1 of the medication statements, with a next link to page 2...
        first_page = server.answer("/fhir/MedicationStatement", f"patient={pid}")[1]
        assert first_page["link"][0]["relation"] == "next"
        body["prefetch"]["medicationStatements"] = first_page
        resp = client.post(PV, json=with_server(body, server.url))
        assert resp.status_code == 200
        assert server.requests and all("_page=" in r.query for r in server.requests)
        assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in server.requests)
        assert resp.get_json() == client.post(PV, json=full).get_json()
        # ...and without a token the rest cannot be had: 412, not partial data
        no_token = client.post(PV, json=with_server(body, server.url, token=None))
        assert no_token.status_code == 412
    finally:
        server.stop()


def test_16_next_links_to_another_origin_are_not_followed(client: FlaskClient) -> None:
    """The token is for fhirServer only: a next link elsewhere is neither called nor trusted."""
    elsewhere, _ = served()
    server, pid = served(page_size=1, next_base=elsewhere.url)
    try:
        resp = client.post(PV, json=fallback_request("patient-view", pid, server.url, TOKEN))
        assert resp.status_code == 412
        assert "outside fhirServer" in resp.get_json()["issue"][0]["diagnostics"]
        assert elsewhere.requests == []
    finally:
        server.stop()
        elsewhere.stop()


# --------------------------------------------------------------------------- time budget


def test_budget_a_stalled_fhir_server_gives_412(tmp_path: Any) -> None:
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'db'}", "fhir_timeout": 0.3})
    client = checking_client(app)
    server, pid = served(stall=True)
    try:
        resp = client.post(PV, json=fallback_request("patient-view", pid, server.url, TOKEN))
        assert resp.status_code == 412
        assert "time budget" in resp.get_json()["issue"][0]["diagnostics"]
    finally:
        server.stop()


def test_budget_is_total_not_per_request(tmp_path: Any, monkeypatch: Any) -> None:
    """Every answer takes 0.2 s, well within a 0.6 s budget; four pages in a row do not."""
    monkeypatch.setenv("HER2CDS_FHIR_TIMEOUT", "0.6")
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'db'}"})
    assert service_state(app).config.fhir_timeout == 0.6
    client = checking_client(app)
    server, pid = served(page_size=1, delay=0.2)  # 4 Observations: 4 pages
    try:
        resp = client.post(PV, json=fallback_request("patient-view", pid, server.url, TOKEN))
        assert resp.status_code == 412
        assert "time budget" in resp.get_json()["issue"][0]["diagnostics"]
    finally:
        server.stop()
    # one page per key, fetched side by side, each as slow: within the same budget
    server, pid = served(page_size=None, delay=0.2)
    try:
        resp = client.post(PV, json=fallback_request("patient-view", pid, server.url, TOKEN))
        assert resp.status_code == 200
        assert len(server.requests) == len(prefetch_templates())
    finally:
        server.stop()


# --------------------------------------------------------------------------- 29: token


def test_29_the_access_token_is_never_logged_nor_echoed(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    ok, pid = served()
    refusing, _ = served(status=401)
    stalled, _ = served(stall=True)
    try:
        for url in (ok.url, refusing.url, closed_port_url()):
            resp = client.post(PV, json=fallback_request("patient-view", pid, url, TOKEN))
            texts.append(resp.get_data(as_text=True))
        assert ok.requests and refusing.requests
        # a malformed fhirAuthorization is reported without its values
        bad = fallback_request("patient-view", pid, ok.url, TOKEN)
        bad["fhirAuthorization"]["token_type"] = TOKEN
        bad_resp = client.post(PV, json=bad)
        assert bad_resp.status_code == 400
        texts.append(bad_resp.get_data(as_text=True))
        bad["fhirAuthorization"] = {"access_token": 12345678, "token_type": "Bearer"}
        bad_resp = client.post(PV, json=bad)
        assert bad_resp.status_code == 400
        texts.append(bad_resp.get_data(as_text=True))
        fast = create_app({"database_url": "sqlite://", "fhir_timeout": 0.2})
        resp = checking_client(fast).post(
            PV, json=fallback_request("patient-view", pid, stalled.url, TOKEN)
        )
        assert resp.status_code == 412
        texts.append(resp.get_data(as_text=True))
    finally:
        for s in (ok, refusing, stalled):
            s.stop()
    assert caplog.records, "the fallback logs what it does (without the token)"
    assert TOKEN not in caplog.text
    assert "12345678" not in caplog.text
    for text in texts:
        assert TOKEN not in text and "12345678" not in text


# --------------------------------------------------------------------------- open servers


def test_13_sandbox_style_request_reads_a_configured_open_server_without_a_token(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox sends fhirServer but no fhirAuthorization, and omits keys whose search
    found nothing. Spec default: 412. With the server listed in HER2CDS_OPEN_FHIR_SERVERS the
    missing keys are read from it, with no Authorization header."""
    server, _ = served()
    try:
        body = hook_request(load_fixture(FIXTURE))
        del body["prefetch"]["medicationAdministrations"]  # as the sandbox omits empty results
        body["fhirServer"] = server.url
        closed = checking_client(create_app({"database_url": f"sqlite:///{tmp_path / 'a'}"}))
        assert closed.post(PV, json=body).status_code == 412
        assert server.requests == []
        monkeypatch.setenv("HER2CDS_OPEN_FHIR_SERVERS", f"https://other.example.org, {server.url}/")
        app = create_app({"database_url": f"sqlite:///{tmp_path / 'b'}"})
        resp = checking_client(app).post(PV, json=body)
        assert resp.status_code == 200
        assert next_line(resp.get_json()["cards"])["line"] == 2
        assert [r.path for r in server.requests] == ["/fhir/MedicationAdministration"]
        assert "Authorization" not in server.requests[0].headers
        # a server not on the list is still not read without a token
        body["fhirServer"] = server.url.replace("127.0.0.1", "localhost")
        assert checking_client(app).post(PV, json=body).status_code == 412
        assert len(server.requests) == 1
    finally:
        server.stop()


_KEYS = sorted(prefetch_templates())
_prop_client = checking_client(create_app({"database_url": "sqlite://"}))


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    omitted=st.sets(st.sampled_from(_KEYS)),
    outcomes=st.sets(st.sampled_from(_KEYS)),
    page_size=st.sampled_from([None, 1, 2]),
)
def test_12_15_16_any_mix_of_given_omitted_and_failed_keys_gives_the_same_cards(
    omitted: set[str], outcomes: set[str], page_size: int | None
) -> None:
    """Whatever the client leaves out or reports as failed, the answer is the full one."""
    full = hook_request(load_fixture(FIXTURE))
    body = copy.deepcopy(full)
    for key in outcomes:
        body["prefetch"][key] = copy.deepcopy(OUTCOME)
    for key in omitted:
        body["prefetch"].pop(key, None)
    server, _ = served(page_size=page_size)
    try:
        z = _prop_client.post(PV, json=with_server(body, server.url))
        assert z.status_code == 200
        assert z.get_json() == _prop_client.post(PV, json=full).get_json()
        assert len({r.path for r in server.requests}) == len(omitted | outcomes)
    finally:
        server.stop()
