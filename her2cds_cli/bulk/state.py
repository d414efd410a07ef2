"""The export's state file in the output directory: the job's status URL, its manifest and the
files already downloaded, so that running the same command again continues the same job.

Its name ends in neither .json nor .ndjson: `population --in DIR` reads the directory as is.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from her2cds_cli.bulk.transport import BulkError

STATE_FILE = ".bulk-export-state"
ERRORS_DIR = "errors"  # OperationOutcome files, kept out of the directory population reads


@dataclass
class FileState:
    url: str
    type: str
    name: str  # path relative to the output directory
    count: int | None = None  # lines the manifest announces
    error: bool = False  # an error[] (OperationOutcome) file
    bytes: int = 0
    lines: int = 0
    done: bool = False


@dataclass
class ExportState:
    server: str
    group: str | None
    status_url: str
    kicked_off: str
    manifest: dict[str, Any] | None = None
    files: list[FileState] = field(default_factory=list)
    complete: bool = False

    def same_request(self, server: str, group: str | None) -> bool:
        return self.server.rstrip("/") == server.rstrip("/") and self.group == group


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target, flush to disk, then rename over it (never half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(out: Path) -> ExportState | None:
    path = out / STATE_FILE
    if not path.exists():
        return None
    try:
        raw = orjson.loads(path.read_bytes())
        files = [FileState(**f) for f in raw.pop("files", [])]
        return ExportState(**raw, files=files)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise BulkError(
            f"{path} is not an export state file ({exc}); remove it or use --restart."
        ) from exc


def save(out: Path, state: ExportState) -> None:
    write_atomic(out / STATE_FILE, orjson.dumps(asdict(state), option=orjson.OPT_INDENT_2))


def remove(out: Path, state: ExportState | None) -> None:
    """Forget a job: its downloaded and partial files, then the state file."""
    for f in state.files if state else []:
        for p in (out / f.name, out / (f.name + ".part")):
            p.unlink(missing_ok=True)
    (out / STATE_FILE).unlink(missing_ok=True)
