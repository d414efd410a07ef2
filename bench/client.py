"""HTTP client side of the benchmark: one POST, and the concurrent load generator.

The load generator runs as its own process (`python -m bench.client load ...`) so that its
work is not counted inside the benchmark's own latency measurements; it is bounded both in
time (`--seconds`) and in count (`--max-requests`), and prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

HOOK_INSTANCE = b"00000000-0000-4000-8000-000000000000"
PATH = "/cds-services/her2-next-line"


def fresh(body: bytes) -> bytes:
    """The body with a new hookInstance (same length: the placeholder is a uuid)."""
    return body.replace(HOOK_INSTANCE, str(uuid.uuid4()).encode(), 1)


def post(port: int, body: bytes, path: str = PATH, timeout: float = 60.0) -> tuple[int, bytes]:
    """POST on a new connection (gunicorn's sync workers close it after each answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def timed_post(port: int, body: bytes) -> tuple[float, int, bytes]:
    data = fresh(body)
    start = time.perf_counter()
    status, answer = post(port, data)
    return time.perf_counter() - start, status, answer


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def load(
    port: int, bodies: list[bytes], clients: int, seconds: float, max_requests: int
) -> dict[str, Any]:
    """`clients` threads POST round-robin over `bodies` until the time or the count runs out."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    issued = 0
    deadline = time.monotonic() + seconds

    def take() -> bool:
        nonlocal issued
        with lock:
            if issued >= max_requests or time.monotonic() >= deadline:
                return False
            issued += 1
            return True

    def worker(offset: int) -> None:
        i = offset
        while take():
            body = bodies[i % len(bodies)]
            i += 1
            try:
                elapsed, status, answer = timed_post(port, body)
                ok = status == 200 and answer.startswith(b'{"cards":')
                key = "ok" if ok else f"http {status}"
            except (OSError, http.client.HTTPException) as exc:
                elapsed, key = 0.0, type(exc).__name__
            with lock:
                if key == "ok":
                    latencies.append(elapsed)
                else:
                    errors[key] = errors.get(key, 0) + 1

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    return {
        "clients": clients,
        "seconds": round(wall, 3),
        "requests": issued,
        "ok": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / wall, 2) if wall else 0.0,
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p95_ms": round(percentile(latencies, 95) * 1000, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client")
    sub = parser.add_subparsers(dest="command", required=True)
    ld = sub.add_parser("load", help="concurrent load on one server; prints JSON")
    ld.add_argument("--port", type=int, required=True)
    ld.add_argument("--clients", type=int, default=16)
    ld.add_argument("--seconds", type=float, default=60.0)
    ld.add_argument("--max-requests", type=int, default=100_000)
    ld.add_argument("bodies", nargs="+", help="files holding request bodies (round-robin)")
    args = parser.parse_args(argv)
    bodies = [Path(b).read_bytes() for b in args.bodies]
    result = load(args.port, bodies, args.clients, args.seconds, args.max_requests)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
