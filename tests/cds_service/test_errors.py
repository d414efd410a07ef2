"""Errors through HTTP (section 10, requirements 7, 8, 31; 404, 405, 413): every non-2xx answer
is an OperationOutcome with a clear diagnostics text, and bad input never gives a 5xx."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service import create_app
from cds_service.config import Config
from tests.conftest import hook_request, load_fixture
from tests.protocol_support import assert_operation_outcome, checking_client

PV = "/cds-services/her2-next-line"
OS = "/cds-services/her2-order-select"
SIGN = "/cds-services/her2-order-sign"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return checking_client(app)


def valid(hook: str = "patient-view") -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if hook != "patient-view":
        draft = {
            "resourceType": "MedicationRequest",
            "id": "d1",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/denovo"},
            "medicationCodeableConcept": {"text": "capecitabine"},
        }
        ctx["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": draft}]}
        if hook == "order-select":
            ctx["selections"] = ["MedicationRequest/d1"]
    return hook_request(load_fixture("her2_de_novo"), hook, extra_context=ctx)


def diagnostics(resp: Any) -> str:
    return assert_operation_outcome(resp.get_json())


# --------------------------------------------------------------------------- 7: malformed


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"{", b"[]", b'"a string"', b"42", b"null", b"\xff\xfe{}", b'{"a":NaN}'],
)
def test_7_a_body_that_is_not_a_json_object_is_400(client: FlaskClient, raw: bytes) -> None:
    resp = client.post(PV, data=raw, content_type="application/json")
    assert resp.status_code == 400
    assert "body" in diagnostics(resp)


@pytest.mark.parametrize("field", ["hook", "hookInstance", "context"])
def test_7_missing_envelope_field_is_400(client: FlaskClient, field: str) -> None:
    body = valid()
    del body[field]
    resp = client.post(PV, json=body)
    assert resp.status_code == 400
    assert field in diagnostics(resp)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hook", 5),
        ("hookInstance", ["x"]),
        ("hookInstance", ""),
        ("context", "patient"),
        ("context", None),
        ("prefetch", []),
        ("fhirServer", "ftp://fhir.example.org"),
        ("fhirServer", 7),
        ("extension", "not an object"),
    ],
)
def test_7_mistyped_envelope_field_is_400(client: FlaskClient, field: str, value: Any) -> None:
    body = valid()
    body[field] = value
    resp = client.post(PV, json=body)
    assert resp.status_code == 400
    assert field in diagnostics(resp)


def test_7_fhir_authorization_without_fhir_server_is_400(client: FlaskClient) -> None:
    body = valid()
    body["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer"}
    resp = client.post(PV, json=body)
    assert resp.status_code == 400
    assert "fhirServer" in diagnostics(resp)


def test_7_a_prefetch_value_of_the_wrong_kind_is_400(client: FlaskClient) -> None:
    body = valid()
    body["prefetch"]["conditions"] = "Condition/1"
    resp = client.post(PV, json=body)
    assert resp.status_code == 400 and "prefetch.conditions" in diagnostics(resp)
    body["prefetch"]["conditions"] = {"resourceType": "Patient", "id": "x"}
    resp = client.post(PV, json=body)
    assert resp.status_code == 400 and "Condition" in diagnostics(resp)
    body["prefetch"]["conditions"] = {"resourceType": "Bundle", "entry": "none"}
    assert client.post(PV, json=body).status_code == 400


# --------------------------------------------------------------------------- 8: wrong context


@pytest.mark.parametrize(
    ("path", "hook"), [(PV, "order-sign"), (OS, "patient-view"), (SIGN, "order-select")]
)
def test_8_hook_not_the_services_is_400(client: FlaskClient, path: str, hook: str) -> None:
    body = valid(hook)
    resp = client.post(path, json=body)
    assert resp.status_code == 400
    assert hook in diagnostics(resp)


@pytest.mark.parametrize(
    ("hook", "path", "field"),
    [
        ("patient-view", PV, "patientId"),
        ("patient-view", PV, "userId"),
        ("order-select", OS, "patientId"),
        ("order-select", OS, "userId"),
        ("order-select", OS, "selections"),
        ("order-select", OS, "draftOrders"),
        ("order-sign", SIGN, "patientId"),
        ("order-sign", SIGN, "userId"),
        ("order-sign", SIGN, "draftOrders"),
    ],
)
def test_8_missing_required_context_field_is_400(
    client: FlaskClient, hook: str, path: str, field: str
) -> None:
    body = valid(hook)
    del body["context"][field]
    resp = client.post(path, json=body)
    assert resp.status_code == 400
    assert field in diagnostics(resp)


@pytest.mark.parametrize(
    ("hook", "path", "field", "value"),
    [
        ("patient-view", PV, "userId", "dr-1"),
        ("patient-view", PV, "userId", "Device/d1"),
        ("patient-view", PV, "patientId", "Patient/denovo"),
        ("order-select", OS, "userId", "Patient/denovo"),
        ("order-select", OS, "selections", "MedicationRequest/d1"),
        ("order-select", OS, "selections", []),
        ("order-select", OS, "draftOrders", {"resourceType": "MedicationRequest"}),
        ("order-sign", SIGN, "draftOrders", {"resourceType": "Bundle", "entry": [{}]}),
        ("order-sign", SIGN, "encounterId", 12),
    ],
)
def test_8_malformed_context_field_is_400(
    client: FlaskClient, hook: str, path: str, field: str, value: Any
) -> None:
    body = valid(hook)
    body["context"][field] = value
    resp = client.post(path, json=body)
    assert resp.status_code == 400
    assert field in diagnostics(resp)


# --------------------------------------------------------------------------- 404, 405, 413


def test_unknown_service_and_unknown_path_are_404(client: FlaskClient) -> None:
    resp = client.post("/cds-services/nope", json=valid())
    assert resp.status_code == 404
    assert resp.get_json()["issue"][0]["code"] == "not-found"
    assert client.post("/cds-services/nope/feedback", json={"feedback": []}).status_code == 404
    assert client.get("/no/such/path").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", PV),
        ("put", PV),
        ("delete", "/cds-services"),
        ("post", "/cds-services"),
        ("get", PV + "/feedback"),
    ],
)
def test_wrong_method_is_405_with_allow(client: FlaskClient, method: str, path: str) -> None:
    resp = getattr(client, method)(path)
    assert resp.status_code == 405
    assert "not allowed" in diagnostics(resp)
    assert "OPTIONS" in resp.headers["Allow"]


def test_413_over_the_configured_body_limit(tmp_path: Path) -> None:
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'db'}", "max_body_bytes": 2000})
    client = checking_client(app)
    body = valid()
    big = orjson.dumps(body)
    assert len(big) > 2000
    for path in (PV, PV + "/feedback"):
        resp = client.post(path, data=big, content_type="application/json")
        assert resp.status_code == 413
        assert "2000 bytes" in diagnostics(resp)
    # chunked, with no Content-Length (as gunicorn passes it): the limit holds while reading
    resp = client.post(
        PV,
        input_stream=io.BytesIO(big),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert resp.status_code == 413


def test_413_default_limit_is_10_mb_and_configurable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Config().max_body_bytes == 10 * 1024 * 1024
    client = checking_client(create_app({"database_url": f"sqlite:///{tmp_path / 'db'}"}))
    padded = valid()
    padded["extension"] = {"org.example": {"pad": "x" * (10 * 1024 * 1024)}}
    assert client.post(PV, json=padded).status_code == 413
    small = valid()
    small["extension"] = {"org.example": {"pad": "x" * (9 * 1024 * 1024)}}
    assert client.post(PV, json=small).status_code == 200
    monkeypatch.setenv("HER2CDS_MAX_BODY_BYTES", "5000")
    limited = checking_client(create_app({"database_url": f"sqlite:///{tmp_path / 'db2'}"}))
    assert limited.post(PV, json=small).status_code == 413


def test_412_is_an_operation_outcome(client: FlaskClient) -> None:
    body = valid()
    body["prefetch"] = None
    resp = client.post(PV, json=body)
    assert resp.status_code == 412
    assert "no fhirServer" in diagnostics(resp)


def test_31_every_non_2xx_answer_is_a_json_operation_outcome(tmp_path: Path) -> None:
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'db'}", "max_body_bytes": 5000})
    client = app.test_client()  # a plain client: this test checks by itself
    no_data = valid()
    no_data["prefetch"] = None
    padded = valid()
    padded["extension"] = {"x": {"pad": "x" * 6000}}
    answers = {
        400: client.post(PV, data=b"{", content_type="application/json"),
        404: client.post("/cds-services/nope", json=valid()),
        405: client.get(PV),
        412: client.post(PV, json=no_data),
        413: client.post(PV, json=padded),
    }
    for status, resp in answers.items():
        assert resp.status_code == status
        assert resp.mimetype == "application/json"
        body = resp.get_json()
        assert body["resourceType"] == "OperationOutcome"
        issue = body["issue"][0]
        assert issue["severity"] == "error" and issue["code"] and issue["diagnostics"]


# --------------------------------------------------------------------------- fuzzing (7, 31)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def _mutations() -> st.SearchStrategy[tuple[str, list[str], Any]]:
    """(hook, path into a valid request, new value): small breakages of real requests."""
    paths = [
        [],
        ["context"],
        ["context", "patientId"],
        ["context", "userId"],
        ["context", "draftOrders"],
        ["context", "draftOrders", "entry"],
        ["context", "draftOrders", "entry", "0"],
        ["context", "draftOrders", "entry", "0", "resource"],
        ["context", "draftOrders", "entry", "0", "resource", "medicationCodeableConcept"],
        ["context", "draftOrders", "entry", "0", "resource", "dosageInstruction"],
        ["context", "draftOrders", "entry", "0", "resource", "status"],
        ["context", "selections"],
        ["prefetch"],
        ["prefetch", "conditions"],
        ["prefetch", "conditions", "entry"],
        ["prefetch", "conditions", "entry", "0", "resource"],
        ["prefetch", "conditions", "entry", "0", "resource", "code"],
        ["prefetch", "conditions", "entry", "0", "resource", "onsetDateTime"],
        ["prefetch", "observations", "entry", "0", "resource", "valueCodeableConcept"],
        ["prefetch", "observations", "entry", "0", "resource", "effectiveDateTime"],
        ["prefetch", "medicationStatements", "entry", "0", "resource"],
        ["prefetch", "medicationStatements", "entry", "0", "resource", "effectivePeriod"],
        ["prefetch", "medicationStatements", "entry", "0", "resource", "medicationCodeableConcept"],
        ["prefetch", "patient"],
        ["prefetch", "patient", "birthDate"],
        ["fhirServer"],
        ["fhirAuthorization"],
        ["hookInstance"],
    ]
    return st.tuples(
        st.sampled_from(["patient-view", "order-select", "order-sign"]),
        st.sampled_from(paths),
        json_values,
    )


def _set(body: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = body
    for key in path[:-1]:
        if isinstance(node, list):
            if not node:
                return
            node = node[int(key) % len(node)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return
    if not path:
        return
    last = path[-1]
    if isinstance(node, list) and node:
        node[int(last) % len(node)] = value
    elif isinstance(node, dict):
        node[last] = value


_SERVICE = {"patient-view": PV, "order-select": OS, "order-sign": SIGN}
_BASES = {hook: valid(hook) for hook in _SERVICE}
_fuzz_app = create_app({"database_url": "sqlite://", "fhir_timeout": 0.5})
_fuzz_client = checking_client(_fuzz_app)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=json_values, path=st.sampled_from([PV, OS, SIGN, PV + "/feedback", "/cds-services/x"]))
def test_fuzz_random_json_never_gives_5xx(body: Any, path: str) -> None:
    resp = _fuzz_client.post(path, data=json.dumps(body), content_type="application/json")
    assert resp.status_code < 500
    if resp.status_code != 200:
        assert_operation_outcome(resp.get_json())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutation=_mutations())
def test_fuzz_broken_real_requests_never_give_5xx(mutation: tuple[str, list[str], Any]) -> None:
    """Real requests with one part replaced by random JSON: 200, 4xx, never 5xx."""
    hook, path, value = mutation
    body = copy.deepcopy(_BASES[hook])
    _set(body, path, value)
    resp = _fuzz_client.post(_SERVICE[hook], data=json.dumps(body), content_type="application/json")
    assert resp.status_code < 500, (path, value, resp.get_json())
    if resp.status_code != 200:
        assert_operation_outcome(resp.get_json())


def test_413_and_preflight_over_a_real_http_server(tmp_path: Path) -> None:
    """Through a real WSGI server on 127.0.0.1: a chunked body over the limit (no
    Content-Length) is cut off with 413, and a browser's preflight is answered."""
    import http.client
    import threading

    from werkzeug.serving import make_server

    app = create_app({"database_url": f"sqlite:///{tmp_path / 'db'}", "max_body_bytes": 4096})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        chunks = (b'{"pad": "' + b"x" * 1000 + b'"}' for _ in range(10))
        conn.request(
            "POST",
            PV,
            body=chunks,
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        assert resp.status == 413
        assert_operation_outcome(json.loads(resp.read()))
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        conn.request(
            "OPTIONS",
            PV,
            headers={
                "Origin": "http://127.0.0.1:8080",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 204
        assert resp.getheader("Access-Control-Allow-Origin") == "*"
        assert "authorization" in resp.getheader("Access-Control-Allow-Headers", "").lower()
        conn.close()
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_a_body_shorter_than_its_content_length_is_400_over_a_real_http_server(
    tmp_path: Path,
) -> None:
    """The body is read straight from the server's stream up to Content-Length: a client
    that stops sending early gets a 400 that says so, not a parse of half a request; the
    whole body, sent slowly in pieces, is read in full."""
    import socket
    import threading
    import time

    from werkzeug.serving import make_server

    app = create_app({"database_url": f"sqlite:///{tmp_path / 'db'}"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    body = orjson.dumps(valid())
    head = (
        f"POST {PV} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    def exchange(pieces: list[bytes], cut: bool) -> tuple[int, Any]:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
            sock.sendall(head)
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(0.02)
            if cut:
                sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])

    try:
        status, outcome = exchange([body[:100]], cut=True)
        assert status == 400
        assert_operation_outcome(outcome)
        assert f"ended after 100 of {len(body)} bytes" in outcome["issue"][0]["diagnostics"]
        status, answer = exchange([body[:100], body[100:1000], body[1000:]], cut=False)
        assert status == 200
        assert "cards" in answer
    finally:
        server.shutdown()
        thread.join(timeout=5)
