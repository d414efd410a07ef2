"""A receptor Observation's result as mCODE writes it: value, interpretation, IHC score, ratio.

CLINICAL.md section 1 ("mCODE shapes"): a result may be a coded or text value, an
`interpretation` (SNOMED 10828004 / 260385009, v3 POS / NEG) beside a value such as LA9633-4
"Present", or a numeric IHC score (`valueQuantity`). A HER2/CEP17 ratio (49683-6) is read only
through its interpretation; a bare ratio is equivocal, so a card asks for the ISH reading. A value
and an interpretation that disagree are not guessed between.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.model import ReceptorStatus
from fhir_mappers.resources import as_list, concept_text
from fhir_mappers.terminology import Terminology

_DEFINITIVE = (ReceptorStatus.POSITIVE, ReceptorStatus.NEGATIVE)
Answer = Callable[[Any], ReceptorStatus]


@dataclass(frozen=True)
class Reading:
    """What one receptor Observation says, by which method, shown how; `issue` is said."""

    status: ReceptorStatus
    method: str
    display: str
    issue: str | None = None


@dataclass(frozen=True)
class _Codes:
    v3_systems: frozenset[str]
    v3: tuple[tuple[ReceptorStatus, frozenset[str]], ...]
    ihc: dict[str, ReceptorStatus]

    @classmethod
    def of(cls, term: Terminology) -> _Codes:
        spec = term.observations
        answers = spec["answers"]
        return cls(
            v3_systems=frozenset(spec.get("v3_interpretation_systems", [])),
            v3=tuple(
                (ReceptorStatus(s), frozenset(answers[s].get("v3", [])))
                for s in ("positive", "equivocal", "negative")
            ),
            ihc={k: ReceptorStatus(v) for k, v in spec.get("ihc_scores", {}).items()},
        )


def _number(obs: dict[str, Any]) -> float | None:
    q = obs.get("valueQuantity")
    raw = q.get("value") if isinstance(q, dict) else obs.get("valueInteger")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return float(raw)


def _interpretation(
    obs: dict[str, Any], k: _Codes, answer: Answer
) -> tuple[ReceptorStatus, str, bool]:
    """(status, its text, whether interpretations disagree) from Observation.interpretation."""
    found: dict[ReceptorStatus, str] = {}
    for concept in as_list(obs.get("interpretation")):
        if not isinstance(concept, dict):
            continue
        status = ReceptorStatus.UNKNOWN
        for c in as_list(concept.get("coding")):
            if isinstance(c, dict) and c.get("system") in k.v3_systems:
                status = next((s for s, codes in k.v3 if c.get("code") in codes), status)
        if status is ReceptorStatus.UNKNOWN:
            status = answer(concept)
        if status is not ReceptorStatus.UNKNOWN:
            text = concept_text(concept) or status.value
            found.setdefault(status, text)
    if len(found) > 1:
        return ReceptorStatus.UNKNOWN, " / ".join(found.values()), True
    if found:
        ((status, text),) = found.items()
        return status, text, False
    return ReceptorStatus.UNKNOWN, "", False


def _score(number: float, k: _Codes) -> ReceptorStatus:
    if number != int(number):
        return ReceptorStatus.UNKNOWN
    return k.ihc.get(str(int(number)), ReceptorStatus.UNKNOWN)


def read_receptor(obs: dict[str, Any], method: str, term: Terminology, answer: Answer) -> Reading:
    """Read one receptor Observation; UNKNOWN with an issue when it cannot be read safely."""
    k = term.derived("receptor_values.codes", _Codes.of)
    value = obs.get("valueCodeableConcept", obs.get("valueString"))
    display = (
        concept_text(value) if isinstance(value, dict) else ("" if value is None else str(value))
    )
    status = answer(value) if value is not None else ReceptorStatus.UNKNOWN
    number = _number(obs) if value is None else None
    interp, interp_text, clash = _interpretation(obs, k, answer)
    if clash:
        return Reading(
            ReceptorStatus.UNKNOWN,
            method,
            display,
            f"interpretations disagree ({interp_text}): not read",
        )
    if number is not None and method == "ihc":
        status = _score(number, k)
        display = f"IHC {number:g}+" if status is not ReceptorStatus.UNKNOWN else f"IHC {number:g}"
        if status is ReceptorStatus.UNKNOWN:
            return Reading(status, method, display, f"IHC score {number:g} is not a score of 0-3")
    if status in _DEFINITIVE and interp in _DEFINITIVE and status is not interp:
        return Reading(
            ReceptorStatus.UNKNOWN,
            method,
            display,
            f"value {display!r} and interpretation {interp_text!r} disagree: not read; confirm",
        )
    if status is ReceptorStatus.UNKNOWN and interp is not ReceptorStatus.UNKNOWN:
        shown = display or (f"ratio {number:g}" if number is not None else "")
        label = f"{shown} (interpretation: {interp_text})" if shown else interp_text
        return Reading(interp, "ish" if method == "ratio" else method, label)
    if method == "ratio":
        if status is ReceptorStatus.UNKNOWN and number is not None:
            return Reading(
                ReceptorStatus.EQUIVOCAL,
                method,
                f"HER2/CEP17 ratio {number:g}",
                f"/CEP17 ratio {number:g} without an interpretation (copy numbers are not "
                "read): read as equivocal; the ISH interpretation is needed",
            )
        if status is not ReceptorStatus.UNKNOWN:
            return Reading(status, "ish", display)
    return Reading(status, method, display)
