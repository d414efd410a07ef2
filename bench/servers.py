"""The servers a benchmark measures: gunicorn in its own process group, its log in a file,
timed from spawn to its first answer, with its workers' memory read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from bench.client import post


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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
