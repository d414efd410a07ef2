"""The population benchmark: the process pool against the Dask engine on bulk NDJSON.

    python -m bench.population --patients 10000             # both engines, 1 and 2 workers
    python -m bench.population --patients 100000 --keep     # the cohort stays for a re-run

1. a synthetic cohort as a bulk export (NDJSON, one file per resource type and chunk of 1,000
   patients), written patient by patient (memory does not grow with the cohort), reused when
   the same size and seed are asked again;
2. `her2-cds population` on each engine with 1 and 2 workers, each run in a fresh process:
   wall time, patients per second per core, peak RSS of each worker (pool: ru_maxrss of the
   children, or of the process itself with 1 worker; Dask: ru_maxrss read in each worker by
   the scheduler) and of the parent (the pool's parent holds the grouped cohort);
3. the verdict on the goals of issue 23: Dask within 1.3x of the pool's wall time, 2 workers
   at least 1.8x the throughput of one, memory per worker flat (against the results of other
   cohort sizes in bench/results/).

Results: bench/results/population-<patients>-<UTC time>.json and a printed summary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CHUNK = 1000  # patients per NDJSON file set
GOALS = {"dask_over_pool_wall": 1.3, "scaling_2_over_1": 1.8, "worker_rss_growth": 1.2}
POOL_BYTES_FACTOR = (
    6.0  # the pool parent's peak RSS per byte of NDJSON: 4.8 measured at 10k (README)
)


def _write_chunk(args: tuple[str, int, int, int, str]) -> int:
    """Patients [start, stop) of the cohort as NDJSON files <Type>.<chunk>.ndjson."""
    from synthetic.draw_journey import draw
    from synthetic.fhir import render

    out, seed, start, stop, as_of = args
    handles: dict[str, Any] = {}
    written = 0
    try:
        for i in range(start, stop):
            bundle = render(draw(seed, i, date.fromisoformat(as_of)), seed)
            pid = next(
                e["resource"]["id"]
                for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Patient"
            )
            for entry in bundle["entry"]:
                res = dict(entry["resource"])
                subj = res.get("subject")
                if isinstance(subj, dict) and str(subj.get("reference", "")).startswith(
                    "urn:uuid:"
                ):
                    res["subject"] = {"reference": f"Patient/{pid}"}  # as `synth --ndjson`
                rtype = res["resourceType"]
                if rtype not in handles:
                    name = f"{rtype}.{start // CHUNK:05d}.ndjson"
                    handles[rtype] = (Path(out) / name).open("wb")
                line = orjson.dumps(res, option=orjson.OPT_APPEND_NEWLINE)
                handles[rtype].write(line)
                written += len(line)
    finally:
        for fh in handles.values():
            fh.close()
    return written


def generate(out: Path, patients: int, seed: int, jobs: int) -> dict[str, Any]:
    """Write (or reuse) the cohort in `out`; its description (patients, seed, bytes)."""
    from synthetic.generate import DEFAULT_AS_OF

    marker = out / "cohort.meta"  # not .json: `population` would read it as a Bundle
    want = {"patients": patients, "seed": seed, "as_of": DEFAULT_AS_OF.isoformat()}
    if marker.exists():
        have = orjson.loads(marker.read_bytes())
        if {k: have.get(k) for k in want} == want:
            return dict(have, reused=True)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()
    chunks = [
        (str(out), seed, s, min(s + CHUNK, patients), want["as_of"])
        for s in range(0, patients, CHUNK)
    ]
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        total = sum(pool.map(_write_chunk, chunks))
    info = dict(want, ndjson_bytes=total, seconds=round(time.perf_counter() - started, 1))
    marker.write_bytes(orjson.dumps(info))
    return dict(info, reused=False)


def _peak_mb(who: int) -> float:
    import resource

    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # Linux: KiB


def run_one(engine: str, source: Path, out: Path, jobs: int) -> dict[str, Any]:
    """One engine run, in this process (called in a fresh child by `measure`)."""
    import resource

    started = time.perf_counter()
    if engine == "dask":
        from her2cds_cli.population_dask import population_dask

        summary = population_dask(source, out, jobs=jobs, progress=False)
        workers = list(summary["run"]["worker_peak_rss_mb"])
    else:
        from her2cds_cli.population import population

        summary = population(source, out, jobs=jobs, progress=False)
        workers = [_peak_mb(resource.RUSAGE_CHILDREN if jobs > 1 else resource.RUSAGE_SELF)]
    return {
        "engine": engine,
        "workers": jobs,
        "patients": summary["patients"],
        "errors": summary["errors"],
        "wall_s": round(time.perf_counter() - started, 2),
        "worker_peak_rss_mb": workers,
        "parent_peak_rss_mb": _peak_mb(resource.RUSAGE_SELF),
        "cpu_s": round(_cpu_s(resource.RUSAGE_SELF) + _cpu_s(resource.RUSAGE_CHILDREN), 1),
    }


def _cpu_s(who: int) -> float:
    """CPU seconds (user + system): steadier than the wall time on a shared machine. The
    children (pool workers, Dask worker processes) count once they have ended."""
    import resource

    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(engine: str, source: Path, out: Path, jobs: int) -> dict[str, Any]:
    """`run_one` in a fresh Python process, so that its peak memory is its own."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "bench.population", "--one", engine, "--workers", str(jobs)]
    argv += ["--cohort-dir", str(source), "--out", str(out)]
    load = os.getloadavg()[0]
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} with {jobs} workers failed:\n{proc.stderr[-3000:]}")
    row: dict[str, Any] = orjson.loads(proc.stdout.strip().splitlines()[-1])
    row["patients_per_s"] = round(row["patients"] / row["wall_s"], 2)
    row["patients_per_s_per_core"] = round(row["patients_per_s"] / jobs, 2)
    row["cpu_ms_per_patient"] = round(1000 * row["cpu_s"] / max(1, row["patients"]), 1)
    row["load_before"] = round(load, 2)
    return row


