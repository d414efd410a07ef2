"""/openapi.json says what the service does: who needs a JWT, what each operation answers, each
CDS service's request (its hook's context, its prefetch keys) with an example it answers 200."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from werkzeug.test import TestResponse

from cds_service import create_app
from cds_service.services import BY_ID, SERVICES, Service
from tests.auth_support import FakeClock, make_app
from tests.conftest import hook_request, load_fixture

JSON = "application/json"
Operation = tuple[str, str, dict[str, Any]]


def document(app: Flask) -> dict[str, Any]:
    resp = app.test_client().get("/openapi.json")
    assert resp.status_code == 200
    doc: dict[str, Any] = resp.get_json()
    validate(doc)
    return doc


def operations(doc: dict[str, Any]) -> Iterator[Operation]:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema validator for a schema of the document (its $refs resolve in it)."""
    return Draft202012Validator({**schema, "components": doc["components"]})


def request_example(op: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = op["requestBody"]["content"][JSON]["examples"]["minimal"]["value"]
    return copy.deepcopy(value)


def call(client: FlaskClient, path: str, method: str, op: dict[str, Any], **kw: Any) -> Any:
    """Call an operation of the document, its path filled in and, for a POST, a JSON body (the
    operation's example, or an empty object) unless `kw` says otherwise."""
    url = path.replace("{service_id}", SERVICES[0].id).replace("{patient_id}", "p-1")
    if method == "post" and "data" not in kw and "json" not in kw:
        examples = op["requestBody"]["content"][JSON].get("examples")
        kw["json"] = request_example(op) if examples else {}
    return client.open(url, method=method.upper(), **kw)


def assert_documented(doc: dict[str, Any], op: dict[str, Any], resp: TestResponse) -> None:
    """The answer's status, content type and body are what the operation documents."""
    status = str(resp.status_code)
    assert status in op["responses"], (op["operationId"], status, resp.get_data(as_text=True))
    content = op["responses"][status].get("content", {})
    assert resp.mimetype in content, (op["operationId"], status, resp.mimetype)
    schema = content[resp.mimetype].get("schema")
    if schema is not None and resp.mimetype == JSON:
        errors = list(validator(doc, schema).iter_errors(resp.get_json()))
        assert not errors, (op["operationId"], status, errors[0].message)


# --- security: declared per operation, where the service asks for it -----------------------


def test_with_auth_required_exactly_the_guarded_operations_declare_the_jwt(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path, FakeClock())
    doc = document(app)
    assert "security" not in doc  # nothing is claimed for every operation
    client = app.test_client()
    guarded = set()
    for path, method, op in operations(doc):
        declared = {"cdsHooksJwt": []} in op.get("security", [])
        resp = call(client, path, method, op)  # no Authorization header
        assert (resp.status_code == 401) == declared, (path, method, resp.status_code)
        assert_documented(doc, op, resp)
        if declared:
            guarded.add(path)
            assert {"401", "403", "503"} <= set(op["responses"]), path
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
    assert guarded == {"/cds-services", "/cds-services/{service_id}/feedback"} | {
        f"/cds-services/{s.id}" for s in SERVICES
    }


def test_with_auth_off_no_operation_claims_a_jwt_or_a_401(client: FlaskClient, app: Flask) -> None:
    doc = document(app)
    assert "security" not in doc
    for path, method, op in operations(doc):
        assert {"cdsHooksJwt": []} not in op.get("security", []), (path, method)
        assert not {"401", "403"} & set(op["responses"]), (path, method)
        if path.startswith("/cds-services") or path in ("/healthz", "/openapi.json"):
            assert call(client, path, method, op).status_code in (200, 412), (path, method)


def test_the_timeline_page_declares_its_link_token(client: FlaskClient, app: Flask) -> None:
    doc = document(app)
    page = doc["paths"]["/timeline/{patient_id}"]["get"]
    scheme = doc["components"]["securitySchemes"]["timelineLink"]
    assert page["security"] == [{"timelineLink": []}]
    assert scheme == {**scheme, "type": "apiKey", "in": "query", "name": "view"}
    body = hook_request(load_fixture("her2_after_thp_progression"))
    cards = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    links = [lk["url"] for c in cards for lk in c.get("links", []) if "/timeline/" in lk["url"]]
    assert links and "?view=" in links[0]
    url = links[0].split("://", 1)[1].split("/", 1)[1]
    assert_documented(doc, page, client.get("/" + url))
    without = client.get("/" + url.split("?", 1)[0])
    assert without.status_code == 404
    assert_documented(doc, page, without)


# --- every status an operation answers is documented, with its body ------------------------


@pytest.fixture
def small_app(tmp_path: Path) -> Flask:
    return create_app(
        {"database_url": f"sqlite:///{tmp_path / 't.db'}", "testing": True, "max_body_bytes": 8000}
    )


def test_each_answer_is_documented_with_its_body(small_app: Flask) -> None:
    doc = document(small_app)
    client = small_app.test_client()
    big = b'{"x": "' + b"a" * 9000 + b'"}'
    seen: dict[str, set[int]] = {}
    for path, method, op in operations(doc):
        answers = [call(client, path, method, op)]
        if method == "post":
            answers += [
                call(client, path, method, op, json={"resourceType": 7}),
                call(client, path, method, op, data=b"{}", content_type="text/plain"),
                call(client, path, method, op, data=big, content_type=JSON),
            ]
        if path.startswith("/cds-services/her2"):
            no_prefetch = request_example(op)
            del no_prefetch["prefetch"]
            answers.append(call(client, path, method, op, json=no_prefetch))
        if path.endswith("/feedback"):
            answers.append(client.post("/cds-services/nope/feedback", json={}))
        if path == "/timeline/{patient_id}":
            answers.append(client.get("/timeline/a%2Fb"))  # not the route: a JSON 404
        for resp in answers:
            assert_documented(doc, op, resp)
            seen.setdefault(op["operationId"], set()).add(resp.status_code)
    for service in SERVICES:
        assert seen[f"callService.{service.id}"] == {200, 400, 412, 413, 415}
    assert seen["feedback"] == {200, 400, 404, 413, 415}
    assert seen["timelineFromData"] == {200, 400, 413, 415}
    assert seen["timelinePage"] == {404}


def test_the_body_deadline_and_the_database_are_documented(app: Flask) -> None:
    """408 (cds_service.api.validation: a body that stops arriving) and 503 cannot be provoked
    through the test client; the operations that can answer them say so."""
    doc = document(app)
    for service in SERVICES:
        assert "408" in doc["paths"][f"/cds-services/{service.id}"]["post"]["responses"]
    feedback = doc["paths"]["/cds-services/{service_id}/feedback"]["post"]["responses"]
    assert {"408", "503"} <= set(feedback)
    assert "503" in doc["paths"]["/readyz"]["get"]["responses"]


# --- each service's request: its hook's context and its prefetch keys ----------------------

HOOK_CONTEXT = {  # /work/shared/reference/cds-hooks-2.0.md, "Hooks"
    "patient-view": ({"userId", "patientId"}, {"encounterId"}),
    "order-select": ({"userId", "patientId", "selections", "draftOrders"}, {"encounterId"}),
    "order-sign": ({"userId", "patientId", "draftOrders"}, {"encounterId"}),
}


def service_op(doc: dict[str, Any], service: Service) -> dict[str, Any]:
    op: dict[str, Any] = doc["paths"][f"/cds-services/{service.id}"]["post"]
    return op


def request_validator(doc: dict[str, Any], op: dict[str, Any]) -> Draft202012Validator:
    return validator(doc, op["requestBody"]["content"][JSON]["schema"])


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.id)
def test_each_service_describes_its_hooks_context_and_its_prefetch(
    app: Flask, client: FlaskClient, service: Service
) -> None:
    doc = document(app)
    schema = resolve(doc, service_op(doc, service)["requestBody"]["content"][JSON]["schema"])
    own = next(part for part in schema["allOf"] if "properties" in part)["properties"]
    assert own["hook"] == {"const": service.hook}
    context = resolve(doc, own["context"])
    required, optional = HOOK_CONTEXT[service.hook]
    assert set(context["required"]) == required
    assert set(context["properties"]) == required | optional
    prefetch = resolve(doc, own["prefetch"]["anyOf"][1])
    discovery = client.get("/cds-services").get_json()["services"]
    templates = next(d["prefetch"] for d in discovery if d["id"] == service.id)
    assert set(prefetch["properties"]) == set(templates)
    for key, template in templates.items():
        assert template in prefetch["properties"][key]["description"]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.id)
