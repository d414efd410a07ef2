"""`her2-cds export`: its arguments and its run (imports of the HTTP side wait until it runs)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def fhir_base(text: str) -> str:
    """argparse type of --fhir-server: an http(s) URL with a host."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL (e.g. https://ehr.example.org/fhir)"
        )
    return text


def add_parser(sub: Any) -> None:
    """Register `export` on the command's sub-parsers."""
    ex = sub.add_parser(
        "export",
        help="FHIR Bulk Data export of what the engine reads, as NDJSON for `population`",
        description="Kick off a FHIR Bulk Data $export (only the resource types and Observation "
        "codes the engine reads), wait for it, download the NDJSON into --out and delete the job. "
        "Run the same command again to continue an interrupted export.",
    )
    ex.add_argument("--fhir-server", type=fhir_base, required=True, help="FHIR base URL")
    ex.add_argument("--group", default=None, help="export this Group's patients (default: all)")
    ex.add_argument("--out", required=True, help="output directory (NDJSON per resource type)")
    ex.add_argument(
        "--restart", action="store_true", help="drop the export recorded in --out, start anew"
    )
    ex.add_argument(
        "--cancel", action="store_true", help="delete the export recorded in --out on the server"
    )
    ex.add_argument(
        "--no-type-filter",
        dest="type_filter",
        action="store_false",
        help="export every Observation (for a server that refuses _typeFilter)",
    )
    ex.add_argument(
        "--as-of",
        default=None,
        help="earliest date the data will be evaluated on (YYYY-MM-DD; default today): "
        "Observations of any code from the record-currency window before it are exported",
    )
    ex.add_argument(
        "--timeout",
        type=float,
        default=24 * 3600.0,
        help="stop waiting after SECONDS (default a day)",
    )
    auth = ex.add_argument_group("SMART Backend Services (optional)")
    auth.add_argument("--client-id", default=None, help="the client_id registered with the server")
    auth.add_argument(
        "--private-key", default=None, help="PEM private key (RSA: RS384, EC P-384: ES384)"
    )
    auth.add_argument(
        "--kid", default=None, help="key id in the JWT header (default: JWK thumbprint)"
    )
    auth.add_argument(
        "--token-url",
        default=None,
        help="token endpoint (default: from .well-known/smart-configuration)",
    )
    auth.add_argument(
        "--scope",
        default=None,
        help="scopes (default: system/<Type>.read, or .rs on SMART v2 servers)",
    )
    ex.set_defaults(func=run)


def _err(text: str) -> None:
    print(f"her2-cds export: {text}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from her2cds_cli.bulk.export import Export
    from her2cds_cli.bulk.request import export_types
    from her2cds_cli.bulk.smart import BackendAuth, default_scope, discover, load_key
    from her2cds_cli.bulk.transport import BulkError, Client

    if bool(args.client_id) != bool(args.private_key):
        _err("--client-id and --private-key go together")
        return 2
    try:
        as_of = date.fromisoformat(args.as_of) if args.as_of else None
    except ValueError:
        _err(f"--as-of {args.as_of}: not a date (YYYY-MM-DD)")
        return 2
    out = Path(args.out)
    client = Client(log=_err)
    export = Export(
        args.fhir_server,
        out,
        client,
        group=args.group,
        type_filter=args.type_filter,
        as_of=as_of,
        poll_timeout=args.timeout,
        log=_err,
    )
    try:
        if args.client_id:
            key = load_key(Path(args.private_key), args.kid)
            config = None if args.token_url else discover(client, args.fhir_server)
            token_url = args.token_url or str((config or {})["token_endpoint"])
            scope = args.scope or default_scope(export_types(), config)
            client.auth = BackendAuth(client, args.client_id, key, token_url, scope)
        if args.cancel:
            found = export.cancel()
            _err("export cancelled" if found else f"no export recorded in {out}")
            return 0 if found else 1
        job = export.run(restart=args.restart)
    except BulkError as exc:
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        _err(f"interrupted; run the same command again to continue (state in {out})")
        return 130
    data = [f for f in job.files if not f.error]
    print(
        f"her2-cds: exported {sum(f.lines for f in data)} resources in {len(data)} files "
        f"to {out}; next: her2-cds population --in {out}"
    )
    return 0
