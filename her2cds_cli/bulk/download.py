"""Downloading the manifest's files: streamed to disk, written atomically, lines checked against
the manifest's `count`; the error[] files summarized."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import requests

from her2cds_cli.bulk.request import NDJSON
from her2cds_cli.bulk.state import ERRORS_DIR, FileState
from her2cds_cli.bulk.transport import BulkError, Client, GoneError, describe

CHUNK = 1 << 20
_LINE_END = re.compile(rb"[^\n]\n")  # a newline that ends a non-empty line


def plan(manifest: dict[str, Any]) -> list[FileState]:
    """A local name per manifest entry: <Type>.ndjson, then <Type>-2.ndjson, ...; error files
    under errors/ (population would read OperationOutcomes as resources)."""
    seen: Counter[str] = Counter()
    files: list[FileState] = []
    for key, is_error in (("output", False), ("error", True)):
        for entry in manifest.get(key) or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                raise BulkError(f"the manifest has an {key} entry without a url: {entry!r}.")
            rtype = str(entry.get("type") or ("OperationOutcome" if is_error else "Resource"))
            if not rtype.isalnum():
                raise BulkError(f"the manifest names a file of type {rtype!r}.")
            stem = f"{ERRORS_DIR}/{rtype}" if is_error else rtype
            seen[stem] += 1
            name = f"{stem}.ndjson" if seen[stem] == 1 else f"{stem}-{seen[stem]}.ndjson"
            count = entry.get("count")
            files.append(
                FileState(
                    url=entry["url"],
                    type=rtype,
                    name=name,
                    count=count if isinstance(count, int) else None,
                    error=is_error,
                )
            )
    return files


def is_complete(out: Path, f: FileState) -> bool:
    path = out / f.name
    return f.done and path.exists() and path.stat().st_size == f.bytes


def fetch(client: Client, out: Path, f: FileState, *, token: bool) -> None:
    """Download one file to <name>.part, check it, rename it into place; fills f's counters."""
    target = out / f.name
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(client.timing.attempts):
        resp = client.request(
            "GET",
            f.url,
            f"download of {f.name}",
            headers={"Accept": NDJSON},
            token=token,
            stream=True,
        )
        with resp:
            _check(resp, f, token)
            try:
                size, lines = _stream(resp, part)
                break
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                part.unlink(missing_ok=True)
                if attempt + 1 >= client.timing.attempts:
                    raise BulkError(f"download of {f.name} broke off: {exc}.") from exc
                client.log(f"download of {f.name} broke off; starting it again")
                client.timing.sleep(client.timing.backoff(attempt))
    if f.count is not None and lines != f.count:
        part.unlink(missing_ok=True)
        raise BulkError(
            f"{f.name} from {f.url} has {lines} resources where the manifest says {f.count}."
        )
    os.replace(part, target)
    f.bytes, f.lines, f.done = size, lines, True


def _check(resp: requests.Response, f: FileState, token: bool) -> None:
    if resp.status_code == 200:
        return
    if resp.status_code in (404, 410):
        raise GoneError(
            f"the file {f.url} is no longer on the server (HTTP {resp.status_code}): the export "
            "has expired; run the same command with --restart for a fresh export."
        )
    hint = ""
    if resp.status_code in (401, 403) and not token:
        hint = " (the server may want an access token: give --client-id and --private-key)"
    raise BulkError(describe(resp, f"download of {f.name}").rstrip(".") + hint + ".")


class LineCounter:
    """Non-empty lines of a byte stream fed in chunks (a line may span two chunks)."""

    def __init__(self) -> None:
        self.lines = 0
        self._last = b"\n"

    def feed(self, chunk: bytes) -> None:
        if chunk:
            self.lines += len(_LINE_END.findall(self._last + chunk))
            self._last = chunk[-1:]

    @property
    def open_line(self) -> bool:
        """The stream so far ends inside a line (no newline after it yet)."""
        return self._last != b"\n"


def _stream(resp: requests.Response, part: Path) -> tuple[int, int]:
    """Write the body to `part` in chunks; (bytes, non-empty lines)."""
    size = 0
    counter = LineCounter()
    with part.open("wb") as fh:
        for chunk in resp.iter_content(CHUNK):
            fh.write(chunk)
            size += len(chunk)
            counter.feed(chunk)
        if counter.open_line:
            fh.write(b"\n")  # a last line without its newline still ends in one on disk
            size += 1
            counter.feed(b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    return size, counter.lines


def summarize_errors(out: Path, files: list[FileState]) -> list[str]:
    """One line per error file: how many issues of which severity, and the first diagnostics."""
    lines: list[str] = []
    for f in (f for f in files if f.error and f.done):
        severities: Counter[str] = Counter()
        first: list[str] = []
        for raw in (out / f.name).read_bytes().splitlines():
            if not raw.strip():
                continue
            try:
                outcome = orjson.loads(raw)
            except orjson.JSONDecodeError:
                severities["unreadable"] += 1
                continue
            for issue in outcome.get("issue") or [] if isinstance(outcome, dict) else []:
                if not isinstance(issue, dict):
                    continue
                severities[str(issue.get("severity") or "unknown")] += 1
                text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
                if text and len(first) < 3 and text not in first:
                    first.append(str(text))
        counts = ", ".join(f"{n} {s}" for s, n in severities.most_common())
        said = "; ".join(first)
        lines.append(f"{f.name}: {counts or 'no issues'}" + (f" (first: {said})" if said else ""))
    return lines
