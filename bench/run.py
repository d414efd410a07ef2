"""The benchmark: the service as `her2-cds serve` runs it, against a floor on the same server.

    /work/venv/bin/python -m bench.run            # full run (about 7 minutes)
    /work/venv/bin/python -m bench.run --quick    # smoke run (about 2 minutes)

Starts `python -m her2cds_cli.cli serve` (gunicorn, cds_service/server.py) and `python -m
bench.floor` (the same gunicorn options; parses the body with orjson, answers no cards), then:

1. start-up: seconds from spawning each server to its first answered patient-view request;
2. latency: the same patient-view requests to both, interleaved (service then floor, then
   floor then service, ...), one at a time, after a warm-up; p50/p95 per payload and the ratio
   to the floor's;
3. load: a separate load-generator process, `--clients` threads for `--load-seconds` (and at
   most `--load-max` requests) on each server in turn; requests/second, errors;
4. memory: resident set (VmRSS), peak (VmHWM) and proportional (Pss) size of each worker,
   from /proc, after the latency phase and after the load.

Results go to bench/results/<UTC timestamp>.json and a summary table is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.client import percentile, timed_post
from bench.payloads import Payload, build, missing_data
from bench.report import describe_code, machine, table, verdicts
from bench.servers import Server, free_port
from cds_service.server import default_workers

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PATH = "/cds-services/her2-next-line"
MAX_BODY = 32 * 1024 * 1024  # the 20,000-resource request is 11 MB (the default limit is 10 MB)


def _check(payload: Payload, status: int, answer: bytes, errors: list[str]) -> None:
    if status != 200:
        errors.append(f"{payload.name}: HTTP {status}: {answer[:200]!r}")
        return
    cards = orjson.loads(answer).get("cards")
    if not isinstance(cards, list):
        errors.append(f"{payload.name}: no cards list")


def measure_latency(
    service: Server,
    floor: Server,
    payloads: list[Payload],
    rounds: int,
    budget_s: float,
    warmup: int,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Interleaved sequential requests; per payload at least 5 and at most `rounds` rounds,
    stopping early once `budget_s` seconds are spent on it."""
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for payload in payloads:
        for _ in range(warmup):  # every worker sees the payload at least once
            for server in (service, floor):
                _, status, answer = timed_post(server.port, payload.body)
                if server is service:
                    _check(payload, status, answer, errors)
        times: dict[str, list[float]] = {"service": [], "floor": []}
        cards = 0
        start = time.perf_counter()
        for i in range(rounds):
            order = (service, floor) if i % 2 == 0 else (floor, service)
            for server in order:
                elapsed, status, answer = timed_post(server.port, payload.body)
                times[server.name].append(elapsed)
                if server is service:
                    _check(payload, status, answer, errors)
                    if status == 200:
                        cards = len(orjson.loads(answer).get("cards") or [])
            if i + 1 >= 5 and time.perf_counter() - start > budget_s:
                break
        s50, s95 = percentile(times["service"], 50), percentile(times["service"], 95)
        f50, f95 = percentile(times["floor"], 50), percentile(times["floor"], 95)
        row = {
            **payload.describe(),
            "n": len(times["service"]),
            "cards": cards,
            "service_p50_ms": round(s50 * 1000, 2),
            "service_p95_ms": round(s95 * 1000, 2),
            "floor_p50_ms": round(f50 * 1000, 2),
            "floor_p95_ms": round(f95 * 1000, 2),
            "p50_ratio": round(s50 / f50, 2),
            "p95_ratio": round(s95 / f95, 2),
        }
        rows.append(row)
        print(
            f"  {payload.name:16} n={row['n']:3}  service p50 {row['service_p50_ms']:9.1f} ms"
            f"  floor p50 {row['floor_p50_ms']:7.1f} ms  x{row['p50_ratio']}",
            flush=True,
        )
    return rows, errors


