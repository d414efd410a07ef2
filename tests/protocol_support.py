"""Test helpers for the CDS Hooks protocol: a real FHIR server on 127.0.0.1, a test client that
checks every response against the spec's general rules, and the sandbox captures."""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cds_service.config import Config
from cds_service.services import prefetch_templates
from cds_service.state import service_state
from her2cds_cli.local_fhir import fill_prefetch, search
from tests.conftest import CAPTURES

SERVICE_OF_HOOK = {
    "patient-view": "her2-next-line",
    "order-select": "her2-order-select",
    "order-sign": "her2-order-sign",
}
TOP_LEVEL_EMPTY_OK = frozenset({"cards", "services"})


# ---------------------------------------------------------------------------- response checks


def empty_values(value: Any, path: str = "") -> list[str]:
    """Paths of every null, "", [] or {} in `value` (CDS Hooks 2.0 'Use of JSON'), except a
    top-level `cards: []` or `services: []`."""
    found: list[str] = []
    if value is None or value == "" or value == [] or value == {}:
        top = path.lstrip("/")
        if not (value == [] and top in TOP_LEVEL_EMPTY_OK):
            found.append(path or "/")
        return found
    if isinstance(value, dict):
        for k, v in value.items():
            found.extend(empty_values(v, f"{path}/{k}"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(empty_values(v, f"{path}/{i}"))
    return found


def assert_operation_outcome(body: Any) -> str:
    """The diagnostics of an OperationOutcome body (asserting that it is one)."""
    assert isinstance(body, dict), body
    assert body.get("resourceType") == "OperationOutcome", body
    issues = body.get("issue")
    assert isinstance(issues, list) and issues, body
    diagnostics = issues[0].get("diagnostics")
    assert isinstance(diagnostics, str) and diagnostics.strip(), body
    assert "Traceback" not in diagnostics
    return diagnostics


_INDICATORS = frozenset({"info", "warning", "critical"})
_BEHAVIOURS = frozenset({"at-most-one", "any"})
_ACTIONS = frozenset({"create", "update", "delete"})
_RELATIVE_REF = re.compile(r"^[A-Za-z]+/[A-Za-z0-9.-]{1,64}$")


def _absolute(url: Any) -> bool:
    parts = urlsplit(url) if isinstance(url, str) else None
    return bool(parts and parts.scheme in ("http", "https") and parts.netloc)


def action_problems(action: Any, where: str) -> list[str]:
    """Requirement 22 (and 25): type, description, resource or resourceId."""
    if not isinstance(action, dict):
        return [f"{where}: not an object"]
    out = []
    if action.get("type") not in _ACTIONS:
        out.append(f"{where}/type: {action.get('type')!r}")
    if not isinstance(action.get("description"), str) or not action["description"]:
        out.append(f"{where}/description missing")
    if action.get("type") in ("create", "update"):
        resource = action.get("resource")
        if not isinstance(resource, dict) or not resource.get("resourceType"):
            out.append(f"{where}/resource needs a resourceType")
    if action.get("type") == "delete":
        if "resource" in action:
            out.append(f"{where}: delete carries resource (deprecated)")
        if not _RELATIVE_REF.match(str(action.get("resourceId", ""))):
            out.append(f"{where}/resourceId must be Type/id")
    return out


def card_problems(body: Any) -> list[str]:
    """Section 10 requirements 17-26 on a CDS Hooks response body; [] when it keeps them all."""
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        return ["the response has no cards array"]
    out: list[str] = []
    ids: list[str] = []
    for i, card in enumerate(body["cards"]):
        w = f"cards/{i}"
        summary = card.get("summary")
        if not isinstance(summary, str) or not summary or len(summary) >= 140:
            out.append(f"{w}/summary must be a string under 140 characters")
        if card.get("indicator") not in _INDICATORS:
            out.append(f"{w}/indicator: {card.get('indicator')!r}")
        source = card.get("source")
        if not isinstance(source, dict) or not isinstance(source.get("label"), str):
            out.append(f"{w}/source/label missing")
            source = {}
        for key in ("url", "icon"):
            if key in source and not _absolute(source[key]):
                out.append(f"{w}/source/{key} must be an absolute URL")
        topic = source.get("topic")
        if topic is not None and not (
            isinstance(topic, dict) and topic.get("code") and topic.get("system")
        ):
            out.append(f"{w}/source/topic must be a Coding with code and system")
        if "detail" in card and (not isinstance(card["detail"], str) or not card["detail"]):
            out.append(f"{w}/detail must be non-empty markdown")
        if "<script" in str(card.get("detail", "")).lower():
            out.append(f"{w}/detail carries HTML")
        if isinstance(card.get("uuid"), str) and card["uuid"]:
            ids.append(card["uuid"])
        else:
            out.append(f"{w}/uuid missing (feedback needs it)")
        suggestions = card.get("suggestions")
        if suggestions is not None:
            if card.get("selectionBehavior") not in _BEHAVIOURS:
                out.append(f"{w}/selectionBehavior: {card.get('selectionBehavior')!r}")
            recommended = [s for s in suggestions if s.get("isRecommended") is True]
            if card.get("selectionBehavior") == "at-most-one" and len(recommended) > 1:
                out.append(f"{w}: several suggestions recommended with at-most-one")
            for j, sug in enumerate(suggestions):
                sw = f"{w}/suggestions/{j}"
                if not isinstance(sug.get("label"), str) or not sug["label"]:
                    out.append(f"{sw}/label missing")
                if isinstance(sug.get("uuid"), str) and sug["uuid"]:
                    ids.append(sug["uuid"])
                else:
                    out.append(f"{sw}/uuid missing (feedback needs it)")
                for k, action in enumerate(sug.get("actions") or []):
                    out.extend(action_problems(action, f"{sw}/actions/{k}"))
        for j, link in enumerate(card.get("links") or []):
            lw = f"{w}/links/{j}"
            if not (isinstance(link.get("label"), str) and _absolute(link.get("url"))):
                out.append(f"{lw} needs a label and an absolute url")
            if link.get("type") not in ("absolute", "smart"):
                out.append(f"{lw}/type: {link.get('type')!r}")
            if "appContext" in link and link.get("type") != "smart":
                out.append(f"{lw}/appContext only on smart links")
            if "autolaunchable" in link and not isinstance(link["autolaunchable"], bool):
                out.append(f"{lw}/autolaunchable must be a boolean")
        for j, reason in enumerate(card.get("overrideReasons") or []):
            if not all(isinstance(reason.get(k), str) and reason[k] for k in _CODING):
                out.append(f"{w}/overrideReasons/{j} needs code, system and display")
    if "systemActions" in body:
        actions = body["systemActions"]
        if not isinstance(actions, list) or not actions:
            out.append("systemActions must be a non-empty array")
        else:
            for k, action in enumerate(actions):
                out.extend(action_problems(action, f"systemActions/{k}"))
    if len(ids) != len(set(ids)):
        out.append("card and suggestion uuids are not unique")
    return out


_CODING = ("code", "system", "display")


def check_response(resp: TestResponse, cfg: Config) -> None:
    """Rules every response of the service keeps, whatever the request was."""
    origin = resp.request.headers.get("Origin")
    allow = resp.headers.get("Access-Control-Allow-Origin")
    if "*" in cfg.cors_origins:
        assert allow == "*", f"{resp.request.path}: no Access-Control-Allow-Origin"
    elif origin in cfg.cors_origins:
        assert allow == origin
    else:
        assert allow is None
    text = resp.get_data(as_text=True)
    assert "Traceback" not in text
    if not 200 <= resp.status_code < 300:
        assert resp.mimetype == "application/json", (resp.status_code, text[:200])
        assert_operation_outcome(json.loads(text))
        assert resp.status_code < 500 or resp.status_code == 503, (resp.status_code, text)
    if resp.mimetype == "application/json" and text and resp.request.path != "/openapi.json":
        data = json.loads(text)
        empties = empty_values(data)
        assert not empties, f"{resp.request.path}: empty values at {empties[:5]}"
        if 200 <= resp.status_code < 300 and isinstance(data, dict) and "cards" in data:
            problems = card_problems(data)
            assert not problems, f"{resp.request.path}: {problems[:5]}"


class CheckingClient(FlaskClient):
    """A Flask test client that applies `check_response` to every response."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        resp = super().open(*args, **kwargs)
        cfg = service_state(self.application).config
        check_response(resp, cfg)
        return resp


def checking_client(app: Flask) -> FlaskClient:
    app.test_client_class = CheckingClient
    return app.test_client()


# ---------------------------------------------------------------------------- sandbox captures


def capture(hook: str) -> dict[str, Any]:
    """The body the CDS Hooks sandbox sent for `hook` (a fresh copy)."""
    data = json.loads((CAPTURES / f"sandbox-{hook}.json").read_text(encoding="utf-8"))
    body: dict[str, Any] = data["body"]
    return copy.deepcopy(body)


def capture_resources() -> list[dict[str, Any]]:
    """The patient's FHIR resources as the sandbox's FHIR server gave them (patient-view)."""
    out: list[dict[str, Any]] = []
    for value in capture("patient-view")["prefetch"].values():
        if value.get("resourceType") == "Bundle":
            out.extend(e["resource"] for e in value.get("entry", []))
        else:
            out.append(value)
    return out


def with_our_prefetch(body: dict[str, Any], resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """`body` with its prefetch replaced by our templates filled from `resources`."""
    out = copy.deepcopy(body)
    out["prefetch"] = fill_prefetch(prefetch_templates(), out["context"], resources)
    return out


# ---------------------------------------------------------------------------- a FHIR server


@dataclass
class SeenRequest:
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class FhirServer:
    """A FHIR server on 127.0.0.1 answering reads and searches over `resources` with
    `her2cds_cli.local_fhir.search`. It records every request (path, query, headers).

    page_size: searches answer pages of that many entries linked by `next`.
    status: answer every request with this HTTP status (and an OperationOutcome).
    delay: seconds to wait before each answer (released at once by `stop`).
    stall: never answer (until `stop`).
    next_base: the base URL written into `next` links (default: this server).
    unsupported: resource types the server has no endpoint for (404).
    """

    resources: list[dict[str, Any]]
    patient_keys: set[str] = field(default_factory=set)
    page_size: int | None = None
    status: int | None = None
    delay: float = 0.0
    stall: bool = False
    next_base: str | None = None
    unsupported: frozenset[str] = frozenset()
    requests: list[SeenRequest] = field(default_factory=list)
    base_path: str = "/fhir"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{self.base_path}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def answer(self, path: str, query: str) -> tuple[int, Any]:
        if self.status is not None:
            return self.status, {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "no"}],
            }
        if not path.startswith(self.base_path + "/"):
            return 404, {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
        rel = path[len(self.base_path) + 1 :]
        if rel.split("/")[0] in self.unsupported:
            return 404, {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
        params = parse_qsl(query, keep_blank_values=True)
        page = int(dict(params).get("_page", "0"))
        params = [(k, v) for k, v in params if k != "_page"]
        result = search(
            self.resources, rel + ("?" + urlencode(params) if params else ""), self.patient_keys
        )
        if result is None:
            return 404, {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
        if result.get("resourceType") != "Bundle" or not self.page_size:
            return 200, result
        entries = result.get("entry", [])
        start = page * self.page_size
        result["entry"] = entries[start : start + self.page_size]
        if start + self.page_size < len(entries):
            base = self.next_base or self.url
            nxt = f"{base}/{rel}?{urlencode([*params, ('_page', str(page + 1))])}"
            result["link"] = [{"relation": "next", "url": nxt}]
        if not result["entry"]:
            del result["entry"]
        return 200, result

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with server._lock:
                    server.requests.append(
                        SeenRequest(parts.path, parts.query, dict(self.headers.items()))
                    )
                if server.stall:
                    server._release.wait(30)
                    return
                if server.delay:
                    server._release.wait(server.delay)
                status, body = server.answer(parts.path, parts.query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def fhir_server(resources: Iterable[dict[str, Any]], **options: Any) -> Iterator[FhirServer]:
    server = FhirServer(list(resources), **options).start()
    try:
        yield server
    finally:
        server.stop()


def fhir_authorization(token: str) -> dict[str, Any]:
    """A CDS Hooks 2.0 fhirAuthorization object carrying `token`."""
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "her2-cds",
    }


def fallback_request(
    hook: str, patient_id: str, server_url: str | None, token: str | None = None, **context: Any
) -> dict[str, Any]:
    """A request with no prefetch at all: everything must come from `server_url`."""
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"patientId": patient_id, "userId": "Practitioner/dr-1", **context},
    }
    if server_url:
        body["fhirServer"] = server_url
    if token:
        body["fhirAuthorization"] = fhir_authorization(token)
    return body
