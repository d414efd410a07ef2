"""`her2-cds evaluate`: the patients in files and directories (Bundles, NDJSON from a bulk export,
read as `population` reads them), each through the service's patient-view pipeline.

`--json` prints one shape always: {"patients": [{"patient", "file", "cards", "outOfScope"?}],
"errors": [{"file", "error"}]}; README, "Try it on a patient".
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from cds_service.errors import Her2CdsError
from her2cds_cli.files import read_json, split_patients
from her2cds_cli.population import Task, discover

READ_ERRORS = (OSError, EOFError, ValueError, zlib.error)


class InputError(Her2CdsError):
    """A file that is not a patient record; the message is one sentence."""

    def __init__(self, message: str, file: Path) -> None:
        super().__init__(message)
        self.file = str(file)


@dataclass
class Patient:
    file: str
    patient: str
    resources: list[dict[str, Any]]
    as_of: date | None  # the snapshot date of synth's answer file, if any


def _reason(path: Path, exc: BaseException) -> str:
    if isinstance(exc, orjson.JSONDecodeError):
        return f"{path} is not valid JSON ({exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot read {path}: {exc.strerror}"
    return f"cannot read {path}: {exc}"


def _tasks(path: Path) -> list[Task]:
    if path.is_file() and path.name.endswith((".truth.json", ".truth.json.gz")):
        raise InputError(
            f"{path} is a ground-truth file written by synth, not a patient record", path
        )
    try:
        tasks = discover(path)  # population's reader: *.truth.json files are not patients
    except READ_ERRORS as exc:
        raise InputError(_reason(path, exc), path) from exc
    if not tasks and path.is_file():
        tasks = [Task(path.name, path=str(path))]  # any other name: read as a Bundle
    if not tasks:
        raise InputError(f"{path} holds no FHIR Bundles (.json, .json.gz) or NDJSON files", path)
    return tasks


def _patients_of(task: Task, where: Path) -> list[Patient]:
    as_of = (
        date.fromisoformat(task.truth["as_of"]) if task.truth and task.truth.get("as_of") else None
    )
    if task.path is None:
        data: Any = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in task.resources or []],
        }
        pid, resources = split_patients(data)[0]
        return [Patient(str(where), pid, resources, as_of)]
    file = Path(task.path)
    try:
        data = read_json(file)
    except READ_ERRORS as exc:
        raise InputError(_reason(file, exc), file) from exc
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise InputError(f"{file} is not a FHIR Bundle or resource (no resourceType)", file)
    return [Patient(str(file), pid, res, as_of) for pid, res in split_patients(data)]


def patients(paths: list[Path]) -> Iterator[Patient | InputError]:
    """Each patient of each path in order, or the InputError of a file that could not be read."""
    for path in paths:
        try:
            tasks = _tasks(path)
        except InputError as exc:
            yield exc
            continue
        for task in tasks:
            try:
                yield from _patients_of(task, path)
            except InputError as exc:
                yield exc


def evaluate(paths: list[Path], *, as_of: date | None, as_json: bool, jurisdiction: str) -> int:
    """Print the picture and cards (or the JSON answer); 2 if any input could not be read."""
    from cds_service.pipeline import patient_view
    from her2cds_cli.report import describe

    found: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for item in patients(paths):
        if isinstance(item, InputError):
            print(f"her2-cds: {item}", file=sys.stderr)
            errors.append({"file": item.file, "error": str(item)})
            continue
        name = Path(item.file).name
        result = patient_view(
            item.resources,
            instance=f"evaluate:{name}:{item.patient}",
            patient_id=item.patient,
            jurisdiction=jurisdiction,
            as_of=as_of or item.as_of,
        )
        if not as_json:
            sys.stdout.write(describe(result.assessment, result.cards, source=item.file) + "\n")
            continue
        entry: dict[str, Any] = {"patient": item.patient, "file": item.file, "cards": result.cards}
        reason = result.assessment.out_of_scope_reason
        if reason:
            entry["outOfScope"] = reason
            print(f"her2-cds: {name}: {item.patient}: {reason}", file=sys.stderr)
        found.append(entry)
    if as_json:
        payload = {"patients": found, "errors": errors}
        sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 2 if errors else 0
