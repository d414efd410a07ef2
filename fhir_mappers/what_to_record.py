"""What to record when a fact is missing (terminology/what_to_record.yaml), with the codes taken
from the terminology tables the mappers read, never copied into the text."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from fhir_mappers.terminology import TerminologyError, read_terminology_file

_FIELD = re.compile(r"\{(observation|condition):([^}:]+)(?::([^}]+))?\}")


def _codes(kind: str, name: str, qualifier: str | None, obs: Any, conds: Any) -> list[str]:
    if kind == "observation":
        table = obs["observations"].get(name)
        if isinstance(table, dict):
            return [c for c, method in table.items() if qualifier in (None, method)]
        return list(table) if isinstance(table, list) and qualifier is None else []
    entry = next((c for c in conds["concepts"] if c["concept"] == name), None)
    if entry is None:
        return []
    if qualifier is None:
        return list(entry.get("snomed", []))
    return [code for code, site in entry.get("sites", {}).items() if site == qualifier]


def what_to_record(
    templates: dict[str, Any], observations: dict[str, Any], conditions: dict[str, Any]
) -> dict[str, str]:
    """Each fact's text with its code fields filled from observations.yaml and conditions.yaml
    (raises TerminologyError for a field no table answers)."""

    def fill(match: re.Match[str]) -> str:
        kind, name, qualifier = match.group(1), match.group(2), match.group(3)
        found = _codes(kind, name, qualifier, observations, conditions)
        if not found:
            raise TerminologyError(f"what_to_record.yaml: no code for {match.group(0)}")
        return found[0]

    return {
        fact: _FIELD.sub(fill, " ".join(str(text).split()))
        for fact, text in templates["facts"].items()
    }


@lru_cache(maxsize=1)
def load_what_to_record() -> dict[str, str]:
    """The texts of what_to_record.yaml with their codes (cached)."""
    return what_to_record(
        read_terminology_file("what_to_record.yaml"),
        read_terminology_file("observations.yaml"),
        read_terminology_file("conditions.yaml"),
    )
