"""FHIR codings reduced to the keys the terminology lookups are memoized on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CodingKey = tuple[tuple[str | None, str | None], ...]


@dataclass(frozen=True)
class CodeSets:
    """The codes of one CodeableConcept, as `coding_codes` reads them: all, LOINC, SNOMED CT."""

    codes: frozenset[str]
    loinc: frozenset[str]
    snomed: frozenset[str]


def coding_key(concept: Any) -> CodingKey:
    """(system, code) of each coding of a CodeableConcept, reduced to what the lookups read:
    a system that is not a string is no system, a code is its text (None when empty), so equal
    keys always give equal answers (1 and True are equal keys in Python, "1" and "True" not)."""
    if not isinstance(concept, dict):
        return ()
    coding = concept.get("coding")
    if coding is None:
        return ()
    if not isinstance(coding, list):
        coding = [coding]
    elif len(coding) == 1 and type(coding[0]) is dict:  # the common case, without the loop
        system, code = coding[0].get("system"), coding[0].get("code")
        if type(system) is str and type(code) is str:
            return ((system, code),)
    key: list[tuple[str | None, str | None]] = []
    for c in coding:
        if isinstance(c, dict):
            system, code = c.get("system"), c.get("code")
            key.append(
                (
                    system if isinstance(system, str) else None,
                    code if isinstance(code, str) else (str(code) if code else None),
                )
            )
    return tuple(key)


MedicationCodings = tuple[tuple[str | None, str, str | None], ...]


def medication_key(concept: dict[str, Any]) -> tuple[str | None, MedicationCodings]:
    """What matching a medication concept reads: its text, and each coding's system (None when
    not a string), code as text (as `str(code)` reads it) and display (None when not a string)."""
    text = concept.get("text")
    coding = concept.get("coding")
    if type(coding) is list and len(coding) == 1 and type(coding[0]) is dict:
        # the common case (one coding, all strings) without the general loop
        one = coding[0]
        system, code, display = one.get("system"), one.get("code", ""), one.get("display")
        if (
            type(system) is str
            and type(code) is str
            and (display is None or type(display) is str)
            and (text is None or type(text) is str)
        ):
            return (text, ((system, code, display),))
    if coding is None:
        items: list[Any] = []
    else:
        items = coding if isinstance(coding, list) else [coding]
    codings: list[tuple[str | None, str, str | None]] = []
    for c in items:
        if isinstance(c, dict):
            system, code, display = c.get("system"), c.get("code", ""), c.get("display")
            codings.append(
                (
                    system if isinstance(system, str) else None,
                    code if isinstance(code, str) else str(code),
                    display if isinstance(display, str) else None,
                )
            )
    return (text if isinstance(text, str) else None, tuple(codings))
