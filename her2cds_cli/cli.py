"""The her2-cds command: serve the service, evaluate FHIR files, synthetic cohorts, reports.

Adding a sub-command: write `_add_<name>(sub)`, which adds its parser with `sub.add_parser`,
parses and bounds every value with a type from her2cds_cli.arguments (bad input then exits 2
with one sentence) and sets `func` to a handler `(args) -> exit status`; list it in COMMANDS.
Import heavy modules inside the handler, so that `--help` and argument errors stay fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from her2cds_cli.arguments import (
    Parser,
    bounded_int,
    input_path,
    iso_date,
    notice,
    output_dir,
    port,
)
from her2cds_cli.population_dask import scheduler_address


def _metrics_dir() -> None:
    """Give the workers one Prometheus multiprocess directory unless the operator chose one:
    without it /metrics would show the counters of whichever worker answers the scrape.
    Must run before prometheus_client is imported (it reads the variable on import)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") or "prometheus_client" in sys.modules:
        return
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="her2cds-metrics-")


def _config_error(exc: Exception) -> int:
    print(f"her2-cds: configuration error: {exc}", file=sys.stderr)
    return 2


# --- serve ------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    _metrics_dir()
    from cds_service.config import ConfigError, unknown_variables
    from cds_service.security.auth import serve_config
    from cds_service.server import run

    for name in unknown_variables():
        notice(f"warning: {name} is not a setting; ignored")
    try:
        cfg = serve_config(args.host, auth=args.auth, dev=args.allow_no_auth)
    except ConfigError as exc:
        return _config_error(exc)
    host = args.host or cfg.host
    return run(
        cfg, host=host, port=args.port or cfg.port, workers=args.workers or cfg.workers or None
    )


