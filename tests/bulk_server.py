"""A small FHIR Bulk Data Access 2.0 server of the suite's own, for `her2-cds export`'s tests.

It serves NDJSON from a directory (the synthetic generator's `--ndjson` output): kick-off with
`_type` and `_typeFilter` (Observation `code` / `component-code` tokens), a status URL that answers
202 with X-Progress and Retry-After a set number of times, then the manifest; the files, split in
parts; DELETE. A `Scenario` adds what real servers do: 429s, an error as an OperationOutcome, an
expired file, a download cut off half way, files and endpoints behind SMART Backend Services
(the client's JWT assertion checked against its public key, RS384 or ES384).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import jwt
import orjson


def outcome(text: str, code: str = "processing", severity: str = "error") -> dict[str, Any]:
    issue = {"severity": severity, "code": code, "diagnostics": text}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


@dataclass
class Scenario:
    polls: int = 2  # 202 answers before the manifest
    retry_after: str | None = "0"  # on each 202 (None: no header)
    throttle: int = 0  # 429s (Retry-After 0) before each answer of the status URL
    kickoff_error: str | None = None  # kick-off answers 400 with this diagnostics
    job_error: str | None = None  # the status URL answers 500 with this diagnostics
    expired: bool = False  # every file answers 410
    cut_off: str | None = None  # the first download of this file stops half way
    require_token: bool = False  # every request needs a bearer token (requiresAccessToken)
    token_ttl: int = 300
    reject_first_token: bool = False  # the first token is refused with 401 (revoked)
    parts: int = 2  # files per resource type
    flaky: int = 0  # 500s with a transient OperationOutcome before each answer of the status URL
    wrong_count: str | None = None  # the manifest announces one resource more in this file
    capabilities: tuple[str, ...] = ("client-confidential-asymmetric",)


@dataclass
class Job:
    files: dict[str, bytes]
    manifest: dict[str, Any]
    polls_left: int


@dataclass
class BulkServer:
    source: Path
    scenario: Scenario = field(default_factory=Scenario)
    clients: dict[str, Any] = field(default_factory=dict)  # client_id -> public key
    groups: dict[str, set[str]] = field(default_factory=dict)  # Group id -> patient ids
    kickoffs: list[dict[str, list[str]]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    polls: int = 0
    downloads: Counter[str] = field(default_factory=Counter)
    token_requests: list[dict[str, Any]] = field(default_factory=list)  # verified claims
    token_errors: list[str] = field(default_factory=list)
    auth_headers: list[tuple[str, str | None]] = field(default_factory=list)  # (path, header)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.tokens: dict[str, float] = {}  # token -> expiry
        self._jtis: set[str] = set()
        self._throttled = self._flaked = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/fhir"

    def start(self) -> BulkServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- the export ---------------------------------------------------------------------------
    def _resources(self) -> Iterable[dict[str, Any]]:
        for path in sorted(self.source.glob("*.ndjson")):
            for line in path.read_bytes().splitlines():
                if line.strip():
                    yield orjson.loads(line)

    def _kickoff(self, query: str, group: str | None) -> tuple[str, Job]:
        params = parse_qsl(query, keep_blank_values=True)
        members = self.groups.get(group) if group else None
        chosen: dict[str, list[bytes]] = {}
        for res in self._resources():
            rtype = res["resourceType"]
            if not selected(res, params):
                continue
            if members is not None and _patient(res) not in members and rtype != "Medication":
                continue
            chosen.setdefault(rtype, []).append(orjson.dumps(res))
        job_id = secrets.token_hex(4)
        files: dict[str, bytes] = {}
        output: list[dict[str, Any]] = []
        for rtype, lines in sorted(chosen.items()):
            size = -(-len(lines) // self.scenario.parts)
            for i in range(0, len(lines), size):
                name = f"{rtype}-{i // size + 1}.ndjson"
                files[name] = b"\n".join(lines[i : i + size]) + b"\n"
                url = f"{self.base}/files/{job_id}/{name}"
                count = len(lines[i : i + size]) + (1 if name == self.scenario.wrong_count else 0)
                output.append({"type": rtype, "url": url, "count": count})
        files["errors.ndjson"] = orjson.dumps(
            outcome("2 Observations of Patient/x could not be read", "incomplete", "warning")
        )
        manifest = {
            "transactionTime": "2026-12-03T12:00:00Z",
            "request": f"{self.base}/Patient/$export?{query}",
            "requiresAccessToken": self.scenario.require_token,
            "output": output,
            "error": [
                {"type": "OperationOutcome", "url": f"{self.base}/files/{job_id}/errors.ndjson"}
            ],
        }
        job = Job(files, manifest, self.scenario.polls)
        self.jobs[job_id] = job
        return job_id, job

    # -- SMART Backend Services ---------------------------------------------------------------
    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        token_url = f"{self.base}/token"
        assertion = form.get("client_assertion", "")
        try:
            if form.get("grant_type") != "client_credentials":
                raise jwt.InvalidTokenError("grant_type is not client_credentials")
            if form.get("client_assertion_type") != (
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            ):
                raise jwt.InvalidTokenError("wrong client_assertion_type")
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            key = self.clients.get(str(unverified.get("iss")))
            if key is None:
                raise jwt.InvalidTokenError(f"unknown client {unverified.get('iss')}")
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS384", "ES384"],
                audience=token_url,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
            header = jwt.get_unverified_header(assertion)
            if claims["sub"] != claims["iss"] or not header.get("kid"):
                raise jwt.InvalidTokenError("sub differs from iss, or no kid")
            if claims["exp"] > time.time() + 300 + 5:
                raise jwt.InvalidTokenError("exp more than 5 minutes ahead")
            if claims["jti"] in self._jtis:
                raise jwt.InvalidTokenError("jti replayed")
            self._jtis.add(claims["jti"])
        except jwt.PyJWTError as exc:
            self.token_errors.append(str(exc))
            return 401, {"error": "invalid_client", "error_description": str(exc)}
        token = secrets.token_hex(16)
        self.tokens[token] = time.time() + self.scenario.token_ttl
        if self.scenario.reject_first_token and len(self.token_requests) == 0:
            self.tokens[token] = 0.0  # issued, then revoked at once
        self.token_requests.append({**claims, "scope": form.get("scope"), "alg": header["alg"]})
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.scenario.token_ttl,
            "scope": form.get("scope"),
        }

    def _authorized(self, header: str | None) -> bool:
        if not self.scenario.require_token:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        return self.tokens.get(header[7:], 0.0) > time.time()

    # -- HTTP -------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(
                self, status: int, body: Any = None, headers: dict[str, str] | None = None
            ) -> None:
                data = b"" if body is None else orjson.dumps(body)
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if body is not None:
                    self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                if urlsplit(self.path).path != "/fhir/token":
                    return self._send(404, outcome("no such endpoint"))
                with server._lock:
                    status, body = server._token(form)
                self._send(status, body)

            def do_GET(self) -> None:
                with server._lock:
                    self._get()

            def do_DELETE(self) -> None:
                with server._lock:
                    path = urlsplit(self.path).path
                    if not server._authorized(self.headers.get("Authorization")):
                        return self._send(401, outcome("no token", "login"))
                    job_id = path.rsplit("/", 1)[-1]
                    if not path.startswith("/fhir/jobs/") or job_id not in server.jobs:
                        return self._send(404, outcome("no such job", "not-found"))
                    server.deletes.append(job_id)
                    del server.jobs[job_id]
                    self._send(202)

            def _get(self) -> None:
                parts = urlsplit(self.path)
                path, sc = parts.path, server.scenario
                auth = self.headers.get("Authorization")
                server.auth_headers.append((path, auth))
                if path == "/fhir/.well-known/smart-configuration":
                    return self._send(
                        200,
                        {
                            "token_endpoint": f"{server.base}/token",
                            "capabilities": list(sc.capabilities),
                            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                        },
                    )
                if not server._authorized(auth):
                    return self._send(401, outcome("a valid bearer token is required", "login"))
                if path.endswith("/$export"):
                    return self._export(path, parts.query)
                if path.startswith("/fhir/jobs/"):
                    return self._status(path.rsplit("/", 1)[-1])
                if path.startswith("/fhir/files/"):
                    return self._file(*path.split("/")[-2:])
                self._send(404, outcome("no such endpoint", "not-found"))

            def _export(self, path: str, query: str) -> None:
                sc = server.scenario
                if self.headers.get("Prefer") != "respond-async" or (
                    self.headers.get("Accept") != "application/fhir+json"
                ):
                    return self._send(400, outcome("Prefer: respond-async and Accept needed"))
                if sc.kickoff_error:
                    return self._send(400, outcome(sc.kickoff_error, "not-supported"))
                group = None
                if path.startswith("/fhir/Group/"):
                    group = path.split("/")[3]
                    if group not in server.groups:
                        return self._send(404, outcome(f"Group/{group} not found", "not-found"))
                server.kickoffs.append(parse_qs(query, keep_blank_values=True))
                job_id, _ = server._kickoff(query, group)
                self._send(202, None, {"Content-Location": f"{server.base}/jobs/{job_id}"})

            def _status(self, job_id: str) -> None:
                sc = server.scenario
                server.polls += 1
                job = server.jobs.get(job_id)
                if job is None:
                    return self._send(404, outcome("no such job (expired)", "not-found"))
                if server._throttled < sc.throttle:
                    server._throttled += 1
                    return self._send(429, outcome("slow down", "throttled"), {"Retry-After": "0"})
                if server._flaked < sc.flaky:
                    server._flaked += 1
                    return self._send(500, outcome("busy, try again", "transient"))
                server._throttled = server._flaked = 0
                if sc.job_error:
                    return self._send(500, outcome(sc.job_error, "exception"))
                if job.polls_left > 0:
                    done = sc.polls - job.polls_left
                    job.polls_left -= 1
                    headers = {"X-Progress": f"{100 * done // max(sc.polls, 1)}% done"}
                    if sc.retry_after is not None:
                        headers["Retry-After"] = sc.retry_after
                    return self._send(202, None, headers)
                self._send(200, job.manifest, {"Expires": "Fri, 04 Dec 2026 12:00:00 GMT"})

            def _file(self, job_id: str, name: str) -> None:
                sc = server.scenario
                job = server.jobs.get(job_id)
                if sc.expired or job is None or name not in job.files:
                    return self._send(410, outcome("the file has expired", "not-found"))
                if "fhir+ndjson" not in (self.headers.get("Accept") or ""):
                    return self._send(406, outcome("Accept application/fhir+ndjson"))
                server.downloads[name] += 1
                data = job.files[name]
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+ndjson")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if name == sc.cut_off and server.downloads[name] == 1:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

        return Handler


def _patient(res: dict[str, Any]) -> str | None:
    if res.get("resourceType") == "Patient":
        return str(res.get("id"))
    ref = (res.get("subject") or res.get("patient") or {}).get("reference", "")
    return str(ref).rsplit("/", 1)[-1] or None


def _tokens(concept: Any) -> set[str]:
    """A CodeableConcept's search tokens: code and system|code."""
    out: set[str] = set()
    for c in (concept or {}).get("coding") or []:
        if c.get("code"):
            out |= {str(c["code"]), f"{c.get('system', '')}|{c['code']}"}
    return out


