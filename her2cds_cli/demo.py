"""`her2-cds demo`: a newcomer's first run, end to end over real HTTP.

Generates a handful of synthetic patients (one of each kind worth seeing), starts the service on
the embedded defaults (SQLite in a temporary directory) on a free 127.0.0.1 port, reads discovery,
fills each request's prefetch from the service's own templates (her2cds_cli.local_fhir, as a CDS
client does), calls `her2-next-line`, and prints per patient the journey, the answer and whether
it agrees with the generator's ground truth.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
import uuid
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import requests
from werkzeug.serving import make_server

from her2cds_cli.local_fhir import fill_prefetch, patient_keys_of
from synthetic.compare import compare, observe
from synthetic.generate import patient_bundle
from synthetic.progress import Progress

# The patients shown: one per situation a newcomer should see (repeated when more are asked for).
DEMO_KINDS = [
    "her2-metastatic",
    "her2-metastatic",
    "her2-metastatic",
    "her2-metastatic",
    "her2-equivocal-no-ish",
    "her2-negative",
    "non-breast",
    "early-only",
]


class Server:
    """The Flask app on werkzeug in a thread, bound to 127.0.0.1 on a free port."""

    def __init__(self, database_url: str) -> None:
        from cds_service.app import create_app

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log over the bar
        self.app = create_app({"database_url": database_url})
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


def timeline(truth: dict[str, Any]) -> list[str]:
    out = []
    her2 = truth["her2"]["status"]
    since = truth["metastatic_since"]
    metastatic = f"metastatic since {since}" if since else "not metastatic"
    out.append(
        f"  {truth['kind']}: HER2 {her2}, HR {'positive' if truth['hr_positive'] else 'negative'}, "
        + metastatic
        + (" (de novo)" if truth["de_novo"] else "")
    )
    if truth.get("shape"):
        scope = truth.get("scope") or {}
        why = f", out of scope: {scope['reason']}" if scope.get("reason") else ""
        out.append(f"  shape: {truth['shape']}{why}")
    sites = ", ".join(
        s["site"] + ("" if s["status"] == "active" else f" ({s['status']})") for s in truth["sites"]
    )
    if sites:
        out.append(f"  sites: {sites}")
    if truth["early_setting"]:
        drugs = sorted({c["drug"] for c in truth["early_setting"]})
        out.append(f"  early setting: {', '.join(drugs)}")
    for ln in truth["lines"]:
        end = ln["end"] or "ongoing"
        how = {"progression": "progression", "pneumonitis": "stopped: pneumonitis"}.get(
            ln["stop_reason"], ""
        )
        out.append(
            f"  line {ln['number']}: {ln['start']} to {end:<10} {' + '.join(ln['drugs'])}"
            + (f"  [{how}]" if how else "")
        )
    return out


def answer(cards: list[dict[str, Any]]) -> list[str]:
    if not cards:
        return ["  service: no cards (out of scope)"]
    out = []
    for card in cards:
        ext = card["extension"]["org.her2cds"]
        label = f"{ext['kind']} {ext['rule']}" if ext.get("rule") else ext["kind"]
        out.append(f"  service [{card['indicator']:<8}] {label}: {card['summary']}")
    return out


def demo(
    patients: int = 6, seed: int = 7, out: TextIO | None = None, as_of: date | None = None
) -> int:
    """Run the demo; 0 when every patient was answered (agreement is reported, not required)."""
    stream = out or sys.stdout
    today = as_of or date.today()  # the service evaluates "now", so the journeys end today
    kinds = [DEMO_KINDS[i % len(DEMO_KINDS)] for i in range(patients)]
    cohort = [patient_bundle(seed, i, today, kinds[i]) for i in range(patients)]
    results: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        print("Starting the service (SQLite in a temporary directory)...", file=sys.stderr)
        with Server(f"sqlite:///{Path(tmp) / 'demo.db'}") as server, requests.Session() as http:
            discovery = http.get(f"{server.url}/cds-services", timeout=10).json()
            service = next(s for s in discovery["services"] if s["hook"] == "patient-view")
            bar = Progress(patients, f"calling {service['id']}")
            for bundle, truth in cohort:
                pid, keys = patient_keys_of(bundle)
                context = {"patientId": pid, "userId": "Practitioner/demo"}
                resources = [e["resource"] for e in bundle["entry"]]
                body = {
                    "hook": service["hook"],
                    "hookInstance": str(uuid.uuid4()),
                    "context": context,
                    "prefetch": fill_prefetch(service["prefetch"], context, resources, keys),
                }
                resp = http.post(
                    f"{server.url}/cds-services/{service['id']}", json=body, timeout=30
                )
                if resp.status_code != 200:
                    print(
                        f"her2-cds demo: {pid}: HTTP {resp.status_code}: {resp.text[:300]}",
                        file=sys.stderr,
                    )
                    return 1
                results.append((truth, resp.json()["cards"]))
                bar.update()
            bar.close()
    agree = 0
    for truth, cards in results:
        diffs = compare(truth, observe(cards))
        agree += not diffs
        print(f"\nPatient {truth['patient_id']}", file=stream)
        print("\n".join(timeline(truth)), file=stream)
        exp = truth.get("expected")
        if exp:
            print(
                f"  guideline next: line {exp['line']} {exp['regimen']} ({exp['timing']})",
                file=stream,
            )
        print("\n".join(answer(cards)), file=stream)
        print(
            "  agrees with the ground truth"
            if not diffs
            else "  DISAGREES: " + "; ".join(map(str, diffs)),
            file=stream,
        )
    print(
        f"\n{agree}/{len(results)} patients agree with the generator's ground truth.", file=stream
    )
    print(
        "Next: `her2-cds synth --patients 1000 --out DIR` and `her2-cds population --in DIR`.",
        file=stream,
    )
    return 0
