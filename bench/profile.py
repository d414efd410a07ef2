"""Profile one payload in-process with pyinstrument (a dev tool: `pip install pyinstrument`).

    /work/venv/bin/python -m bench.profile scale-20k             # call tree
    /work/venv/bin/python -m bench.profile scale-5k --repeat 3 --shares

Runs the request through the Flask app (as a worker does, without the HTTP server) after one
warm request. `--shares` prints the share of samples spent under each function of ours and of
FHIR validation, which is what bench/README.md quotes. Profile another checkout's code with
PYTHONPATH=/path/to/checkout (the payloads still come from this one).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench.client import fresh
from bench.payloads import build, missing_data

PATH = "/cds-services/her2-next-line"
# Functions whose inclusive time bench/README.md reports (module path suffix, function name).
WATCH = (
    ("cds_service/api/validation.py", "parse_body"),
    ("cds_service/api/validation.py", "validate_request"),
    ("cds_service/prefetch/prefetch.py", "resolve"),
    ("fhir_mappers/resources.py", "collect"),
    ("fhir_mappers/resources.py", "validate"),
    ("fhir_mappers/terminology.py", "match_medication"),
    ("fhir_mappers/conditions.py", "condition_facts"),
    ("fhir_mappers/observations.py", "observation_facts"),
    ("fhir_mappers/medications.py", "exposures"),
    ("fhir_mappers/lines.py", "build_lines"),
    ("fhir_mappers/record.py", "build_record"),
    ("engine/assess.py", "assess"),
    ("cards/__init__.py", "render_assessment"),
    ("cds_service/pipeline.py", "patient_view"),
    ("cds_service/api/hooks.py", "call_service"),
)


def shares(session: Any) -> list[tuple[str, float]]:
    """Inclusive time per watched function (not double counted under recursion)."""
    totals: dict[str, float] = {}

    def walk(frame: Any, active: frozenset[str]) -> None:
        key = None
        for suffix, name in WATCH:
            if frame.function == name and (frame.file_path or "").endswith(suffix):
                key = f"{suffix.rsplit('/', 1)[0]}.{name}"
        if key and key not in active:
            totals[key] = totals.get(key, 0.0) + frame.time
            active = active | {key}
        for child in frame.children:
            walk(child, active)

    root = session.root_frame()
    walk(root, frozenset())
    total = root.time or 1.0
    return [(k, v / total) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]


def main(argv: list[str] | None = None) -> int:
    from pyinstrument import Profiler

    from cds_service import create_app

    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("payload", help="sandbox, synthea-her2, scale-1k, scale-5k, scale-20k, ...")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--shares", action="store_true", help="print function shares only")
    args = parser.parse_args(argv)
    absent = missing_data()
    if absent:
        print(f"bench: {absent}", file=sys.stderr)
        return 2
    (payload,) = build({args.payload})
    app = create_app({"database_url": "sqlite://", "max_body_bytes": 64 * 1024 * 1024})
    client = app.test_client()
    client.post(PATH, data=fresh(payload.body), content_type="application/json")
    profiler = Profiler(interval=0.001)
    start = time.process_time()
    profiler.start()
    for _ in range(args.repeat):
        resp = client.post(PATH, data=fresh(payload.body), content_type="application/json")
        assert resp.status_code == 200, resp.data[:300]
    session = profiler.stop()
    cpu = (time.process_time() - start) / args.repeat
    print(f"{payload.name}: {payload.resources} resources, {cpu * 1000:.0f} ms CPU per request")
    if args.shares:
        for name, share in shares(session):
            print(f"  {share * 100:5.1f}%  {name}")
    else:
        print(profiler.output_text(unicode=False, color=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
