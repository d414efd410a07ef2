"""Smoke tests of the benchmark machinery (tiny counts; no timing assertions)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import orjson
import pytest
from flask.testing import FlaskClient
from werkzeug.test import Client

from bench import client as bench_client
from bench import floor
from bench.payloads import CAPTURES, SYNTHEA, build, her2_bundle
from bench.scale import count_prefetch, scale_up
from bench.shared import ROOT
from cds_service.services import prefetch_templates
from her2cds_cli.local_fhir import fill_prefetch, patient_keys_of
from tests.conftest import her2_ext, needs_shared


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def floor_port() -> Iterator[int]:
    server = make_server("127.0.0.1", 0, floor.app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_floor_parses_and_answers_no_cards() -> None:
    c = Client(floor.app)
    ok = c.post("/cds-services/x", data=b'{"hook": "patient-view"}')
    assert ok.status_code == 200
    assert orjson.loads(ok.data) == {"cards": []}
    assert c.post("/cds-services/x", data=b"[1, 2").status_code == 400
    assert c.post("/cds-services/x", data=b"[1, 2]").status_code == 400


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench_client.percentile(values, 50) == 50.0
    assert bench_client.percentile(values, 95) == 95.0
    assert bench_client.percentile([3.0], 95) == 3.0


def test_fresh_hook_instance_keeps_length() -> None:
    body = b'{"hookInstance": "00000000-0000-4000-8000-000000000000"}'
    a, b = bench_client.fresh(body), bench_client.fresh(body)
    assert len(a) == len(body) and a != b != body
    assert orjson.loads(a)["hookInstance"] != orjson.loads(b)["hookInstance"]


def test_load_generator_is_bounded_by_count(floor_port: int) -> None:
    bodies = [b'{"hook": "patient-view"}', b'{"hook": "order-sign"}']
    result = bench_client.load(floor_port, bodies, clients=3, seconds=30, max_requests=7)
    assert result["requests"] == 7
    assert result["ok"] == 7 and result["errors"] == {}


def test_load_generator_counts_errors(floor_port: int) -> None:
    result = bench_client.load(floor_port, [b"not json"], clients=2, seconds=30, max_requests=4)
    assert result["ok"] == 0 and result["errors"] == {"http 400": 4}


@needs_shared(SYNTHEA)
@pytest.mark.parametrize("target", [300, 777])
def test_scale_up_hits_the_target_exactly(target: int) -> None:
    bundle = scale_up(her2_bundle(), target, per_cycle=10)
    pid, keys = patient_keys_of(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    prefetch = fill_prefetch(prefetch_templates(), {"patientId": pid}, resources, keys)
    assert count_prefetch(prefetch) == target
    ids = [r["id"] for r in resources]
    assert len(ids) == len(set(ids))


@needs_shared(SYNTHEA)
def test_scaled_record_keeps_the_clinical_answer(client: FlaskClient) -> None:
    """Every size gives the same cards (the filler never changes the picture)."""
    payloads = {p.name: p for p in build({"synthea-her2"})}
    assert payloads["synthea-her2"].resources > 0
    answers = []
    for target in (200, 600):
        bundle = scale_up(her2_bundle(), target, per_cycle=12)
        pid, keys = patient_keys_of(bundle)
        resources = [e["resource"] for e in bundle["entry"]]
        context = {"patientId": pid, "userId": "Practitioner/bench-1"}
        body = {
            "hook": "patient-view",
            "hookInstance": "bench-test",
            "context": context,
            "prefetch": fill_prefetch(prefetch_templates(), context, resources, keys),
        }
        resp = client.post("/cds-services/her2-next-line", json=body)
        assert resp.status_code == 200
        cards = resp.get_json()["cards"]
        answers.append(sorted((her2_ext(c)["kind"], c["summary"]) for c in cards))
    assert answers[0] == answers[1]
    assert any(kind == "next-line" for kind, _ in answers[0])


@needs_shared(CAPTURES)
def test_run_end_to_end_tiny(tmp_path: Path) -> None:
    """The one command, with one round, one worker, the sandbox payload and no load."""
    from bench import run

    status = run.main(
        [
            "--rounds",
            "1",
            "--no-load",
            "--only",
            "sandbox",
            "--workers",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 0
    (out,) = tmp_path.glob("*.json")
    result = orjson.loads(out.read_bytes())
    (row,) = result["latency"]
    assert row["name"] == "sandbox" and row["n"] == 1 and row["resources"] > 0
    assert result["errors"] == []
    assert result["startup_s"]["service"] > 0 and result["startup_s"]["floor"] > 0
    assert all(m["rss_mb"] > 0 for m in result["memory"]["after latency"])


def test_warm_up_record_exercises_both_pipelines() -> None:
    """The start-up warm-up (cds_service/warmup.json) really runs the paths requests take."""
    from cds_service.app import run_warm_up_record

    view, orders = run_warm_up_record()
    kinds = {her2_ext(c)["kind"] for c in view}
    assert "next-line" in kinds
    assert orders and all(her2_ext(c)["kind"] == "order-check" for c in orders)


def test_bench_without_shared_data_says_what_it_needs(tmp_path: Path) -> None:
    """No traceback: one sentence naming the missing folder and the setting, exit 2."""
    env = {**os.environ, "HER2CDS_SHARED_DIR": str(tmp_path / "absent")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.run"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "HER2CDS_SHARED_DIR" in done.stderr and str(tmp_path / "absent") in done.stderr