def pool_fits(ndjson_bytes: int) -> tuple[bool, str]:
    """The pool's parent groups the whole cohort in memory: will it fit in what is free?"""
    need = ndjson_bytes * POOL_BYTES_FACTOR
    meminfo = Path("/proc/meminfo").read_text(encoding="ascii").splitlines()
    free = next(int(x.split()[1]) * 1024 for x in meminfo if x.startswith("MemAvailable:"))
    fits = need < 0.6 * free
    return fits, f"needs about {need / 2**30:.1f} GB in one process, {free / 2**30:.1f} GB free"


def verdict(runs: list[dict[str, Any]], others: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios against the goals of issue 23 (None where a run is missing)."""

    def wall(engine: str, w: int) -> float | None:
        got = [r["wall_s"] for r in runs if r["engine"] == engine and r["workers"] == w]
        return got[0] if got else None

    out: dict[str, Any] = {"goals": GOALS}
    for w in sorted({r["workers"] for r in runs}):
        d, p = wall("dask", w), wall("pool", w)
        ratio = round(d / p, 2) if d and p else None
        out[f"dask_over_pool_wall_{w}w"] = ratio
        out[f"dask_within_1.3x_{w}w"] = ratio is not None and ratio <= GOALS["dask_over_pool_wall"]
    cpu = {(r["engine"], r["workers"]): r["cpu_s"] for r in runs if r.get("cpu_s") is not None}
    for w in sorted({r["workers"] for r in runs}):
        if ("dask", w) in cpu and cpu.get(("pool", w)):
            out[f"dask_over_pool_cpu_{w}w"] = round(cpu[("dask", w)] / cpu[("pool", w)], 2)
    for engine in ("pool", "dask"):
        one, two = wall(engine, 1), wall(engine, 2)
        ratio = round(one / two, 2) if one and two else None
        out[f"{engine}_scaling_2_over_1"] = ratio
        out[f"{engine}_scales_1.8x"] = ratio is not None and ratio >= GOALS["scaling_2_over_1"]
    mine = max((max(r["worker_peak_rss_mb"]) for r in runs if r["engine"] == "dask"), default=0)
    growth = {}
    for other in others:
        theirs = [max(r["worker_peak_rss_mb"]) for r in other["runs"] if r["engine"] == "dask"]
        if mine and theirs:
            growth[str(other["cohort"]["patients"])] = round(mine / max(theirs), 2)
    out["dask_worker_rss_vs_other_sizes"] = growth
    return out


def _others(patients: int) -> list[dict[str, Any]]:
    """The latest earlier result of every other cohort size."""
    latest: dict[int, dict[str, Any]] = {}
    for path in sorted(RESULTS.glob("population-*.json")):
        data = orjson.loads(path.read_bytes())
        n = data["cohort"]["patients"]
        if n != patients:
            latest[n] = data
    return list(latest.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.population", description=__doc__)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    ap.add_argument("--engines", default="pool,dask", help="pool, dask or both")
    ap.add_argument("--cohort-dir", type=Path, default=None, help="default: a temporary dir")
    ap.add_argument("--keep", action="store_true", help="keep the cohort for a re-run")
    ap.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    ap.add_argument("--one", choices=("pool", "dask"), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:  # the child of `measure`
        row = run_one(args.one, args.cohort_dir, args.out, int(args.workers))
        print(orjson.dumps(row).decode())
        return 0
    workers = [int(w) for w in args.workers.split(",")]
    engines = [e for e in args.engines.split(",") if e]
    tmp = Path(tempfile.mkdtemp(prefix="her2cds-bench-pop-"))
    cohort_dir = args.cohort_dir or Path(tempfile.gettempdir()) / (
        f"her2cds-bench-cohort-{args.patients}-{args.seed}"
    )
    try:
        cohort = generate(cohort_dir, args.patients, args.seed, max(workers))
        print(f"cohort: {cohort}", file=sys.stderr)
        runs, skipped = [], []
        fits, why = pool_fits(cohort["ndjson_bytes"])
        for w in workers:
            for engine in engines:
                if engine == "pool" and not fits:
                    skipped.append({"engine": "pool", "workers": w, "reason": why})
                    continue
                row = measure(engine, cohort_dir, tmp / f"{engine}-{w}", w)
                print(f"  {orjson.dumps(row).decode()}", file=sys.stderr)
                runs.append(row)
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "cohort": cohort,
            "runs": runs,
            "skipped": skipped,
        }
        result["verdict"] = verdict(runs, _others(args.patients))
        args.results.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = args.results / f"population-{args.patients}-{stamp}.json"
        path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        print(orjson.dumps(result["verdict"], option=orjson.OPT_INDENT_2).decode())
        print(f"results: {path}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.keep and args.cohort_dir is None:
            shutil.rmtree(cohort_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
