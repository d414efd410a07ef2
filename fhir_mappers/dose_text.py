"""Doses written as text ("6.4 mg/kg IV every 3 weeks", "T-DM1 3,6 mg/kg"): a number and a unit.

Spellings, decimal marks and the bound on values are data (terminology/dose_text.yaml). No
negation: a dose is a number followed by a unit wherever it stands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from fhir_mappers.terminology import read_terminology_file

# a thousands group ("1,250") first, then a plain number with an optional decimal part
_NUMBER = r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[MARKS]\d+)?)"
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


@dataclass(frozen=True)
class Dose:
    value: float
    unit: str  # canonical: mg/kg, mg/m2, mg


@dataclass(frozen=True)
class DoseRules:
    pattern: re.Pattern[str]
    spellings: dict[str, str]  # normalised spelling -> canonical unit
    max_value: float


def _spelling_regex(spelling: str) -> str:
    parts = [re.escape(p) for p in re.split(r"\s+", spelling.strip())]
    return r"\s*/\s*".join(r"\s+".join(parts).split("/"))


def _norm(unit: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\s*/\s*", "/", unit.strip().lower()))


@lru_cache(maxsize=1)
def load_dose_rules() -> DoseRules:
    """The dose spellings of dose_text.yaml, checked against its schema."""
    data = read_terminology_file("dose_text.yaml")
    spellings = {_norm(s): unit for unit, names in data["units"].items() for s in names}
    alternatives = sorted(spellings, key=len, reverse=True)  # the longest spelling wins
    units = "|".join(_spelling_regex(s) for s in alternatives)
    marks = "".join(re.escape(m) for m in data["decimal_marks"])
    pattern = re.compile(
        r"(?<![\w.,/-])"
        + _NUMBER.replace("MARKS", marks)
        + r"\s*(?P<unit>"
        + units
        + r")(?![\w²^/])",
        re.IGNORECASE,
    )
    return DoseRules(pattern, spellings, float(data["max_value"]))


def _value(number: str) -> float:
    if _THOUSANDS.fullmatch(number):
        return float(number.replace(",", ""))
    return float(number.replace(",", "."))


def read_doses(text: str, units: frozenset[str] | None = None) -> tuple[Dose, ...]:
    """Every distinct dose the text writes, in order; only `units` when given."""
    rules = load_dose_rules()
    out: list[Dose] = []
    for m in rules.pattern.finditer(text):
        unit = rules.spellings.get(_norm(m.group("unit")))
        value = _value(m.group("num"))
        if unit is None or value > rules.max_value or (units is not None and unit not in units):
            continue
        dose = Dose(value, unit)
        if dose not in out:
            out.append(dose)
    return tuple(out)


def canonical_unit(unit: str) -> str:
    """A structured dose's unit in canonical form ("mg/kg{body_weight}" -> "mg/kg")."""
    return load_dose_rules().spellings.get(_norm(unit), _norm(unit))
