"""Support for `her2-cds export`'s tests (their modules make fixtures of make_cohort and
start_servers): a synthetic cohort as bulk NDJSON (with resources the
engine does not read mixed in), the suite's Bulk Data server over it, an export that records its
waits instead of sleeping."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from her2cds_cli.bulk.export import Export
from her2cds_cli.bulk.transport import Client, Timing
from synthetic.generate import DEFAULT_AS_OF, generate_cohort
from tests.bulk_server import BulkServer, Scenario

PATIENTS = 10
HEART_RATE_ID = "noise-heart-rate"  # an Observation the engine does not read, years old
WEIGHT_ID = "recent-weight"  # one it does not read either, but recent: it keeps a record current
ECHO_PANEL_ID = "echo-panel-lvef"  # LVEF only as a component of an echo panel


def noise(pid: str) -> dict[str, list[dict[str, Any]]]:
    subject = {"reference": f"Patient/{pid}"}
    loinc = "http://loinc.org"
    return {
        "Observation": [
            {
                "resourceType": "Observation",
                "id": HEART_RATE_ID,
                "status": "final",
                "code": {"coding": [{"system": loinc, "code": "8867-4"}]},
                "subject": subject,
                "effectiveDateTime": "2020-01-05",
                "valueQuantity": {"value": 72, "unit": "/min"},
            },
            {
                "resourceType": "Observation",
                "id": WEIGHT_ID,
                "status": "final",
                "code": {"coding": [{"system": loinc, "code": "29463-7"}]},
                "subject": subject,
                "effectiveDateTime": (DEFAULT_AS_OF - timedelta(days=60)).isoformat(),
                "valueQuantity": {"value": 61, "unit": "kg"},
            },
            {
                "resourceType": "Observation",
                "id": ECHO_PANEL_ID,
                "status": "final",
                "code": {"coding": [{"system": loinc, "code": "34552-0"}]},
                "subject": subject,
                "effectiveDateTime": "2010-01-05",
                "component": [
                    {
                        "code": {"coding": [{"system": loinc, "code": "10230-1"}]},
                        "valueQuantity": {"value": 60, "unit": "%"},
                    }
                ],
            },
        ],
        "Encounter": [
            {"resourceType": "Encounter", "id": "noise-encounter", "status": "finished",
             "subject": subject},
        ],
    }  # fmt: skip


def make_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NDJSON of a synthetic cohort (+ answer files), with a heart rate, an echo panel and an
    Encounter added to the first patient."""
    src = tmp_path_factory.mktemp("cohort")
    generate_cohort(src, PATIENTS, seed=5, ndjson=True, progress=False)
    pid = orjson.loads((src / "Patient.ndjson").read_bytes().splitlines()[0])["id"]
    for rtype, resources in noise(pid).items():
        with (src / f"{rtype}.ndjson").open("ab") as fh:
            fh.writelines(orjson.dumps(r) + b"\n" for r in resources)
    return src


def ndjson_only(src: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for p in src.glob("*.ndjson"):
        shutil.copy(p, dest / p.name)
    return dest


def start_servers(cohort: Path) -> Iterator[Callable[..., BulkServer]]:
    """Start a Bulk Data server over the cohort: bulk(Scenario(...), clients=..., groups=...)."""
    started: list[BulkServer] = []

    def start(scenario: Scenario | None = None, **kw: Any) -> BulkServer:
        server = BulkServer(cohort, scenario or Scenario(), **kw).start()
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


class Recorder:
    """An export's log and waits, recorded; `interrupt_at` raises KeyboardInterrupt on that wait."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.sleeps: list[float] = []
        self.lines: list[str] = []
        self.interrupt_at = interrupt_at

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.interrupt_at is not None and len(self.sleeps) == self.interrupt_at:
            raise KeyboardInterrupt

    def log(self, line: str) -> None:
        self.lines.append(line)


def export(server: BulkServer, out: Path, rec: Recorder, **kw: Any) -> Export:
    timing = Timing(
        sleep=rec.sleep,
        attempts=kw.pop("attempts", 6),
        backoff_min=kw.pop("backoff_min", 1.0),
        backoff_max=kw.pop("backoff_max", 60.0),
    )
    return Export(server.base, out, Client(timing=timing, log=rec.log), log=rec.log, **kw)


def data_files(out: Path) -> dict[str, list[dict[str, Any]]]:
    """The resources population would read from `out`, per type."""
    found: dict[str, list[dict[str, Any]]] = {}
    for p in out.glob("*.ndjson"):
        for line in p.read_bytes().splitlines():
            res = orjson.loads(line)
            found.setdefault(res["resourceType"], []).append(res)
    return found
