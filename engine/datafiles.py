"""The one reader of the house's data files: a YAML file checked against its JSON Schema, and
the digest that versions a set of files together.

Knowledge (engine/knowledge/), terminology and line rules (fhir_mappers/terminology/) are all
read here; each folder keeps its schemas in `schemas/<name>.schema.json`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class DataFileError(Exception):
    """A data file is missing, malformed, fails its schema or is inconsistent."""


def read_data_file(
    directory: Path, name: str, error: type[DataFileError] = DataFileError
) -> dict[str, Any]:
    """`directory/name` parsed and validated against `directory/schemas/<stem>.schema.json`;
    raises `error` (a DataFileError) naming the file and, for a schema failure, the path."""
    path = directory / name
    schema_path = directory / "schemas" / (Path(name).stem + ".schema.json")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise error(f"cannot read data file {name}: {exc}") from exc
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise error(f"{name}: {where}: {exc.message}") from exc
    if not isinstance(data, dict):
        raise error(f"{name}: not a mapping")
    return data


def yaml_files(directories: Iterable[Path]) -> list[Path]:
    """The YAML files of each folder, sorted by name within it, folders in the order given."""
    return [path for d in directories for path in sorted(d.glob("*.yaml"))]


def digest(files: Sequence[Path], error: type[DataFileError] = DataFileError) -> str:
    """The first 8 hex digits of a SHA-256 over the files' names and bytes, in the order given:
    it changes whenever any of the files changes, even if nobody bumps a `version:`."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0")
        try:
            h.update(path.read_bytes())
        except OSError as exc:
            raise error(f"cannot read data file {path.name}: {exc}") from exc
        h.update(b"\0")
    return h.hexdigest()[:8]
