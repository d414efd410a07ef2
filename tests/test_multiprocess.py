"""The scale-out topology without containers: real `her2-cds serve` processes.

Two servers (one worker each, as two replicas would be) share one real PostgreSQL that the test
starts itself: both are ready, give identical cards, use the same database, follow it down and
back up on /readyz, and stop gracefully on SIGTERM. A third run checks that /metrics sums every
gunicorn worker's samples in multiprocess mode.

Both replicas require client JWTs (one trusted client whose keys the test holds): a token used
on one replica is refused by the other (the replay cache is in the database), and the same
feedback sent to both is stored once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from cds_service.observability.logging_setup import patient_hash
from cds_service.storage.db import METADATA
from tests.conftest import ROOT, hook_request, load_fixture
from tests.pg import PostgresServer, free_port, unavailable_reason
from tests.test_auth_support import default_clients, mint

SALT = "multiprocess-test-salt"
PUBLIC = "http://her2cds.test"
SERVE = [sys.executable, "-m", "her2cds_cli.cli", "serve"]


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    auth: bool = False  # HER2CDS_AUTH=required: calls under /cds-services carry a fresh JWT

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float = 30,
        token: str | None = None,
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token is None and self.auth and path.startswith("/cds-services"):
            token = mint(PUBLIC + path.split("?")[0], time.time())
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            raw, status, ctype = err.read(), err.code, err.headers.get("Content-Type", "")
        return status, json.loads(raw) if "json" in ctype else raw.decode()

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines, after the one plain line `serve` prints first."""
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        if lines and lines[0].startswith("her2-cds: serving http://"):
            lines = lines[1:]
        return [json.loads(line) for line in lines]


def without_view_tokens(response: Any) -> str:
    return re.sub(r"view=[0-9a-f]+", "view=<token>", json.dumps(response, sort_keys=True))


def serve(tmp: Path, name: str, workers: int = 1, **env: str) -> Served:
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HER2CDS_")}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    full_env.update({"HER2CDS_LOG_SALT": SALT, **env})
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*SERVE, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited early:\n{log.read_text()}")
        try:
            if served.call("GET", "/healthz", timeout=2)[0] == 200:
                return served
        except OSError:
            time.sleep(0.1)  # polling until the server listens
    proc.kill()
    raise AssertionError(f"{name} did not start:\n{log.read_text()}")


def stop(served: Served) -> int:
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGTERM)
    return served.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def replicas(
    pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Served]]:
    tmp = tmp_path_factory.mktemp("replicas")
    clients = default_clients(tmp)  # one trusted client whose keys the tests hold
    started: list[Served] = []
    try:
        for name in ("a", "b"):
            url = f"{pg.url()}?application_name=her2cds-{name}&connect_timeout=3"
            prom = tmp / f"prom-{name}" / "not-yet-created"
            started.append(
                serve(
                    tmp,
                    name,
                    HER2CDS_DATABASE_URL=url,
                    PROMETHEUS_MULTIPROC_DIR=str(prom),
                    HER2CDS_PUBLIC_BASE_URL=PUBLIC,  # as behind one balancer
                    HER2CDS_AUTH="required",
                    HER2CDS_TRUSTED_CLIENTS=str(clients),
                )
            )
            started[-1].auth = True
        yield started
    finally:
        for s in started:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(timeout=30)


def _wait_for(check: Any, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)  # polling a state change in another process
    return False