def test_each_example_is_valid_and_answered_200(
    app: Flask, client: FlaskClient, service: Service
) -> None:
    doc = document(app)
    op = service_op(doc, service)
    example = request_example(op)
    assert not list(request_validator(doc, op).iter_errors(example))
    assert example["hook"] == service.hook
    assert set(example["context"]) == set().union(*HOOK_CONTEXT[service.hook])
    assert set(example["prefetch"]) == set(
        client.get("/cds-services").get_json()["services"][0]["prefetch"]
    )
    resp = client.post(f"/cds-services/{service.id}", json=example)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert_documented(doc, op, resp)


def _broken(example: dict[str, Any], how: str, service: Service) -> dict[str, Any]:
    body = copy.deepcopy(example)
    if how == "other hook":
        body["hook"] = next(s.hook for s in SERVICES if s.hook != service.hook)
    elif how == "no patientId":
        del body["context"]["patientId"]
    elif how == "patient as user":
        body["context"]["userId"] = "Patient/example-1"
    elif how == "bad patientId":
        body["context"]["patientId"] = "a/b"
    elif how == "no draftOrders":
        body["context"].pop("draftOrders", None)
        body["context"].pop("selections", None)
        if service.hook == "patient-view":
            body["context"]["userId"] = "Device/x"
    return body


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.id)
@pytest.mark.parametrize(
    "how", ["other hook", "no patientId", "patient as user", "bad patientId", "no draftOrders"]
)
def test_the_schema_rejects_what_the_service_rejects(
    app: Flask, client: FlaskClient, service: Service, how: str
) -> None:
    doc = document(app)
    op = service_op(doc, service)
    body = _broken(request_example(op), how, service)
    valid = request_validator(doc, op).is_valid(body)
    status = client.post(f"/cds-services/{service.id}", json=body).status_code
    assert valid == (status == 200), (how, status)
    # a Patient may be the user of patient-view, not of the order hooks (CDS Hooks 2.0)
    assert status == (200 if (how, service.hook) == ("patient as user", "patient-view") else 400)


