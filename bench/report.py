"""What a benchmark run is judged by: the targets, the verdicts on a result, the summary table,
and the machine and checkout it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

TARGETS = {
    "p50_ratio": 2.5,
    "p95_ratio": 3.0,
    "growth_20k_over_1k": 25.0,
    "startup_s": 3.0,
    "rss_mb": 250.0,
}


def describe_code(path: Path) -> str:
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