def test_two_replicas_share_one_postgres(replicas: list[Served], pg: PostgresServer) -> None:
    a, b = replicas
    for r in replicas:
        status, body = r.call("GET", "/readyz")
        assert status == 200 and body["checks"]["database"] == "ok"

    # same request, same advice on either replica (the timeline link's token is per process:
    # see test_timeline_link_opens_on_another_replica)
    for fixture in ("her2_after_thp_progression", "her2_ild_after_thp"):
        req = hook_request(load_fixture(fixture))
        status_a, cards_a = a.call("POST", "/cds-services/her2-next-line", req)
        status_b, cards_b = b.call("POST", "/cds-services/her2-next-line", req)
        assert status_a == status_b == 200
        assert cards_a["cards"]
        assert without_view_tokens(cards_a) == without_view_tokens(cards_b)

    # both replicas hold connections to the one database, and its tables exist there
    engine = sa.create_engine(pg.url())
    try:
        with engine.connect() as conn:
            names = set(
                conn.execute(
                    sa.text("SELECT application_name FROM pg_stat_activity WHERE datname = :d"),
                    {"d": "postgres"},
                ).scalars()
            )
        assert {"her2cds-a", "her2cds-b"} <= names
        assert set(METADATA.tables) <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_jwt_replayed_to_another_replica_is_refused(replicas: list[Served]) -> None:
    """The replay cache is in the shared database: a token is good once, on any replica."""
    a, b = replicas
    token = mint(PUBLIC + "/cds-services", time.time())
    assert a.call("GET", "/cds-services", token=token)[0] == 200
    status, body = b.call("GET", "/cds-services", token=token)
    assert status == 401 and body["resourceType"] == "OperationOutcome"
    assert a.call("GET", "/cds-services", token=token)[0] == 401
    assert b.call("GET", "/cds-services")[0] == 200  # a fresh token is fine
    for r in replicas:
        assert token not in r.log.read_text()


def test_feedback_is_stored_once_across_replicas(replicas: list[Served]) -> None:
    """The same feedback sent to two replicas is stored once: they share one database."""
    a, b = replicas
    req = hook_request(load_fixture("her2_ild_after_thp"))
    status, body = a.call("POST", "/cds-services/her2-next-line", req)
    assert status == 200
    card = body["cards"][0]["uuid"]
    feedback = {
        "feedback": [
            {
                "card": card,
                "outcome": "overridden",
                "overrideReason": {"userComment": "discussed with the patient"},
                "outcomeTimestamp": "2026-11-22T03:00:00Z",
            }
        ]
    }
    status, answer = a.call("POST", "/cds-services/her2-next-line/feedback", feedback)
    if status == 404:
        pytest.skip("no feedback endpoint on this branch yet")
    assert (status, answer) == (200, {"received": 1, "stored": 1})
    assert b.call("POST", "/cds-services/her2-next-line/feedback", feedback)[1] == {
        "received": 1,
        "stored": 0,
    }
    feedback["feedback"][0]["outcomeTimestamp"] = "2026-11-22T03:05:00Z"
    assert b.call("POST", "/cds-services/her2-next-line/feedback", feedback)[1]["stored"] == 1


def test_timeline_link_opens_on_another_replica(replicas: list[Served]) -> None:
    a, b = replicas
    req = hook_request(load_fixture("her2_after_thp_progression"))
    status, body = a.call("POST", "/cds-services/her2-next-line", req)
    assert status == 200
    links = re.findall(r"/timeline/[^\s\"')]+\?view=[0-9a-f]+", json.dumps(body))
    assert links, "the next-line card links to the timeline view"
    assert a.call("GET", links[0])[0] == 200  # the replica that built it
    assert b.call("GET", links[0])[0] == 200  # any other replica behind the balancer


def test_readyz_follows_the_database_down_and_back(
    replicas: list[Served], pg: PostgresServer
) -> None:
    pg.pause()
    try:
        for r in replicas:
            status, body = r.call("GET", "/readyz")
            assert status == 503
            assert body["resourceType"] == "OperationOutcome"
            assert "database unreachable" in json.dumps(body)
            assert r.call("GET", "/healthz")[0] == 200  # alive: not to be restarted
        # with client JWTs required, the replay cache cannot be checked: fail closed, 503
        req = hook_request(load_fixture("her2_after_thp_progression"))
        status, body = replicas[0].call("POST", "/cds-services/her2-next-line", req)
        assert status == 503 and body["resourceType"] == "OperationOutcome"
    finally:
        pg.resume()
    for r in replicas:
        assert _wait_for(lambda r=r: r.call("GET", "/readyz")[0] == 200)


