"""Headers and content type (issue 20 item 9): JSON answers carry nosniff and no-store (they hold
patient data); POST bodies must be application/json, anything else is a 415 OperationOutcome,
which also stops "simple" cross-origin posts. The CDS Hooks sandbox's own Content-Type passes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench.shared import missing
from cds_service.api.feedback import stored_feedback
from cds_service.state import service_state
from tests.conftest import CAPTURES, hook_request, load_fixture
from tests.protocol_support import (
    SERVICE_OF_HOOK,
    assert_operation_outcome,
    capture,
    capture_resources,
    checking_client,
    with_our_prefetch,
)

PV = "/cds-services/her2-next-line"
FEEDBACK = f"{PV}/feedback"
ITEM: dict[str, Any] = {
    "card": "c1",
    "outcome": "overridden",
    "overrideReason": {"reason": {"code": "x", "system": "http://x.org"}},
    "outcomeTimestamp": "2026-11-22T02:00:00Z",
}


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return checking_client(app)


def _answers(client: FlaskClient) -> dict[str, Any]:
    body = hook_request(load_fixture("her2_after_thp_progression"))
    no_data = dict(body, prefetch={})
    return {
        "discovery": client.get("/cds-services"),
        "cards": client.post(PV, json=body),
        "400": client.post(PV, json={"hook": "patient-view"}),
        "404": client.post("/cds-services/nope", json=body),
        "405": client.get(PV),
        "412": client.post(PV, json=no_data),
        "feedback": client.post(FEEDBACK, json={"feedback": [ITEM]}),
        "openapi": client.get("/openapi.json"),
        "healthz": client.get("/healthz"),
    }


def test_json_answers_are_not_sniffed_nor_stored(client: FlaskClient) -> None:
    answers = _answers(client)
    assert answers["cards"].status_code == 200 and answers["412"].status_code == 412
    for name, resp in answers.items():
        assert resp.mimetype == "application/json", name
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", name
        assert resp.headers.get("Cache-Control") == "no-store", name


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "text/json",
    ],
)
@pytest.mark.parametrize("path", [PV, FEEDBACK])
def test_posts_that_are_not_application_json_are_415(
    app: Flask, client: FlaskClient, path: str, content_type: str | None
) -> None:
    body = hook_request(load_fixture("her2_de_novo")) if path == PV else {"feedback": [ITEM]}
    headers = {"Origin": "http://127.0.0.1:8085"}
    if content_type:
        headers["Content-Type"] = content_type
    resp = client.post(path, data=json.dumps(body), headers=headers)
    assert resp.status_code == 415, resp.get_data(as_text=True)
    text = assert_operation_outcome(resp.get_json())
    assert "application/json" in text
    assert resp.get_json()["issue"][0]["code"] == "not-supported"
    assert resp.headers["Access-Control-Allow-Origin"]  # a browser can read why
    assert stored_feedback(service_state(app).db) == []


def test_application_json_with_a_charset_is_accepted(client: FlaskClient) -> None:
    body = hook_request(load_fixture("her2_de_novo"))
    resp = client.post(
        PV, data=json.dumps(body), headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert resp.status_code == 200


@pytest.mark.skipif(not CAPTURES.exists(), reason=missing(CAPTURES))
@pytest.mark.parametrize("hook", ["patient-view", "order-select", "order-sign"])
def test_the_sandbox_content_type_is_accepted(client: FlaskClient, hook: str) -> None:
    """With the Content-Type header the sandbox sent (captured), as it sent it."""
    sent = json.loads((CAPTURES / f"sandbox-{hook}.json").read_text(encoding="utf-8"))
    body = with_our_prefetch(capture(hook), capture_resources())
    resp = client.post(
        f"/cds-services/{SERVICE_OF_HOOK[hook]}",
        data=json.dumps(body),
        headers={"Content-Type": sent["headers"]["Content-Type"]},
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