class _DeprecatedDev(argparse.Action):
    """`--dev`, the old name of --allow-no-auth: same effect, with a one-line notice."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        notice(
            "--dev is deprecated: it only allows serving without authentication; use --allow-no-auth"
        )
        setattr(namespace, self.dest, True)


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the service on gunicorn")
    serve.add_argument("--host", default=None, help="address to bind (default: HER2CDS_HOST)")
    serve.add_argument("--port", type=port, default=None, help="port (default: HER2CDS_PORT)")
    serve.add_argument(
        "--workers",
        type=bounded_int(1, 64),
        default=None,
        help="worker processes, 1 to 64 (default: HER2CDS_WORKERS, else from the CPU count)",
    )
    serve.add_argument(
        "--auth",
        choices=("required", "off"),
        default=None,
        help="verify the CDS client's JWT (default: HER2CDS_AUTH, else off on a loopback "
        "address and required on any other)",
    )
    serve.add_argument(
        "--allow-no-auth",
        action="store_true",
        help="allow authentication off on a non-loopback address, and make off the default "
        "there: anyone who can reach the address may call the service (never in production; "
        "--auth required or HER2CDS_AUTH=required still wins)",
    )
    serve.add_argument(
        "--dev", dest="allow_no_auth", nargs=0, action=_DeprecatedDev, help=argparse.SUPPRESS
    )
    serve.set_defaults(func=_serve)


# --- evaluate ---------------------------------------------------------------------------------


def _evaluate(args: argparse.Namespace) -> int:
    from cds_service.config import ConfigError, from_env
    from her2cds_cli.evaluate import evaluate

    try:
        cfg = from_env()
    except ConfigError as exc:
        return _config_error(exc)
    return evaluate(args.paths, as_of=args.as_of, as_json=args.json, jurisdiction=cfg.jurisdiction)


def _add_evaluate(sub: Any) -> None:
    ev = sub.add_parser(
        "evaluate",
        help="evaluate FHIR R4 Bundles (.json, .json.gz), NDJSON or directories of them, and "
        "print the picture and cards",
    )
    ev.add_argument(
        "paths",
        nargs="+",
        type=input_path,
        metavar="PATH",
        help="a Bundle or resource (.json, .json.gz), bulk-export NDJSON (.ndjson, .ndjson.gz) "
        "or a directory of them (synth's *.truth.json answer files are skipped)",
    )
    ev.add_argument(
        "--json",
        action="store_true",
        help='print {"patients": [{"patient", "file", "cards", "outOfScope"?}], "errors": [...]}',
    )
    ev.add_argument(
        "--as-of",
        type=iso_date,
        help="evaluate as of this date (YYYY-MM-DD; default today, or a synth patient's "
        "snapshot date from its answer file)",
    )
    ev.set_defaults(func=_evaluate)


# --- synth, demo, population ------------------------------------------------------------------


def _synth(args: argparse.Namespace) -> int:
    from her2cds_cli.progress import progress
    from synthetic.generate import DEFAULT_AS_OF, generate_cohort

    n = args.patients
    with progress(n, "synth") as advance:
        written = generate_cohort(
            args.out,
            n,
            args.seed,
            args.as_of or DEFAULT_AS_OF,
            ndjson=args.ndjson,
            progress=False,
            on_patient=advance,
        )
    data = "NDJSON files" if args.ndjson else "Bundles"
    print(
        f"her2-cds: wrote {n} patients ({len(written) + n} files: {len(written)} {data}, "
        f"{n} answer files) to {args.out}"
    )
    return 0


def _add_synth(sub: Any) -> None:
    sy = sub.add_parser("synth", help="generate synthetic HER2+ patient journeys (FHIR + answers)")
    sy.add_argument("--patients", type=bounded_int(1, 1_000_000), default=20)
    sy.add_argument("--seed", type=bounded_int(0, 2**32 - 1), default=1)
    sy.add_argument("--out", type=output_dir, default="synth", help="output directory (synth)")
    sy.add_argument(
        "--as-of", type=iso_date, help="snapshot date (YYYY-MM-DD; default a fixed date)"
    )
    sy.add_argument("--ndjson", action="store_true", help="write bulk-export NDJSON instead")
    sy.set_defaults(func=_synth)


def _demo(args: argparse.Namespace) -> int:
    from her2cds_cli.demo import demo

    return demo(patients=args.patients, seed=args.seed)


def _add_demo(sub: Any) -> None:
    dm = sub.add_parser("demo", help="first run: synthetic patients through the real HTTP service")
    dm.add_argument("--patients", type=bounded_int(1, 100), default=6)
    dm.add_argument("--seed", type=bounded_int(0, 2**32 - 1), default=7)
    dm.set_defaults(func=_demo)


def _population(args: argparse.Namespace) -> int:
    from pathlib import Path

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


def _add_population(sub: Any) -> None:
    po = sub.add_parser("population", help="run the engine over many patients, write a report")
    po.add_argument(
        "--in", dest="inp", type=input_path, required=True, help="directory of Bundles or NDJSON"
    )
    po.add_argument("--out", type=output_dir, default="report", help="report directory (report)")
    po.add_argument(
        "--jobs",
        type=bounded_int(1, 256),
        default=None,
        help="worker processes, 1 to 256 (default: cores)",
    )
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
        help="with --engine dask: the scheduler, tcp://host:8786 (default: a local cluster of "
        "--jobs workers)",
    )
    po.set_defaults(func=_population)


def _add_export(sub: Any) -> None:
    from her2cds_cli.bulk.command import add_parser  # `export`: the FHIR Bulk Data client

    add_parser(sub)


COMMANDS: tuple[Callable[[Any], None], ...] = (
    _add_serve,
    _add_evaluate,
    _add_synth,
    _add_demo,
    _add_population,
    _add_export,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="her2-cds",
        description="CDS Hooks 2.0 service: next-line therapy for HER2-positive metastatic breast cancer.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except BrokenPipeError:  # `her2-cds evaluate ... | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return result


if __name__ == "__main__":
    raise SystemExit(main())
