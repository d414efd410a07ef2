"""`her2-cds serve` in a subprocess for the tests that need real gunicorn workers.

One way to start it (a free port, the log to a file, ready when /healthz answers), call it and
stop it, instead of a try/finally copy in every file. `serving(...)` is the context manager; a
test that signals the process itself uses `start(...)` and `Served.stop`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.pg import free_port

SERVE = [sys.executable, "-m", "her2cds_cli.cli", "serve"]


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path
    # a bearer token for a path, or None: calls under /cds-services then carry it
    token_for: Callable[[str], str] | None = None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float = 30,
        token: str | None = None,
    ) -> tuple[int, Any]:
        """Status and body (parsed when JSON) of one call on a fresh connection."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token is None and self.token_for and path.startswith("/cds-services"):
            token = self.token_for(path.split("?")[0])
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw, status = resp.read(), resp.status
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            raw, status, ctype = err.read(), err.code, err.headers.get("Content-Type", "")
        return status, json.loads(raw) if "json" in ctype else raw.decode()

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines, after the one plain line `serve` prints first (every other line
        must be JSON)."""
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        if lines and lines[0].startswith("her2-cds: serving http://"):
            lines = lines[1:]
        return [json.loads(line) for line in lines]

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (a graceful stop), its exit status; killed if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def start(
    tmp: Path,
    name: str = "service",
    env: Mapping[str, str] | None = None,
    workers: int | None = None,
    ready_within: float = 90,
    port: int | None = None,
) -> Served:
    """Start `her2-cds serve` on 127.0.0.1 with only the HER2CDS_* settings given in `env`."""
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HER2CDS_")}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    full_env.update(env or {})
    command = [*SERVE, "--host", "127.0.0.1", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=out, stderr=out)
    served = Served(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited early:\n{log.read_text()}")
        try:
            if served.call("GET", "/healthz", timeout=2)[0] == 200:
                return served
        except OSError:
            time.sleep(0.1)  # polling until the server listens
    proc.kill()
    proc.wait()
    raise AssertionError(f"{name} did not start:\n{log.read_text()}")


@contextmanager
def serving(
    tmp: Path,
    name: str = "service",
    env: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> Iterator[Served]:
    """`start`, then stop it however the test ends."""
    served = start(tmp, name, env, workers)
    try:
        yield served
    finally:
        if served.proc.poll() is None:
            served.proc.terminate()
            try:
                served.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                served.proc.kill()
                served.proc.wait()
