"""`her2-cds export`: the FHIR Bulk Data flow against the suite's own Bulk Data server."""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path

import orjson
import pytest

from her2cds_cli.bulk import state
from her2cds_cli.bulk.transport import BulkError, GoneError
from her2cds_cli.cli import main
from synthetic.generate import DEFAULT_AS_OF
from tests.bulk_server import BulkServer, Scenario
from tests.bulk_support import (
    ECHO_PANEL_ID,
    HEART_RATE_ID,
    PATIENTS,
    WEIGHT_ID,
    Recorder,
    data_files,
    export,
    make_cohort,
    ndjson_only,
    start_servers,
)

Start = Callable[..., BulkServer]
cohort = pytest.fixture(scope="module")(make_cohort)
bulk = pytest.fixture(start_servers)


def _rows(out: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    return sorted(
        ({k: v for k, v in r.items() if k != "ms"} for r in rows), key=lambda r: r["name"]
    )


def test_export_then_population_gives_what_the_full_data_gives(
    bulk: Start, cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three commands' first two: export (only what the engine reads), then population on the
    directory as it is; the answers are those of the whole, unfiltered data."""
    server = bulk(Scenario(polls=3, retry_after="0"))
    out = tmp_path / "export"
    as_of = DEFAULT_AS_OF.isoformat()  # the answer files' evaluation date
    assert main(["export", "--fhir-server", server.base, "--out", str(out), "--as-of", as_of]) == 0
    said = capsys.readouterr()
    assert f"population --in {out}" in said.out and "33% done" in said.err
    assert len(server.kickoffs) == 1 and len(server.deletes) == 1 and not server.jobs
    got = data_files(out)
    assert "Encounter" not in got  # not a type the engine reads
    ids = {r["id"] for r in got["Observation"]}
    assert ECHO_PANEL_ID in ids  # LVEF as a component
    assert WEIGHT_ID in ids and HEART_RATE_ID not in ids  # a recent one counts for currency
    assert (out / "errors" / "OperationOutcome.ndjson").exists()
    assert state.load(out).complete  # type: ignore[union-attr]

    for p in cohort.glob("*.truth.json"):  # the answers, to score both runs the same way
        shutil.copy(p, out / p.name)
    assert main(["population", "--in", str(out), "--out", str(tmp_path / "r1"), "--jobs", "1"]) == 0
    full = ndjson_only(cohort, tmp_path / "full")
    for p in cohort.glob("*.truth.json"):
        shutil.copy(p, full / p.name)
    assert (
        main(["population", "--in", str(full), "--out", str(tmp_path / "r2"), "--jobs", "1"]) == 0
    )
    exported, whole = _rows(tmp_path / "r1"), _rows(tmp_path / "r2")
    assert len(exported) == PATIENTS and all(r["error"] == "" for r in exported)
    assert exported == whole


def test_polling_honours_retry_after_in_seconds_and_as_a_date(bulk: Start, tmp_path: Path) -> None:
    server = bulk(Scenario(polls=3, retry_after="7"))
    rec = Recorder()
    export(server, tmp_path / "a", rec).run()
    assert rec.sleeps == [7, 7, 7]
    assert [ln.split(";")[0] for ln in rec.lines if "progress" in ln] == [
        "export in progress: 0% done",
        "export in progress: 33% done",
        "export in progress: 66% done",
    ]
    server.scenario.retry_after = formatdate(time.time() + 30, usegmt=True)
    rec = Recorder()
    export(server, tmp_path / "b", rec).run()
    assert len(rec.sleeps) == 3 and all(25 <= s <= 30 for s in rec.sleeps), rec.sleeps


def test_polling_without_retry_after_backs_off_within_a_bound(bulk: Start, tmp_path: Path) -> None:
    server = bulk(Scenario(polls=6, retry_after=None))
    rec = Recorder()
    export(server, tmp_path / "out", rec, backoff_min=1.0, backoff_max=8.0).run()
    assert rec.sleeps == [1, 2, 4, 8, 8, 8]


def test_throttled_and_transiently_failing_status_requests_are_retried(
    bulk: Start, tmp_path: Path
) -> None:
    server = bulk(Scenario(polls=1, throttle=2, flaky=1))
    rec = Recorder()
    job = export(server, tmp_path / "out", rec).run()
    assert job.complete and len(server.kickoffs) == 1
    assert sum("HTTP 429" in ln for ln in rec.lines) == 4  # 2 before each of the two answers
    assert sum("HTTP 500" in ln for ln in rec.lines) == 2
    assert rec.sleeps.count(0) >= 4  # the 429s' Retry-After: 0


def test_a_refused_kickoff_is_told_from_its_operation_outcome(
    bulk: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = bulk(Scenario(kickoff_error="_typeFilter is not supported"))
    out = tmp_path / "out"
    assert main(["export", "--fhir-server", server.base, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # one sentence
    assert "kick-off failed: HTTP 400" in err and "_typeFilter is not supported" in err
    assert state.load(out) is None  # nothing to resume


def test_a_failed_job_is_reported_not_retried(bulk: Start, tmp_path: Path) -> None:
    server = bulk(Scenario(job_error="the export ran out of disk"))
    with pytest.raises(BulkError, match=r"HTTP 500 .*the export ran out of disk\.$"):
        export(server, tmp_path / "out", Recorder()).run()
    assert server.polls == 1


def test_a_group_export_and_an_unknown_group(bulk: Start, cohort: Path, tmp_path: Path) -> None:
    pids = [orjson.loads(ln)["id"] for ln in (cohort / "Patient.ndjson").read_bytes().splitlines()]
    server = bulk(Scenario(polls=0), groups={"her2": set(pids[:3])})
    export(server, tmp_path / "g", Recorder(), group="her2").run()
    assert {r["id"] for r in data_files(tmp_path / "g")["Patient"]} == set(pids[:3])
    with pytest.raises(BulkError, match=r"HTTP 404.*Group/nobody not found"):
        export(server, tmp_path / "n", Recorder(), group="nobody").run()


def test_an_expired_file_says_so_and_only_restart_kicks_off_again(
    bulk: Start, tmp_path: Path
) -> None:
    server = bulk(Scenario(polls=0, expired=True))
    out = tmp_path / "out"
    with pytest.raises(GoneError, match=r"no longer on the server \(HTTP 410\).*--restart"):
        export(server, out, Recorder()).run()
    with pytest.raises(GoneError):
        export(server, out, Recorder()).run()  # the same command again: no second kick-off
    assert len(server.kickoffs) == 1
    server.scenario.expired = False
    job = export(server, out, Recorder()).run(restart=True)
    assert job.complete and len(server.kickoffs) == 2
    assert len(server.deletes) == 2  # the expired job, then the new one


def test_a_job_gone_from_the_server_needs_restart(bulk: Start, tmp_path: Path) -> None:
    server = bulk(Scenario(polls=5))
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        export(server, out, Recorder(interrupt_at=1)).run()
    server.jobs.clear()  # the server dropped the job meanwhile
    with pytest.raises(GoneError, match=r"is gone \(HTTP 404\).*--restart"):
        export(server, out, Recorder()).run()
    assert len(server.kickoffs) == 1


def test_an_interrupted_export_resumes_the_same_job(bulk: Start, tmp_path: Path) -> None:
    server = bulk(Scenario(polls=4, retry_after="1"))
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        export(server, out, Recorder(interrupt_at=2)).run()  # Ctrl-C while waiting
    recorded = state.load(out)
    assert recorded is not None and recorded.status_url.endswith(next(iter(server.jobs)))
    job = export(server, out, Recorder()).run()
    assert job.complete and len(server.kickoffs) == 1 and server.polls == 5


def test_a_download_cut_off_is_resumed_without_fetching_complete_files_again(
    bulk: Start, tmp_path: Path
) -> None:
    server = bulk(Scenario(polls=0, cut_off="Observation-2.ndjson"))
    out = tmp_path / "out"
    with pytest.raises(BulkError, match=r"Observation.*broke off"):
        export(server, out, Recorder(), attempts=1).run()
    assert not list(out.glob("*.part")) and not (out / "Observation-2.ndjson").exists()
    before = dict(server.downloads)
    job = export(server, out, Recorder()).run()
    assert job.complete and len(server.kickoffs) == 1
    assert server.downloads["Observation-2.ndjson"] == 2
    assert before and all(server.downloads[n] == 1 for n in before if n != "Observation-2.ndjson")


def test_a_cut_off_download_is_retried_within_one_run(bulk: Start, tmp_path: Path) -> None:
    server = bulk(Scenario(polls=0, cut_off="Patient-1.ndjson"))
    job = export(server, tmp_path / "out", Recorder()).run()
    assert job.complete and server.downloads["Patient-1.ndjson"] == 2
    assert sum(f.lines for f in job.files if f.type == "Patient") == PATIENTS


def test_a_file_shorter_than_its_manifest_count_is_refused(bulk: Start, tmp_path: Path) -> None:
    server = bulk(Scenario(polls=0, wrong_count="Condition-1.ndjson"))
    out = tmp_path / "out"
    with pytest.raises(
        BulkError, match=r"Condition\.ndjson .* has \d+ resources where the manifest"
    ):
        export(server, out, Recorder()).run()
    assert not (out / "Condition.ndjson").exists()


def test_cancel_deletes_the_job_and_forgets_it(
    bulk: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = bulk(Scenario(polls=5))
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        export(server, out, Recorder(interrupt_at=1)).run()
    (job_id,) = server.jobs
    assert main(["export", "--fhir-server", server.base, "--out", str(out), "--cancel"]) == 0
    assert server.deletes == [job_id] and state.load(out) is None
    assert main(["export", "--fhir-server", server.base, "--out", str(out), "--cancel"]) == 1
    assert "no export recorded" in capsys.readouterr().err


def test_a_directory_with_other_data_or_another_servers_export_is_refused(
    bulk: Start, tmp_path: Path
) -> None:
    server = bulk(Scenario(polls=0))
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "Patient.ndjson").write_text("{}\n")
    with pytest.raises(BulkError, match="already holds NDJSON"):
        export(server, stray, Recorder()).run()
    out = tmp_path / "out"
    export(server, out, Recorder()).run()
    other = bulk(Scenario(polls=0))
    with pytest.raises(BulkError, match="holds an export from"):
        export(other, out, Recorder()).run()
    assert not other.kickoffs


def test_the_state_file_is_not_read_by_population(bulk: Start, tmp_path: Path) -> None:
    from her2cds_cli.population import discover

    server = bulk(Scenario(polls=0))
    out = tmp_path / "out"
    export(server, out, Recorder()).run()
    assert (out / state.STATE_FILE).exists()
    assert len(discover(out)) == PATIENTS  # neither the state file nor errors/ are patients


def test_an_unreadable_state_file_stops_the_export_until_restart(
    bulk: Start, tmp_path: Path
) -> None:
    server = bulk(Scenario(polls=0))
    out = tmp_path / "out"
    out.mkdir()
    (out / state.STATE_FILE).write_text("{half a file")
    with pytest.raises(BulkError, match="not an export state file"):
        export(server, out, Recorder()).run()
    assert not server.kickoffs
    assert export(server, out, Recorder()).run(restart=True).complete