def run_load(
    server: Server, files: list[Path], clients: int, seconds: float, max_requests: int
) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.client",
        "load",
        "--port",
        str(server.port),
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
        "--max-requests",
        str(max_requests),
        *map(str, files),
    ]
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, check=True, timeout=seconds + 180, env=_env()
    )
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return result


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short run: few rounds, 10 s of load")
    p.add_argument("--workers", type=int, default=None, help="both servers (default: serve's)")
    p.add_argument("--rounds", type=int, default=100, help="max interleaved rounds per payload")
    p.add_argument("--payload-seconds", type=float, default=40.0, help="time cap per payload")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--load-seconds", type=float, default=60.0)
    p.add_argument("--load-max", type=int, default=200_000, help="max requests per load run")
    p.add_argument(
        "--load-mix",
        default="sandbox,synthea-her2,synthea-largest,scale-1k",
        help="comma-separated payloads the load generator cycles through",
    )
    p.add_argument("--only", default="", help="comma-separated payload names to measure")
    p.add_argument("--no-load", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--code",
        type=Path,
        default=ROOT,
        help="checkout whose service is measured (default: this one), e.g. another worktree",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rounds = min(args.rounds, 10)
        args.payload_seconds = min(args.payload_seconds, 10.0)
        args.load_seconds = min(args.load_seconds, 10.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    absent = missing_data()
    if absent:
        print(f"bench: {absent}", file=sys.stderr)
        return 2
    workers = args.workers or default_workers()
    print("building payloads ...", flush=True)
    payloads = build({*args.only.split(","), "sandbox"} if args.only else None)
    tmp = Path(tempfile.mkdtemp(prefix="her2cds-bench-"))
    files = {}
    for p in payloads:
        files[p.name] = tmp / f"{p.name}.json"
        files[p.name].write_bytes(p.body)
    sandbox = next(p for p in payloads if p.name == "sandbox")
    result: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "workers": workers,
        "code": describe_code(args.code.resolve()),
        "args": {k: str(v) for k, v in vars(args).items()},
        "payloads": [p.describe() for p in payloads],
    }
    env = _env(
        HER2CDS_DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
        HER2CDS_MAX_BODY_BYTES=str(MAX_BODY),
    )
    py = sys.executable
    sport, fport = free_port(), free_port()
    servers: list[Server] = []
    try:
        print(f"starting service and floor ({workers} workers each) ...", flush=True)
        service = Server(
            "service",
            [py, "-m", "her2cds_cli.cli", "serve", "--port", str(sport), "--workers", str(workers)],
            sport,
            {**env, "PYTHONPATH": str(args.code.resolve())},
            tmp / "service.log",
            args.code.resolve(),
        )
        servers.append(service)
        startup = {"service": round(service.wait_ready(sandbox.body), 2)}
        floor = Server(
            "floor",
            [py, "-m", "bench.floor", "--port", str(fport), "--workers", str(workers)],
            fport,
            env,
            tmp / "floor.log",
            ROOT,
        )
        servers.append(floor)
        startup["floor"] = round(floor.wait_ready(sandbox.body), 2)
        result["startup_s"] = startup
        deadline = time.monotonic() + 10  # the first answer can come before every fork
        while len(service.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        result["memory"] = {"after start": service.memory()}
        print(f"start-up {startup}; latency (interleaved) ...", flush=True)
        rows, errors = measure_latency(
            service, floor, payloads, args.rounds, args.payload_seconds, warmup=workers
        )
        result["latency"], result["errors"] = rows, errors
        result["memory"]["after latency"] = service.memory()
        if not args.no_load:
            mix = [m for m in args.load_mix.split(",") if m in files]
            result["load_mix"] = ",".join(mix)
            result["load"] = {}
            for server in (service, floor):
                print(f"load on {server.name}: {args.clients} clients ...", flush=True)
                result["load"][server.name] = run_load(
                    server, [files[m] for m in mix], args.clients, args.load_seconds, args.load_max
                )
            result["memory"]["after load"] = service.memory()
    finally:
        for server in servers:
            server.stop()
    result["machine"]["loadavg_end"] = os.getloadavg()
    result["verdicts"] = [{"target": n, "met": ok, "detail": d} for n, ok, d in verdicts(result)]
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out / f"{stamp}.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    m = result["machine"]
    print(
        f"\nMachine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
        f"{workers} workers; code {result['code']}; load average {m['loadavg_start'][0]:.2f} at start, "
        f"{m['loadavg_end'][0]:.2f} at end\n"
    )
    print(table(result))
    print(f"\nresults: {out}")
    for e in result["errors"][:10]:
        print("error:", e)
    if result["errors"]:
        print(f"server logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
