"""Line rules (terminology/lines.yaml): which drug classes start a new line of therapy, which
may join antibody maintenance, and what an ongoing line is called. Read by fhir_mappers.lines."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.datafiles import read_data_file
from fhir_mappers import terminology


@dataclass(frozen=True)
class LineRules:
    """Which drug classes start a new line or may join antibody maintenance (lines.yaml)."""

    version: str
    new_line_classes: frozenset[str]
    new_line_drugs: frozenset[str]
    new_partner_classes: frozenset[str]
    add_on_classes: frozenset[str]
    setting_check_days: int = 0
    # (drugs still given, name): what an ongoing line is called once its chemotherapy stopped
    maintenance_names: tuple[tuple[frozenset[str], str], ...] = ()
    # (drugs, short name) for naming endocrine therapy added to them ("HP + letrozole maintenance")
    maintenance_short: tuple[tuple[frozenset[str], str], ...] = ()


def read_line_rules(directory: Path) -> LineRules:
    """The line rules of `directory/lines.yaml`, checked against its schema (not cached)."""
    data = read_data_file(directory, "lines.yaml", terminology.TerminologyError)
    return LineRules(
        version=str(data["version"]),
        new_line_classes=frozenset(data["new_line_classes"]),
        new_line_drugs=frozenset(data["new_line_drugs"]),
        new_partner_classes=frozenset(data["new_partner_classes"]),
        add_on_classes=frozenset(data["add_on_classes"]),
        setting_check_days=int(data.get("setting_check_days", 0)),
        maintenance_names=tuple(
            (frozenset(m["drugs"]), str(m["name"])) for m in data.get("maintenance_names", [])
        ),
        maintenance_short=tuple(
            (frozenset(m["drugs"]), str(m.get("short", m["name"])))
            for m in data.get("maintenance_names", [])
        ),
    )


@lru_cache(maxsize=1)
def load_line_rules() -> LineRules:
    """The line rules of the terminology folder, validated (cached)."""
    return read_line_rules(terminology.TERMINOLOGY_DIR)