def selected(res: dict[str, Any], params: list[tuple[str, str]]) -> bool:
    """Whether an export with these kick-off parameters includes the resource: its type in
    `_type` (when given) and, for a type with `_typeFilter`s, matching any of them."""
    types = {t for k, v in params if k == "_type" for t in v.split(",") if t}
    rtype = res.get("resourceType")
    if types and rtype not in types:
        return False
    filters = [
        (name, set(value.split(",")))
        for k, v in params
        if k == "_typeFilter" and v.partition("?")[0] == rtype
        for name, value in parse_qsl(v.partition("?")[2])
    ]
    return not filters or any(_matches(res, n, c) for n, c in filters)


def _dates(res: dict[str, Any], name: str) -> list[str]:
    if name == "_lastUpdated":
        return [str((res.get("meta") or {}).get("lastUpdated") or "")]
    period = res.get("effectivePeriod") or {}
    found = [res.get("effectiveDateTime"), res.get("effectiveInstant"), period.get("start")]
    if period:  # an open-ended period reaches every later date
        found.append(period.get("end") or "9999")
    return [str(d) for d in found if d]


def _matches(res: dict[str, Any], name: str, codes: set[str]) -> bool:
    """FHIR token search on Observation.code (`code`) or a component's (`component-code`);
    `date` (effective[x]) and `_lastUpdated` with the `ge` prefix."""
    if name in ("date", "_lastUpdated"):
        (value,) = codes
        assert value.startswith("ge"), value
        return any(d[:10] >= value[2:] for d in _dates(res, name) if d)
    if name == "code":
        return bool(_tokens(res.get("code")) & codes)
    if name == "component-code":
        return any(_tokens(c.get("code")) & codes for c in res.get("component") or [])
    raise ValueError(f"the test server does not search by {name}")
