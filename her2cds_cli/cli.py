"""The her2-cds command: serve the service, or evaluate FHIR bundles from files."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from cds_service.config import ConfigError, from_env, unknown_variables


def _metrics_dir() -> None:
    """Give the workers one Prometheus multiprocess directory unless the operator chose one:
    without it /metrics would show the counters of whichever worker answers the scrape.
    Must run before prometheus_client is imported (it reads the variable on import)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") or "prometheus_client" in sys.modules:
        return
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="her2cds-metrics-")


def _serve(args: argparse.Namespace) -> int:
    _metrics_dir()
    from cds_service.security.auth import serve_config
    from cds_service.server import run

    for name in unknown_variables():
        print(f"her2-cds: warning: {name} is not a setting; ignored", file=sys.stderr)
    try:
        cfg = serve_config(args.host, auth=args.auth, dev=args.dev)
    except ConfigError as exc:
        print(f"her2-cds: configuration error: {exc}", file=sys.stderr)
        return 2
    host = args.host or cfg.host
    port = args.port or cfg.port
    return run(cfg, host=host, port=port, workers=args.workers or cfg.workers or None)


def _evaluate(args: argparse.Namespace) -> int:
    from cds_service.pipeline import patient_view
    from her2cds_cli.files import read_json, split_patients
    from her2cds_cli.report import describe

    try:
        cfg = from_env()
    except ConfigError as exc:
        print(f"her2-cds: configuration error: {exc}", file=sys.stderr)
        return 2
    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    results: list[dict[str, Any]] = []
    status = 0
    for name in args.files:
        path = Path(name)
        try:
            data = read_json(path)
        except (OSError, ValueError) as exc:
            print(f"her2-cds: cannot read {path}: {exc}", file=sys.stderr)
            status = 1
            continue
        for pid, resources in split_patients(data):
            result = patient_view(
                resources,
                instance=f"evaluate:{path.name}:{pid}",
                patient_id=pid,
                jurisdiction=cfg.jurisdiction,
                as_of=as_of,
            )
            if args.json:
                reason = result.assessment.out_of_scope_reason
                entry: dict[str, Any] = {"patient": pid, "file": str(path), "cards": result.cards}
                if reason:  # the single-patient answer stays a plain CDS Hooks response
                    entry["outOfScope"] = reason
                    print(f"her2-cds: {path.name}: {pid}: {reason}", file=sys.stderr)
                results.append(entry)
            else:
                print(describe(result.assessment, result.cards, source=str(path)))
    if args.json:
        payload: Any = results[0] if len(results) == 1 else results
        if len(results) == 1:
            payload = {"cards": results[0]["cards"]}
        sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
    return status


def _synth(args: argparse.Namespace) -> int:
    from synthetic.generate import DEFAULT_AS_OF, generate_cohort

    as_of = date.fromisoformat(args.as_of) if args.as_of else DEFAULT_AS_OF
    written = generate_cohort(Path(args.out), args.patients, args.seed, as_of, ndjson=args.ndjson)
    print(f"her2-cds: wrote {args.patients} patients ({len(written)} files) to {args.out}")
    return 0


def _population(args: argparse.Namespace) -> int:
    from her2cds_cli.population import population
    from her2cds_cli.population_dask import DaskEngineError, population_dask

    try:
        if args.engine == "dask":
            summary = population_dask(Path(args.inp), Path(args.out), args.jobs, args.scheduler)
        else:
            summary = population(Path(args.inp), Path(args.out), jobs=args.jobs)
    except (FileNotFoundError, DaskEngineError) as exc:
        print(f"her2-cds: {exc}", file=sys.stderr)
        return 1
    agreement = (
        f"{summary['agree']}/{summary['compared']} agree with the ground truth"
        if summary["compared"]
        else "no answer files to compare with"
    )
    print(
        f"her2-cds: {summary['patients']} patients, {summary['errors']} errors, {agreement}; "
        f"report in {Path(args.out) / 'report.html'}"
    )
    for text, n in summary["disagreements"].most_common(15):
        print(f"  {n:5d}  {text}")
    return 1 if summary["errors"] else 0


def _demo(args: argparse.Namespace) -> int:
    from her2cds_cli.demo import demo

    return demo(patients=args.patients, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    from her2cds_cli.population_dask import scheduler_address

    parser = argparse.ArgumentParser(
        prog="her2-cds",
        description="CDS Hooks 2.0 service: next-line therapy for HER2-positive metastatic breast cancer.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service on gunicorn")
    serve.add_argument("--host", default=None, help="address to bind (default: HER2CDS_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default: HER2CDS_PORT)")
    serve.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: from CPU count)"
    )
    serve.add_argument(
        "--auth",
        choices=("required", "off"),
        default=None,
        help="verify the CDS client's JWT (default: HER2CDS_AUTH, else off on a loopback "
        "address and required on any other)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development server: authentication off by default, on any address",
    )
    serve.set_defaults(func=_serve)
    ev = sub.add_parser(
        "evaluate",
        help="evaluate FHIR R4 Bundles (.json or .json.gz) and print the picture and cards",
    )
    ev.add_argument("files", nargs="+")
    ev.add_argument("--json", action="store_true", help="print the CDS Hooks response instead")
    ev.add_argument("--as-of", help="evaluate as of this date (YYYY-MM-DD; default today)")
    ev.set_defaults(func=_evaluate)
    sy = sub.add_parser("synth", help="generate synthetic HER2+ patient journeys (FHIR + answers)")
    sy.add_argument("--patients", type=int, default=20)
    sy.add_argument("--seed", type=int, default=1)
    sy.add_argument("--out", required=True, help="output directory")
    sy.add_argument("--as-of", help="snapshot date (YYYY-MM-DD; default a fixed date)")
    sy.add_argument("--ndjson", action="store_true", help="write bulk-export NDJSON instead")
    sy.set_defaults(func=_synth)
    dm = sub.add_parser("demo", help="first run: synthetic patients through the real HTTP service")
    dm.add_argument("--patients", type=int, default=6)
    dm.add_argument("--seed", type=int, default=7)
    dm.set_defaults(func=_demo)
    po = sub.add_parser("population", help="run the engine over many patients, write a report")
    po.add_argument("--in", dest="inp", required=True, help="directory of Bundles or NDJSON")
    po.add_argument("--out", default="population-report", help="report directory")
    po.add_argument("--jobs", type=int, default=None, help="worker processes (default: cores)")
    po.add_argument(
        "--engine",
        choices=("pool", "dask"),
        default="pool",
        help="pool: local worker processes (default); dask: Dask distributed",
    )
    po.add_argument(
        "--scheduler",
        type=scheduler_address,
        default=None,
        help="with --engine dask: the scheduler, tcp://host:8786 (default: a local cluster of --jobs workers)",
    )
    po.set_defaults(func=_population)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
