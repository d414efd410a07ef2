"""bench/population.py: the cohort it writes, the ratios it reports, one tiny run end to end."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench import population as bench
from her2cds_cli.population import discover

pytest.importorskip("distributed")


def test_the_cohort_is_bulk_ndjson_in_chunks_and_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "CHUNK", 2)
    out = tmp_path / "cohort"
    info = bench.generate(out, 5, seed=3, jobs=1)
    assert info["patients"] == 5 and not info["reused"]
    files = sorted(p.name for p in out.glob("*.ndjson"))
    assert {"Patient.00000.ndjson", "Patient.00001.ndjson", "Patient.00002.ndjson"} <= set(files)
    lines = [line for p in out.glob("*.ndjson") for line in p.read_bytes().splitlines()]
    assert sum(len(line) + 1 for line in lines) == info["ndjson_bytes"]
    resources = [orjson.loads(line) for line in lines]
    patients = {r["id"] for r in resources if r["resourceType"] == "Patient"}
    subjects = {r["subject"]["reference"] for r in resources if "subject" in r}
    assert len(patients) == 5 and subjects == {f"Patient/{p}" for p in patients}
    tasks = discover(out)  # what `population` reads: 5 patients, nothing else (no marker)
    assert sorted(t.name for t in tasks) == sorted(patients)
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert bench.generate(out, 5, seed=3, jobs=1)["reused"]
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert not bench.generate(out, 4, seed=3, jobs=1)["reused"]  # another size: written anew


def _run(engine: str, workers: int, wall: float, rss: float) -> dict[str, object]:
    return {"engine": engine, "workers": workers, "wall_s": wall, "worker_peak_rss_mb": [rss]}


def test_the_verdict_reads_the_goals_of_issue_23() -> None:
    runs = [_run("pool", 1, 100, 150), _run("pool", 2, 52, 150)]
    runs += [_run("dask", 1, 120, 200), _run("dask", 2, 80, 210)]
    other = {"cohort": {"patients": 1000}, "runs": [_run("dask", 2, 9, 200)]}
    v = bench.verdict(runs, [other])
    assert v["dask_over_pool_wall_1w"] == 1.2 and v["dask_within_1.3x_1w"] is True
    assert v["dask_over_pool_wall_2w"] == 1.54 and v["dask_within_1.3x_2w"] is False
    assert v["pool_scaling_2_over_1"] == 1.92 and v["pool_scales_1.8x"] is True
    assert v["dask_scaling_2_over_1"] == 1.5 and v["dask_scales_1.8x"] is False
    assert v["dask_worker_rss_vs_other_sizes"] == {"1000": 1.05}
    assert "dask_over_pool_cpu_1w" not in v  # no CPU figures given
    missing = bench.verdict([_run("dask", 1, 10, 100)], [])
    assert missing["dask_over_pool_wall_1w"] is None and missing["dask_within_1.3x_1w"] is False


def test_the_pool_is_skipped_when_the_cohort_would_not_fit() -> None:
    assert bench.pool_fits(1000)[0]
    fits, why = bench.pool_fits(10**15)
    assert not fits and "GB in one process" in why


def test_a_tiny_run_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    argv = ["--patients", "6", "--workers", "1", "--results", str(results)]
    assert bench.main([*argv, "--cohort-dir", str(tmp_path / "cohort")]) == 0
    (path,) = results.glob("population-6-*.json")
    data = orjson.loads(path.read_bytes())
    assert [(r["engine"], r["workers"]) for r in data["runs"]] == [("pool", 1), ("dask", 1)]
    for r in data["runs"]:
        assert r["patients"] == 6 and r["errors"] == 0
        assert r["wall_s"] > 0 and r["patients_per_s_per_core"] > 0
        assert r["cpu_s"] > 0 and r["cpu_ms_per_patient"] > 0
        assert len(r["worker_peak_rss_mb"]) == 1 and 50 < r["worker_peak_rss_mb"][0] < 4000
    assert data["verdict"]["dask_over_pool_wall_1w"] > 0
    assert str(path) in capsys.readouterr().out