def test_every_service_of_discovery_has_its_path(app: Flask) -> None:
    doc = document(app)
    assert {p for p in doc["paths"] if p.startswith("/cds-services/her2")} == {
        f"/cds-services/{sid}" for sid in BY_ID
    }


@pytest.mark.parametrize(
    "fixture", ["her2_after_thp_progression", "her2_de_novo", "her2_ild_after_thp"]
)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.id)
def test_real_cards_are_the_documented_cards(
    app: Flask, client: FlaskClient, fixture: str, service: Service
) -> None:
    doc = document(app)
    op = service_op(doc, service)
    example = request_example(op)
    extra = {k: v for k, v in example["context"].items() if k in ("selections", "draftOrders")}
    body = hook_request(load_fixture(fixture), service.hook, extra_context=extra)
    resp = client.post(f"/cds-services/{service.id}", json=body)
    assert resp.status_code == 200 and resp.get_json()["cards"], resp.get_data(as_text=True)
    assert_documented(doc, op, resp)
    card = copy.deepcopy(resp.get_json()["cards"][0])
    card["summary"] = "x" * 140  # CDS Hooks 2.0: under 140 characters
    response = validator(doc, {"$ref": "#/components/schemas/CdsResponse"})
    assert not response.is_valid({"cards": [card]})
