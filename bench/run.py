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
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.client import percentile, post, timed_post
from bench.payloads import Payload, build, missing_data
from cds_service.server import default_workers

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PATH = "/cds-services/her2-next-line"
MAX_BODY = 32 * 1024 * 1024  # the 20,000-resource request is 11 MB (the default limit is 10 MB)

TARGETS = {
    "p50_ratio": 2.5,
    "p95_ratio": 3.0,
    "growth_20k_over_1k": 25.0,
    "startup_s": 3.0,
    "rss_mb": 250.0,
}


class Server:
    """One gunicorn server in its own process group, with its log in a file."""

    def __init__(
        self, name: str, argv: list[str], port: int, env: dict[str, str], log: Path, cwd: Path
    ):
        self.name = name
        self.port = port
        self.log = log
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, body: bytes, timeout: float = 60.0) -> float:
        """Seconds from spawn to the first 200 answer to `body`."""
        while time.perf_counter() - self.started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log}")
            try:
                status, _ = post(self.port, body, timeout=30)
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not answer within {timeout} s: see {self.log}")

    def workers(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                pids.append(int(entry.name))
        return sorted(pids)

    def memory(self) -> list[dict[str, float]]:
        """VmRSS, VmHWM and Pss (MB) of every worker."""
        out = []
        for pid in self.workers():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            fields = {}
            for line in (status + rollup).splitlines():
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Pss") and rest.strip().endswith("kB"):
                    fields[key] = round(int(rest.split()[0]) / 1024, 1)
            out.append({"pid": pid, "rss_mb": fields.get("VmRSS", 0.0), **_mb(fields)})
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _mb(fields: dict[str, float]) -> dict[str, float]:
    return {"hwm_mb": fields.get("VmHWM", 0.0), "pss_mb": fields.get("Pss", 0.0)}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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


def _describe_code(path: Path) -> str:
    """The checkout measured: its path, branch and commit (plus '+dirty' when modified)."""
    try:
        git = ["git", "-C", str(path)]
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True)
        branch = subprocess.run([*git, "branch", "--show-current"], capture_output=True)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True
        )
        return f"{path} {branch.stdout.decode().strip()}@{head.stdout.decode().strip()}" + (
            "+dirty" if dirty.stdout.strip() else ""
        )
    except OSError:
        return str(path)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
    }


def verdicts(result: dict[str, Any]) -> list[tuple[str, bool, str]]:
    rows = {r["name"]: r for r in result["latency"]}
    out: list[tuple[str, bool, str]] = []
    worst50 = max(rows.values(), key=lambda r: r["p50_ratio"])
    worst95 = max(rows.values(), key=lambda r: r["p95_ratio"])
    out.append(
        (
            "p50 <= 2.5x floor on every payload",
            worst50["p50_ratio"] <= TARGETS["p50_ratio"],
            f"worst x{worst50['p50_ratio']} ({worst50['name']})",
        )
    )
    out.append(
        (
            "p95 <= 3x floor on every payload",
            worst95["p95_ratio"] <= TARGETS["p95_ratio"],
            f"worst x{worst95['p95_ratio']} ({worst95['name']})",
        )
    )
    if "scale-1k" in rows and "scale-20k" in rows:
        growth = rows["scale-20k"]["service_p50_ms"] / rows["scale-1k"]["service_p50_ms"]
        result["growth_20k_over_1k"] = round(growth, 1)
        out.append(
            (
                "20k resources <= 25x the 1k cost (p50)",
                growth <= TARGETS["growth_20k_over_1k"],
                f"x{growth:.1f}",
            )
        )
    startup = result["startup_s"]["service"]
    out.append(("start-up to first answer < 3 s", startup < TARGETS["startup_s"], f"{startup} s"))
    mems = [m for phase in result["memory"].values() for m in phase]
    rss = max((m["hwm_mb"] for m in mems), default=0.0)
    out.append(("< 250 MB resident per worker (peak)", rss < TARGETS["rss_mb"], f"{rss} MB"))
    if result.get("load"):
        load = result["load"]["service"]
        errs = sum(load["errors"].values()) + len(result["errors"])
        out.append(
            (
                f"zero errors under load ({load['clients']} clients, {load['seconds']} s)",
                errs == 0,
                f"{errs} errors, {load['ok']} ok",
            )
        )
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        "| payload | resources | body | n | service p50 | p95 | floor p50 | p95 | p50 ratio | p95 ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["latency"]:
        lines.append(
            f"| {r['name']} | {r['resources']:,} | {r['bytes'] / 1024:,.0f} KB | {r['n']} "
            f"| {r['service_p50_ms']:,.1f} ms | {r['service_p95_ms']:,.1f} ms "
            f"| {r['floor_p50_ms']:,.1f} ms | {r['floor_p95_ms']:,.1f} ms "
            f"| {r['p50_ratio']} | {r['p95_ratio']} |"
        )
    lines.append("")
    su = result["startup_s"]
    lines.append(f"Start-up to first answer: service {su['service']} s, floor {su['floor']} s.")
    for phase, mems in result["memory"].items():
        desc = ", ".join(f"{m['rss_mb']}/{m['hwm_mb']}/{m['pss_mb']}" for m in mems)
        lines.append(f"Workers' memory {phase} (RSS/peak RSS/PSS MB): {desc}.")
    if result.get("load"):
        for name, ld in result["load"].items():
            lines.append(
                f"Load on {name}: {ld['clients']} clients, {ld['seconds']} s, "
                f"{ld['rps']} req/s, {ld['ok']} ok, errors {ld['errors'] or 0}, "
                f"p50 {ld['p50_ms']} ms, p95 {ld['p95_ms']} ms (mix: {result['load_mix']})."
            )
    lines.append("")
    for name, ok, detail in verdicts(result):
        lines.append(f"- {'MET' if ok else 'NOT MET'}: {name}: {detail}")
    return "\n".join(lines)


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
        "code": _describe_code(args.code.resolve()),
        "args": {k: str(v) for k, v in vars(args).items()},
        "payloads": [p.describe() for p in payloads],
    }
    env = _env(
        HER2CDS_DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
        HER2CDS_MAX_BODY_BYTES=str(MAX_BODY),
    )
    py = sys.executable
    sport, fport = _free_port(), _free_port()
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
