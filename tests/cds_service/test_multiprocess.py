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
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from cds_service.observability.logging_setup import patient_hash
from cds_service.storage.db import METADATA
from tests.auth_support import default_clients, mint
from tests.conftest import ROOT, hook_request, load_fixture
from tests.pg import PostgresServer
from tests.serving import Served, start

SALT = "multiprocess-test-salt"
PUBLIC = "http://her2cds.test"


def without_view_tokens(response: Any) -> str:
    return re.sub(r"view=[0-9a-f]+", "view=<token>", json.dumps(response, sort_keys=True))


def serve(tmp: Path, name: str, workers: int = 1, **env: str) -> Served:
    """A replica with this file's log salt and the settings given."""
    return start(tmp, name, {"HER2CDS_LOG_SALT": SALT, **env}, workers=workers)


def stop(served: Served) -> int:
    return served.stop()


@pytest.fixture(scope="module")
def pg(postgres: PostgresServer) -> PostgresServer:
    """The session's PostgreSQL (tests/conftest.py), shared by this module's replicas."""
    return postgres


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
            started[-1].token_for = lambda path: mint(PUBLIC + path, time.time())
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
        sent = 12
        # Which worker the kernel hands a connection to is not ours to choose, so this test
        # does not require both to answer; test_metrics_sum_samples_of_every_process below
        # proves the sum over processes deterministically.
        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(
                pool.map(
                    lambda _: served.call("POST", "/cds-services/her2-next-line", req)[0],
                    range(sent),
                )
            )
        assert statuses == [200] * sent

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


_COUNT_IN_CHILD = """
import sys
from cds_service.observability import metrics
for _ in range(int(sys.argv[1])):
    metrics.REQUESTS.labels("hooks.call_service", "her2-next-line", "200").inc()
"""

_RENDER_IN_CHILD = """
import sys
from cds_service.observability import metrics
sys.stdout.write(metrics.render().decode())
"""


def test_metrics_sum_samples_of_every_process(tmp_path: Path) -> None:
    """Two worker processes count into one multiprocess directory; a third (the worker that
    answers the scrape) renders the sum of both, not only its own."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in (3, 4):
        subprocess.run(
            [sys.executable, "-c", _COUNT_IN_CHILD, str(count)], cwd=ROOT, env=env, check=True
        )
    text = subprocess.run(
        [sys.executable, "-c", _RENDER_IN_CHILD],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total = sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "her2cds_requests_total" and s.labels.get("service") == "her2-next-line"
    )
    assert total == 7
