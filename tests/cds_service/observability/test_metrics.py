"""/metrics through HTTP: the counters move with the calls that feed them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from cds_service.observability import metrics
from her2cds_cli.local_fhir import patient_keys_of, search
from tests.conftest import her2_ext, hook_request, load_fixture


def scrape(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/plain")
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_hook_calls_move_request_latency_and_card_counters(client: FlaskClient) -> None:
    before = scrape(client)
    body = hook_request(load_fixture("her2_ild_after_thp"))
    cards = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    assert client.post("/cds-services/her2-next-line", json=body).status_code == 200
    after = scrape(client)

    labels = {"endpoint": "hooks.call_service", "service": "her2-next-line", "status": "200"}
    assert value(after, "her2cds_requests_total", **labels) - value(
        before, "her2cds_requests_total", **labels
    ) == pytest.approx(2)
    assert value(after, "her2cds_request_duration_seconds_count", **labels) - value(
        before, "her2cds_request_duration_seconds_count", **labels
    ) == pytest.approx(2)
    assert value(after, "her2cds_request_duration_seconds_sum", **labels) > value(
        before, "her2cds_request_duration_seconds_sum", **labels
    )

    warnings = [her2_ext(c)["rule"] for c in cards if her2_ext(c)["kind"] == "warning"]
    assert warnings, "the ILD fixture must fire at least one warning"
    for rule in set(warnings):
        card_labels = {"service": "her2-next-line", "kind": "warning", "rule": rule}
        moved = value(after, "her2cds_cards_total", **card_labels) - value(
            before, "her2cds_cards_total", **card_labels
        )
        assert moved == pytest.approx(2 * warnings.count(rule))
    nl = {"service": "her2-next-line", "kind": "next-line", "rule": "next-line"}
    assert value(after, "her2cds_cards_total", **nl) > value(before, "her2cds_cards_total", **nl)


def test_errors_are_counted_by_status_with_bounded_service_label(client: FlaskClient) -> None:
    before = scrape(client)
    assert client.post("/cds-services/no-such-service", json={}).status_code == 404
    assert (
        client.post(
            "/cds-services/her2-next-line", data=b"{not json", content_type="application/json"
        ).status_code
        == 400
    )
    after = scrape(client)
    unknown = {"endpoint": "hooks.call_service", "service": "", "status": "404"}
    bad = {"endpoint": "hooks.call_service", "service": "her2-next-line", "status": "400"}
    for labels in (unknown, bad):
        assert value(after, "her2cds_requests_total", **labels) - value(
            before, "her2cds_requests_total", **labels
        ) == pytest.approx(1)
    assert not any("no-such-service" in str(k) for k in after)


class _FhirHandler(BaseHTTPRequestHandler):
    resources: ClassVar[list[dict[str, Any]]] = []
    keys: ClassVar[set[str]] = set()

    def do_GET(self) -> None:
        query = self.path.removeprefix("/fhir/")
        found = search(self.resources, query, self.keys)
        payload = json.dumps(found or {"resourceType": "OperationOutcome"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fhir_server() -> Iterator[str]:
    bundle = load_fixture("her2_after_thp_progression")
    _, keys = patient_keys_of(bundle)
    _FhirHandler.resources = [e["resource"] for e in bundle["entry"]]
    _FhirHandler.keys = keys
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FhirHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir/"
    server.shutdown()
    server.server_close()


def _without_prefetch(fhir_base: str) -> dict[str, Any]:
    body = hook_request(load_fixture("her2_after_thp_progression"))
    body.pop("prefetch")
    body["fhirServer"] = fhir_base
    body["fhirAuthorization"] = {
        "access_token": "fhir-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "her2-cds",
    }
    return body


def test_fhir_fallback_calls_time_and_errors_are_counted(
    client: FlaskClient, fhir_server: str
) -> None:
    before = scrape(client)
    resp = client.post("/cds-services/her2-next-line", json=_without_prefetch(fhir_server))
    assert resp.status_code == 200
    assert any(her2_ext(c)["kind"] == "next-line" for c in resp.get_json()["cards"])
    middle = scrape(client)
    ok = value(middle, "her2cds_fhir_calls_total", outcome="ok") - value(
        before, "her2cds_fhir_calls_total", outcome="ok"
    )
    assert ok >= 2  # the Patient read and at least one search
    timed = value(middle, "her2cds_fhir_call_duration_seconds_count") - value(
        before, "her2cds_fhir_call_duration_seconds_count"
    )
    assert timed >= ok

    # a FHIR server that is not there: 412 for the client, a connection error in the metrics
    dead = _without_prefetch("http://127.0.0.1:9/fhir/")
    assert client.post("/cds-services/her2-next-line", json=dead).status_code == 412
    after = scrape(client)
    # at least the first call failed (fetches of several keys may run in parallel)
    assert (
        value(after, "her2cds_fhir_errors_total", reason="connection")
        - value(middle, "her2cds_fhir_errors_total", reason="connection")
        >= 1
    )


def test_auth_failure_and_feedback_counters_are_exposed(client: FlaskClient) -> None:
    before = scrape(client)
    metrics.auth_failure("bad-signature")
    metrics.feedback("tdxd-ild", "overridden")
    metrics.feedback("tdxd-ild", "overridden")
    after = scrape(client)
    assert value(after, "her2cds_auth_failures_total", reason="bad-signature") - value(
        before, "her2cds_auth_failures_total", reason="bad-signature"
    ) == pytest.approx(1)
    fb = {"rule": "tdxd-ild", "outcome": "overridden"}
    assert value(after, "her2cds_feedback_total", **fb) - value(
        before, "her2cds_feedback_total", **fb
    ) == pytest.approx(2)


def test_feedback_is_counted_per_rule_of_the_card(client: FlaskClient) -> None:
    cards = client.post(
        "/cds-services/her2-next-line", json=hook_request(load_fixture("her2_ild_after_thp"))
    ).get_json()["cards"]
    warning = next(c for c in cards if her2_ext(c)["kind"] == "warning")
    rule = her2_ext(warning)["rule"]
    before = scrape(client)
    feedback = {
        "feedback": [
            {
                "card": warning["uuid"],
                "outcome": "overridden",
                "overrideReason": {"userComment": "benefit outweighs the risk here"},
                "outcomeTimestamp": "2026-11-22T03:00:00Z",
            },
            {
                "card": "00000000-0000-4000-8000-000000000000",  # never emitted
                "outcome": "overridden",
                "overrideReason": {"userComment": "?"},
                "outcomeTimestamp": "2026-11-22T03:00:00Z",
            },
        ]
    }
    resp = client.post("/cds-services/her2-next-line/feedback", json=feedback)
    assert resp.status_code == 200
    after = scrape(client)
    for label in (rule, "unknown"):
        fb = {"rule": label, "outcome": "overridden"}
        assert value(after, "her2cds_feedback_total", **fb) - value(
            before, "her2cds_feedback_total", **fb
        ) == pytest.approx(1)


def test_auth_refusals_are_counted_by_reason(tmp_path: Any) -> None:
    from tests.auth_support import DISCOVERY, FakeClock, bearer, make_app, mint

    clock = FakeClock()
    client = make_app(tmp_path, clock).test_client()
    before = scrape(client)
    assert client.get("/cds-services").status_code == 401  # no token
    token = mint(DISCOVERY, clock())
    assert client.get("/cds-services", headers=bearer(token)).status_code == 200
    assert client.get("/cds-services", headers=bearer(token)).status_code == 401  # replayed
    after = scrape(client)
    moved = {
        dict(labels)["reason"]: v - before.get((name, labels), 0.0)
        for (name, labels), v in after.items()
        if name == "her2cds_auth_failures_total" and v - before.get((name, labels), 0.0) > 0
    }
    assert sum(moved.values()) == pytest.approx(2)
    assert len(moved) == 2  # two different reasons


def test_advice_flows_and_card_rules_pause_while_the_database_is_down(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from cds_service import create_app
    from cds_service.storage import after_response

    url = f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite'}"
    client = create_app({"database_url": url, "testing": True}).test_client()
    body = hook_request(load_fixture("her2_ild_after_thp"))
    with caplog.at_level("WARNING", logger="cds_service.storage.after_response"):
        for _ in range(3):
            resp = client.post("/cds-services/her2-next-line", json=body)
            assert resp.status_code == 200 and resp.get_json()["cards"]
            after_response.flush()  # commit now what the worker holds for up to 0.2 s
    failures = [r for r in caplog.records if r.name == "cds_service.storage.after_response"]
    assert len(failures) == 1  # tried once, then paused: no connect attempt per hook call
    assert "card rules" in failures[0].getMessage()