def test_logs_are_json_and_patient_hash_correlates_across_replicas(
    replicas: list[Served],
) -> None:
    req = hook_request(load_fixture("her2_after_thp_progression"))
    req["hookInstance"] = str(uuid.uuid4())
    for r in replicas:
        assert r.call("POST", "/cds-services/her2-next-line?token=SECRET", req)[0] == 200
    pid = req["context"]["patientId"]
    for r in replicas:
        assert _wait_for(lambda r=r: req["hookInstance"] in r.log.read_text(), 10)
        raw = r.log.read_text()
        assert "SECRET" not in raw
        lines = [x for x in r.log_records() if x.get("hookInstance") == req["hookInstance"]]
        assert len(lines) == 1
        assert lines[0]["patient"] == patient_hash(pid, SALT)
        assert lines[0]["status"] == 200 and lines[0]["path"] == "/cds-services/her2-next-line"


def test_sigterm_stops_gracefully(replicas: list[Served]) -> None:
    # runs last in this module: stops both replicas
    for r in replicas:
        assert stop(r) == 0
        messages = [x.get("message", "") for x in r.log_records()]
        assert any("Handling signal: term" in m for m in messages)
        assert any("Shutting down" in m for m in messages)


@pytest.mark.parametrize("operator_dir", [True, False], ids=["dir-given", "serve-default"])
def test_metrics_sum_every_worker_in_multiprocess_mode(tmp_path: Path, operator_dir: bool) -> None:
    """With a directory the operator gives, or none (serve then makes one), /metrics sums
    every worker, whichever answers the scrape."""
    extra: dict[str, str] = {}
    if operator_dir:
        prom_dir = tmp_path / "prom"
        prom_dir.mkdir()
        (prom_dir / "counter_1.db").write_bytes(b"stale")  # an earlier run's: removed at start
        extra["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir)
    served = serve(
        tmp_path,
        "multi",
        workers=2,
        HER2CDS_DATABASE_URL=f"sqlite:///{tmp_path / 'multi.db'}",
        **extra,
    )
    try:
        req = hook_request(load_fixture("her2_de_novo"))
        sent = 0
        worker_pids: set[int] = set()
        for _ in range(6):  # until both workers have answered some
            with ThreadPoolExecutor(max_workers=6) as pool:
                statuses = list(
                    pool.map(
                        lambda _: served.call("POST", "/cds-services/her2-next-line", req)[0],
                        range(6),
                    )
                )
            assert statuses == [200] * 6
            sent += 6

            def hook_lines() -> list[dict[str, Any]]:
                return [
                    x for x in served.log_records() if x.get("endpoint") == "hooks.call_service"
                ]

            # a call's line is written once its answer is sent, a moment after the client has it
            assert _wait_for(lambda n=sent: len(hook_lines()) == n, 10)
            worker_pids = {x["pid"] for x in hook_lines()}
            if len(worker_pids) >= 2:
                break
        assert len(worker_pids) == 2, "both workers should have answered"

        def scraped() -> float:
            status, text = served.call("GET", "/metrics")
            assert status == 200
            total = 0.0
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    if s.name == "her2cds_requests_total" and s.labels == {
                        "endpoint": "hooks.call_service",
                        "service": "her2-next-line",
                        "status": "200",
                    }:
                        total += s.value
            return total

        # Every worker's requests, whichever worker answers the scrape. A call is counted once
        # its answer is sent (WSGI close), a moment after the client has it: hence the wait.
        assert _wait_for(lambda: scraped() == sent, 10)
        assert scraped() == sent
        if operator_dir:
            assert not (prom_dir / "counter_1.db").exists()
    finally:
        assert stop(served) == 0
