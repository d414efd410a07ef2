"""Pregnancy from Observations: a positive pregnancy status (82810-3) or hCG test (2106-3, 2118-8).

Pregnancy Conditions are read with the other Conditions (terminology concept "pregnancy"); this
module reads the tests and gives each positive result, not overturned by a later negative one,
as a "pregnancy" fact. Whether it is recent enough to count is the engine's rule.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from engine.model import ConditionFact, DataIssue
from fhir_mappers.observations import effective_date
from fhir_mappers.resources import concept_text, ref_id
from fhir_mappers.terminology import Terminology

_EXCLUDED_STATUS = frozenset({"entered-in-error", "cancelled", "registered"})
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _words(text: str) -> str:
    return " " + _NON_WORD.sub(" ", text.lower()).strip() + " "


def _reading(value: Any, term: Terminology) -> str | None:
    """'positive', 'negative' or None (unknown, unreadable, or both named)."""
    values = term.observations["pregnancy_values"]
    if isinstance(value, dict):
        sets = term.code_sets(value)
        for status in ("negative", "positive"):
            spec = values[status]
            if sets.snomed & set(spec.get("snomed", [])) or sets.loinc & set(spec.get("loinc", [])):
                return status
        text = concept_text(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    norm = _words(text)
    found: set[str] = set()
    for status in ("negative", "positive"):  # "not pregnant" is consumed before "pregnant"
        for phrase in sorted(values[status].get("text", []), key=len, reverse=True):
            p = _words(phrase)
            if p in norm:
                found.add(status)
                norm = norm.replace(p, " ")
    return found.pop() if len(found) == 1 else None


def _one(
    obs: dict[str, Any], codes: dict[str, str], term: Terminology
) -> tuple[date | None, str | None, str, str] | None:
    """(date, reading, id, display) of a pregnancy test; None when it is not one."""
    if obs.get("status") in _EXCLUDED_STATUS:
        return None
    loinc = term.loinc_codes(obs.get("code"))
    if loinc.isdisjoint(codes):
        return None
    reading = _reading(obs.get("valueCodeableConcept", obs.get("valueString")), term)
    name = "hCG test" if any(codes[c] == "hcg" for c in loinc if c in codes) else "status"
    return effective_date(obs), reading, ref_id(obs), f"pregnancy {name}: {reading}"


def pregnancy_tests(
    observations: list[dict[str, Any]], term: Terminology, issues: list[DataIssue]
) -> list[ConditionFact]:
    """Positive pregnancy tests as facts; a later negative test overturns an earlier positive."""
    codes = term.observations["observations"]["pregnancy"]
    results: list[tuple[date | None, str, str, str]] = []  # (date, reading, id, display)
    for obs in observations:
        try:
            found = _one(obs, codes, term)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            issues.append(DataIssue(ref_id(obs), f"pregnancy test could not be read: {exc}"))
            continue
        if found is None:
            continue
        if found[1] is None:
            issues.append(DataIssue(found[2], "pregnancy test or status has no readable result"))
            continue
        results.append((found[0], found[1], found[2], found[3]))
    negatives = [d for d, r, _, _ in results if r == "negative" and d is not None]
    last_negative = max(negatives, default=None)
    return [
        ConditionFact("pregnancy", display, when, True, sid)
        for when, reading, sid, display in results
        if reading == "positive" and (last_negative is None or when is None or when > last_negative)
    ]
