"""One JSON log line per request: what it carries, and what it never carries."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.observability.logging_setup import REQUEST_LOGGER, JsonFormatter, patient_hash
from tests.conftest import her2_ext, hook_request, load_fixture

SALT = "test-salt-0123456789"


@pytest.fixture
def salted_app(tmp_path: Path) -> Flask:
    return create_app(
        {"database_url": f"sqlite:///{tmp_path / 'log.db'}", "testing": True, "log_salt": SALT}
    )


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(REQUEST_LOGGER)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_hook_call_logs_one_json_line_with_hashed_patient_and_rules(
    salted_app: Flask, log_lines: io.StringIO
) -> None:
    body = hook_request(load_fixture("her2_ild_after_thp"))
    body["fhirServer"] = "http://127.0.0.1:9/fhir"
    body["fhirAuthorization"] = {
        "access_token": "SECRET-FHIR-TOKEN",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "her2-cds",
    }
    resp = salted_app.test_client().post(
        "/cds-services/her2-next-line?access_token=SECRET-QUERY",
        json=body,
        headers={"Authorization": "Bearer SECRET-JWT", "X-Request-Id": "req-42"},
    )
    assert resp.status_code == 200
    cards = resp.get_json()["cards"]
    raw = log_lines.getvalue()
    assert "SECRET" not in raw
    records = lines(log_lines)
    assert len(records) == 1
    rec = records[0]
    pid = body["context"]["patientId"]
    assert f'"{pid}"' not in raw  # the id never appears as a value
    assert rec["event"] == "request"
    assert rec["path"] == "/cds-services/her2-next-line"
    assert rec["service"] == "her2-next-line"
    assert rec["status"] == 200
    assert isinstance(rec["latency_ms"], float) and rec["latency_ms"] >= 0
    assert rec["hookInstance"] == body["hookInstance"]
    assert rec["patient"] == patient_hash(pid, SALT)
    assert rec["cards"] == len(cards)
    fired = {her2_ext(c).get("rule") for c in cards if her2_ext(c)["kind"] == "warning"}
    assert fired and fired <= set(rec["rules"])
    assert rec["level"] == "INFO" and rec["logger"] == REQUEST_LOGGER
    assert rec["requestId"] == "req-42"


def test_patient_hash_depends_on_the_salt() -> None:
    assert patient_hash("p1", "a") == patient_hash("p1", "a")
    assert patient_hash("p1", "a") != patient_hash("p1", "b")
    assert patient_hash("p1", "a") != patient_hash("p2", "a")
    assert len(patient_hash("p1", "a")) == 16


def test_every_request_is_logged_without_query_string(
    salted_app: Flask, log_lines: io.StringIO
) -> None:
    client = salted_app.test_client()
    assert client.get("/healthz?x=SECRET").status_code == 200
    assert client.post("/cds-services/nope", json={}).status_code == 404
    assert (
        client.post(
            "/cds-services/her2-next-line", data=b"[", content_type="application/json"
        ).status_code
        == 400
    )
    assert "SECRET" not in log_lines.getvalue()
    records = lines(log_lines)
    assert [(r["path"], r["status"]) for r in records] == [
        ("/healthz", 200),
        ("/cds-services/nope", 404),
        ("/cds-services/her2-next-line", 400),
    ]
    assert all("hookInstance" not in r for r in records)


def test_path_arguments_other_than_the_service_id_are_not_logged(
    salted_app: Flask, log_lines: io.StringIO
) -> None:
    client = salted_app.test_client()
    client.get("/timeline/patient-SECRET-42?view=SECRET-TOKEN")
    (rec,) = lines(log_lines)
    assert rec["path"] == "/timeline/<patient_id>"
    assert "SECRET" not in log_lines.getvalue()


def test_auth_refusal_and_client_are_logged_never_the_token(
    tmp_path: Path, log_lines: io.StringIO
) -> None:
    from tests.auth_support import DISCOVERY, ISS, FakeClock, bearer, make_app, mint

    clock = FakeClock()
    client = make_app(tmp_path, clock).test_client()
    token = mint(DISCOVERY, clock())
    assert client.get("/cds-services", headers=bearer(token)).status_code == 200
    assert client.get("/cds-services", headers=bearer(token)).status_code == 401  # replay
    assert client.get("/cds-services").status_code == 401
    ok, replayed, missing = lines(log_lines)
    assert ok["client"] == ISS and "authFailure" not in ok
    assert replayed["status"] == 401 and replayed["authFailure"]
    assert missing["authFailure"] and missing["authFailure"] != replayed["authFailure"]
    assert token not in log_lines.getvalue()
    assert token.split(".")[2] not in log_lines.getvalue()


def test_the_line_and_the_metrics_are_written_once_the_answer_is_sent(
    salted_app: Flask, log_lines: io.StringIO
) -> None:
    """The clinician waits for the cards, not for the log: the request line and the request's
    metrics come when the server closes the response (WSGI close), after sending it."""
    from prometheus_client import REGISTRY

    def answered() -> float:
        labels = {"endpoint": "hooks.call_service", "service": "her2-next-line", "status": "200"}
        return REGISTRY.get_sample_value("her2cds_requests_total", labels) or 0.0

    body = hook_request(load_fixture("her2_ild_after_thp"))
    before = answered()
    # Werkzeug's own client (not the suite's closing one) leaves the response open, as a
    # server does until it has sent it.
    client = FlaskClient(salted_app, salted_app.response_class)
    resp = client.post("/cds-services/her2-next-line", json=body)
    assert resp.status_code == 200
    assert resp.get_json()["cards"]
    assert lines(log_lines) == []
    assert answered() == before
    resp.close()
    (line,) = lines(log_lines)
    assert line["hookInstance"] == body["hookInstance"] and line["status"] == 200
    assert line["patient"] == patient_hash(body["context"]["patientId"], SALT)
    assert answered() == before + 1


def test_a_failure_writing_the_line_spares_the_answer_and_the_calls_writes(
    salted_app: Flask,
    log_lines: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The line is written after the answer, beside the call's database writes: if making it
    fails, the failure is logged and the card's timeline link still opens."""
    import cds_service.observability.metrics

    def broken(req: Any) -> tuple[str, str]:
        raise RuntimeError("labels unavailable")

    monkeypatch.setattr(cds_service.observability.metrics, "request_labels", broken)
    client = salted_app.test_client()
    resp = client.post(
        "/cds-services/her2-next-line", json=hook_request(load_fixture("her2_ild_after_thp"))
    )
    assert resp.status_code == 200
    assert lines(log_lines) == []
    failures = [r for r in caplog.records if r.getMessage() == "after-response work failed"]
    assert len(failures) == 2  # the line and the request's metrics, each logged
    smart = [
        link["url"]
        for card in resp.get_json()["cards"]
        for link in card.get("links", [])
        if "/timeline/" in link["url"]
    ]
    assert smart
    page = client.get(smart[0].removeprefix("http://localhost"))
    assert page.status_code == 200 and "<svg" in page.get_data(as_text=True)


def test_the_log_line_and_the_latency_histogram_report_one_clock_reading(
    salted_app: Flask, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request is timed once: a clock that moves a second per reading would give two
    timers two different figures; the log line and the histogram must agree to the letter."""
    import time

    from prometheus_client import REGISTRY

    ticks = iter(range(1_000_000))
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(ticks)))
    labels = {"endpoint": "hooks.call_service", "service": "her2-next-line", "status": "200"}

    def latency_sum() -> float:
        found = REGISTRY.get_sample_value("her2cds_request_duration_seconds_sum", labels)
        return found or 0.0

    before = latency_sum()
    body = hook_request(load_fixture("her2_ild_after_thp"))
    resp = salted_app.test_client().post("/cds-services/her2-next-line", json=body)
    assert resp.status_code == 200
    observed = latency_sum() - before
    (rec,) = [r for r in lines(log_lines) if r["path"] == "/cds-services/her2-next-line"]
    assert observed >= 1.0
    assert rec["latency_ms"] == pytest.approx(observed * 1000)
