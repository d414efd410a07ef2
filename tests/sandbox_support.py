"""The real CDS Hooks sandbox, served locally, against a FHIR server and the service over HTTP.

Pieces for tests/house/test_sandbox_browser.py and for trying the service by hand (README, "Try it in
the CDS Hooks sandbox"): ``python -m tests.sandbox_support fhir FILE --port 8086`` serves a bundle
as an open FHIR server with the CORS and search shapes the sandbox uses.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from bench.shared import missing
from tests.conftest import SHARED
from tests.protocol_support import FhirServer
from tests.serving import start

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_DIR = SHARED / "cds-hooks-sandbox"
SANDBOX_JWKS = SANDBOX_DIR / ".well-known" / "jwks.json"
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()),
    None,
)
# Only loopback is reachable: the sandbox's internet hosts (a default service list, a SMART
# launcher) fail at once instead of waiting for a network this machine may not have.
HOST_RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def shifted(bundle: dict[str, Any], newest: date) -> dict[str, Any]:
    """`bundle` with every date moved by one offset so that its newest date is `newest` (a
    fixture stays a current record whatever day the tests run)."""
    found: list[date] = []

    def walk(value: Any, shift: timedelta | None) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, shift) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, shift) for v in value]
        if isinstance(value, str) and (m := _DATE.match(value)):
            day = date.fromisoformat(m.group(1))
            if shift is None:
                found.append(day)
                return value
            return (day + shift).isoformat() + value[10:]
        return value

    walk(bundle, None)
    out: dict[str, Any] = walk(bundle, newest - max(found)) if found else bundle
    return out


def made_current(bundle: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """`bundle` shifted so that its newest date is 14 days before the first of this month: a
    current record (CLINICAL.md: stale after 18 months), and the same dates all month long (the
    screenshot the browser test writes changes only when the cards do, or once a month)."""
    first = (today or date.today()).replace(day=1)
    return shifted(bundle, first - timedelta(days=14))


# ---------------------------------------------------------------------------- a FHIR server

CAPABILITY = {
    "resourceType": "CapabilityStatement",
    "status": "active",
    "date": "2026-01-01",
    "kind": "instance",
    "fhirVersion": "4.0.1",
    "format": ["json"],
    "rest": [{"mode": "server"}],
}


@dataclass
class CorsFhirServer(FhirServer):
    """FhirServer as a browser app reaches it: CORS (preflight included), `metadata`, and
    `POST Type/_search` with a form-encoded body (the sandbox's prefetch) besides GET."""

    port: int = 0
    posts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.port:  # a fixed port (by hand); the tests take a free one
            self._httpd.server_close()
            self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
            self._httpd.daemon_threads = True
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
            )

    def answer(self, path: str, query: str) -> tuple[int, Any]:
        if path == f"{self.base_path}/metadata":
            return 200, CAPABILITY
        return super().answer(path, query)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base: Any = super()._handler()
        server = self

        class Cors(base):  # type: ignore[misc]
            def end_headers(self) -> None:
                self.send_header("Access-Control-Allow-Origin", "*")
                super().end_headers()

            def do_OPTIONS(self) -> None:
                asked = self.headers.get("Access-Control-Request-Headers", "")
                self.send_response(204)
                self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
                self.send_header("Access-Control-Allow-Headers", asked or "content-type")
                self.send_header("Access-Control-Max-Age", "600")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                parts = urlsplit(self.path)  # type: ignore[has-type]
                form = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if not parts.path.endswith("/_search"):
                    self.send_response(405)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                server.posts.append(parts.path)
                query = "&".join(q for q in (parts.query, form) if q)
                self.path = parts.path.removesuffix("/_search") + ("?" + query if query else "")
                self.do_GET()

        return Cors


# ---------------------------------------------------------------------------- the sandbox site


@contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """`directory` served on 127.0.0.1 (as `python3 -m http.server` would); yields its URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def sandbox_url(site: str, fhir: str, patient_id: str, service: str) -> str:
    """The URL that opens the sandbox on `patient_id` of `fhir`, with our service discovered."""
    return (
        f"{site}/?fhirServiceUrl={quote(fhir, safe='')}&patientId={quote(patient_id, safe='')}"
        f"&serviceDiscoveryURL={quote(service + '/cds-services', safe='')}"
    )


# ---------------------------------------------------------------------------- the service


EXAMPLE_CLIENTS = ROOT / "examples" / "trusted-clients.sandbox-local.json"


def trusted_clients(path: Path) -> Path:
    """The trusted-clients file (README, "Trusted clients") that trusts the sandbox through the
    local copy of its public key set (offline: its jku is never fetched): the README's example
    when ../shared is beside the repository, else the same entry written to `path`."""
    if (ROOT.parent / "shared").resolve() == SHARED.resolve():
        return EXAMPLE_CLIENTS
    path.write_text(
        json.dumps([{"iss": SANDBOX_ISS, "jwks_file": str(SANDBOX_JWKS)}]), encoding="utf-8"
    )
    return path


@dataclass
class Service:
    """`her2-cds serve` in a subprocess: JWT verification required, the sandbox trusted, its
    open FHIR server allowed without a token (the sandbox sends no fhirAuthorization)."""

    workdir: Path
    fhir: str
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.workdir / "service.db"

    @property
    def log(self) -> Path:
        return self.workdir / "service.log"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HER2CDS_")}
        env.update(
            HER2CDS_AUTH="required",
            HER2CDS_TRUSTED_CLIENTS=str(trusted_clients(self.workdir / "trusted-clients.json")),
            HER2CDS_DATABASE_URL=f"sqlite:///{self.database}",
            HER2CDS_OPEN_FHIR_SERVERS=self.fhir,  # allowed, and without a token (README)
        )
        return env

    def start(self) -> Service:
        self.port = self.port or free_port()
        served = start(self.workdir, "service", self.environment(), workers=1, port=self.port)
        self.proc = served.proc
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def skip_reason() -> str | None:
    """Why the sandbox browser tests cannot run here, or None."""
    if not (SANDBOX_DIR / "index.html").exists():
        return f"the built CDS Hooks sandbox: {missing(SANDBOX_DIR)}"
    if not SANDBOX_JWKS.exists():
        return f"{SANDBOX_JWKS} (the sandbox's public key set) is missing"
    return browser_missing()


def browser_missing() -> str | None:
    """Why no page can be driven in Chromium here (the binary, the playwright package), or None."""
    if CHROMIUM is None:
        return "no chromium binary (Debian's chromium: .ci/system-deps installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (pip) is not installed: pip install -e '.[dev]'"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fhir = sub.add_parser("fhir", help="serve a FHIR Bundle file as an open FHIR server")
    fhir.add_argument("bundle", type=Path)
    fhir.add_argument("--port", type=int, default=8086)
    args = parser.parse_args(argv)
    bundle = made_current(json.loads(args.bundle.read_text(encoding="utf-8")))
    resources = [e["resource"] for e in bundle.get("entry", [])]
    server = CorsFhirServer(resources, port=args.port).start()
    patients = [r["id"] for r in resources if r.get("resourceType") == "Patient"]
    print(f"FHIR server {server.url} (patient {', '.join(patients)}); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
