"""Terminology tables (data files under fhir_mappers/terminology/) and matching against them.

A medication or condition is matched by code first (RxNorm, SNOMED, ATC, ICD-10-CM), then by
normalised text, so records coded only by text, or by product codes no table knows, still match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

from engine.code_systems import ICD10_CM, LOINC, RXNORM, SNOMED
from engine.datafiles import DataFileError, read_data_file
from fhir_mappers.codings import CodeSets, CodingKey, MedicationCodings, coding_key, medication_key
from fhir_mappers.terminology_rows import ConditionEntry, ConditionMatch, MedicationEntry
from fhir_mappers.terminology_rows import MedicationMatch as MedicationMatch  # re-exported
from fhir_mappers.text_match import AFFIRMED, NEGATED, ConditionText, MedicationText, NegationRules
from fhir_mappers.text_match import normalise_text as normalise_text  # re-exported

TERMINOLOGY_DIR = Path(__file__).parent / "terminology"

ATC_SYSTEMS = ("http://www.whocc.no/atc", "http://www.whocc.no/atc/")
_SYSTEM_KEYS = {RXNORM: "rxnorm", SNOMED: "snomed", ATC_SYSTEMS[0]: "atc"}
ICD10_SYSTEMS = (ICD10_CM, "http://hl7.org/fhir/sid/icd-10")


class TerminologyError(DataFileError):
    """A terminology file is missing or does not match its schema."""


@lru_cache(maxsize=1)
def _system_aliases() -> dict[str, str]:
    data = _read("systems.yaml")
    aliases: dict[str, str] = {}
    for canonical, names in data["systems"].items():
        aliases[canonical] = canonical
        for name in names:
            aliases[name] = canonical
            aliases[name.lower()] = canonical
    return aliases


def canonical_system(system: Any) -> str:
    """The canonical FHIR URI of a code system sent as an OID, with a trailing slash, etc."""
    if not isinstance(system, str):
        return ""
    aliases = _system_aliases()
    return aliases.get(system) or aliases.get(system.strip().lower()) or system


MEMO_SIZE = 4096
T = TypeVar("T")
_NOT_SEEN = object()


def _code_sets(key: CodingKey) -> CodeSets:
    codes: set[str] = set()
    loinc: set[str] = set()
    snomed: set[str] = set()
    for system, code in key:
        if not code:
            continue
        codes.add(code)
        canonical = canonical_system(system)
        if canonical == LOINC:
            loinc.add(code)
        elif canonical == SNOMED:
            snomed.add(code)
    return CodeSets(frozenset(codes), frozenset(loinc), frozenset(snomed))


@dataclass(frozen=True)
class Terminology:
    version: str
    medications: tuple[MedicationEntry, ...]
    conditions: tuple[ConditionEntry, ...]
    observations: dict[str, Any]
    negation: NegationRules
    normalise_max_chars: int = 65536

    @property
    def method_rank(self) -> dict[str, int]:
        """Receptor result methods, most specific highest (observations.yaml method_rank)."""
        return {str(k): int(v) for k, v in self.observations["method_rank"].items()}

    _condition_index: dict[str, int] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    _code_index: dict[tuple[str, str], tuple[int, str]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    # Memos of lookups that depend only on these tables and on the codes they are keyed by
    # (bounded: real records repeat a few hundred codings at most). Not init fields, so a
    # dataclasses.replace() copy with other tables starts with empty memos of its own.
    _text_cache: dict[str, tuple[str, ...] | None] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )
    _code_memo: dict[tuple[tuple[str | None, str | None], ...], CodeSets] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )
    _derived: dict[str, Any] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )
    _medication_memo: dict[tuple[str | None, MedicationCodings], MedicationMatch | None] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )

    # -- memos -----------------------------------------------------------------------------------
    def code_sets(self, concept: Any) -> CodeSets:
        """The codes of a CodeableConcept: all, LOINC and SNOMED CT (memoized on the codings)."""
        key = coding_key(concept)
        found = self._code_memo.get(key)
        if found is None:
            found = _code_sets(key)
            if len(self._code_memo) < MEMO_SIZE:
                self._code_memo[key] = found
        return found

    def derived(self, name: str, build: Callable[[Terminology], T]) -> T:
        """A table derived from this terminology, built once (`name` is a constant per caller)."""
        found = self._derived.get(name)
        if found is None:
            found = self._derived[name] = build(self)
        return cast(T, found)

    # -- medications ---------------------------------------------------------------------------
    def match_medication(self, concept: dict[str, Any] | None) -> MedicationMatch | None:
        """Match a CodeableConcept (R4 medicationCodeableConcept or R5 medication.concept).

        Codes first, in table order (conjugates and Phesgo before plain trastuzumab). A code the
        table marks unverified only decides when the text does not name a different drug.
        """
        if not isinstance(concept, dict):
            return None
        key = medication_key(concept)
        found = self._medication_memo.get(key, _NOT_SEEN)
        if found is _NOT_SEEN:
            found = self._match_medication(*key)
            if len(self._medication_memo) < MEMO_SIZE:
                self._medication_memo[key] = found
        return cast(MedicationMatch | None, found)

    def _match_medication(
        self, text: str | None, codings: MedicationCodings
    ) -> MedicationMatch | None:
        by_code = self._match_codes(codings) if codings else None
        if by_code is not None and by_code.matched_by != "rxnorm-unverified":
            return by_code
        for raw in (text, *(display for _, _, display in codings)):
            if raw is not None and raw.strip():
                found = self.match_medication_text(raw)
                if found:
                    if by_code is not None and found == by_code.drugs:
                        return by_code
                    return MedicationMatch(found, "text")
        return by_code

    def _match_codes(self, codings: MedicationCodings) -> MedicationMatch | None:
        """The first table entry (in table order) any coding names: one dict lookup per coding."""
        best: tuple[int, str] | None = None
        for raw_system, code, _ in codings:
            system = _SYSTEM_KEYS.get(canonical_system(raw_system))
            if system is None:
                continue
            hit = self._code_index.get((system, code.upper() if system == "atc" else code))
            if hit is not None and (best is None or hit[0] < best[0]):
                best = hit
        if best is None:
            return None
        return MedicationMatch(self.medications[best[0]].drugs, best[1])

    def match_medication_text(self, text: str) -> tuple[str, ...] | None:
        """The drugs a free text names, negated and uncertain names left out (cached: real
        records repeat the same few texts). One pass over the text, whatever its length."""
        if text in self._text_cache:
            return self._text_cache[text]
        found = self.derived("medications.text", _medication_text).match(text)
        if len(self._text_cache) < MEMO_SIZE:
            self._text_cache[text] = found
        return found

    def unverified_codes(self) -> dict[str, tuple[str, ...]]:
        """RxNorm codes still marked unverified, per drug entry (for review and tests)."""
        return {
            " + ".join(e.drugs): tuple(sorted(e.unverified_rxnorm))
            for e in self.medications
            if e.unverified_rxnorm
        }

    # -- conditions ----------------------------------------------------------------------------
    def match_condition(self, concept: dict[str, Any] | None) -> ConditionMatch | None:
        if not isinstance(concept, dict):
            return None
        codings = [c for c in _as_list(concept.get("coding")) if isinstance(c, dict)]
        best: tuple[int, str] | None = None  # (table position, code): table order decides
        for c in codings:
            code, system = str(c.get("code", "")), canonical_system(c.get("system"))
            if system == SNOMED:
                pos = self._condition_index.get(code)
            elif system in ICD10_SYSTEMS:
                upper = code.upper()
                pos = next(
                    (
                        i
                        for i, e in enumerate(self.conditions)
                        if any(upper.startswith(p) for p in e.icd10_prefixes)
                    ),
                    None,
                )
            else:
                continue
            if pos is not None and (best is None or pos < best[0]):
                best = (pos, code)
        texts = [
            raw
            for raw in [concept.get("text")] + [c.get("display") for c in codings]
            if isinstance(raw, str) and raw.strip()
        ]
        reader = self.derived("conditions.text", _condition_text)
        if best is not None:
            entry, code = self.conditions[best[0]], best[1]
            site = entry.sites.get(code, entry.site) if code in entry.snomed else None
            if site is None and code not in entry.snomed:
                site = _icd_site(code, entry)
            _, dropped = reader.match(texts)
            how = next((m.assertion for i, m in dropped if i == best[0]), AFFIRMED)
            return ConditionMatch((entry.concept, *entry.also), site, text_assertion=how)
        if any(c.get("code") for c in codings) and _all_codes_known_elsewhere(codings):
            return None
        pos, dropped = reader.match(texts)
        uncertain = tuple(
            (
                _label(self.conditions[i]),
                texts[0] if texts else m.phrase,
                self.conditions[i].concept,
                m.phrase,
            )
            for i, m in dropped
            if m.assertion != NEGATED and (pos is None or i != pos)
        )
        if pos is None:
            return ConditionMatch((), None, uncertain=uncertain) if uncertain else None
        entry = self.conditions[pos]
        return ConditionMatch((entry.concept, *entry.also), entry.site, uncertain=uncertain)

    # -- observations --------------------------------------------------------------------------
    def loinc_codes(self, concept: dict[str, Any] | None) -> set[str]:
        if not isinstance(concept, dict):
            return set()
        return {
            str(c.get("code"))
            for c in _as_list(concept.get("coding"))
            if isinstance(c, dict) and canonical_system(c.get("system")) == LOINC and c.get("code")
        }


def _label(entry: ConditionEntry) -> str:
    """How a concept is named in a message: its first text phrase ("interstitial lung disease")."""
    return entry.text[0] if entry.text else entry.concept


def _icd_site(code: str, entry: ConditionEntry) -> str | None:
    c = code.upper()
    if c.startswith("C79.3"):
        return "brain"
    if c.startswith("C78.0"):
        return "lung"
    if c.startswith("C78.7"):
        return "liver"
    if c.startswith("C79.5"):
        return "bone"
    return entry.site


def _all_codes_known_elsewhere(codings: list[dict[str, Any]]) -> bool:
    """A Condition coded in SNOMED/ICD-10 that matched nothing is not text-matched.

    Free text on a coded, unrelated condition ("Otitis media") must not be read for phrases;
    text is the fallback for records that carry no standard code.
    """
    return any(canonical_system(c.get("system")) in (SNOMED, *ICD10_SYSTEMS) for c in codings)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def read_terminology_file(name: str) -> dict[str, Any]:
    """One terminology YAML file, checked against its JSON Schema (engine.datafiles)."""
    return read_data_file(TERMINOLOGY_DIR, name, TerminologyError)


_read = read_terminology_file


def _medication_text(term: Terminology) -> MedicationText:
    return MedicationText.of(
        ((m.drugs, m.names, m.names_all) for m in term.medications),
        term.negation,
        term.normalise_max_chars,
    )


def _condition_text(term: Terminology) -> ConditionText:
    return ConditionText.of((c.text for c in term.conditions), term.negation)


@lru_cache(maxsize=1)
def load_terminology() -> Terminology:
    """Load and validate the terminology tables (cached), with the system aliases (so a broken
    file fails at start-up, not on the first request that needs it; fhir_mappers.knowledge_set
    loads the line rules beside them)."""
    _system_aliases()
    _read("dose_text.yaml")  # read by fhir_mappers/dose_text.py; checked here at start-up
    meds = _read("medications.yaml")
    conds = _read("conditions.yaml")
    obs = _read("observations.yaml")
    medications = tuple(
        MedicationEntry(
            drugs=tuple(m["drugs"]),
            rxnorm=frozenset(m.get("rxnorm", [])),
            snomed=frozenset(m.get("snomed", [])),
            atc=frozenset(a.upper() for a in m.get("atc", [])),
            names=tuple(sorted((n.lower() for n in m["names"]), key=len, reverse=True)),
            unverified_rxnorm=frozenset(m.get("unverified_rxnorm", [])),
            names_all=tuple(tuple(n.lower() for n in g) for g in m.get("names_all", [])),
        )
        for m in meds["medications"]
    )
    conditions = tuple(
        ConditionEntry(
            concept=c["concept"],
            snomed=frozenset(c.get("snomed", [])),
            icd10_prefixes=tuple(p.upper() for p in c.get("icd10_prefixes", [])),
            text=tuple(t.lower() for t in c.get("text", [])),
            also=tuple(c.get("also", [])),
            site=c.get("site"),
            sites=dict(c.get("sites", {})),
        )
        for c in conds["concepts"]
    )
    index: dict[tuple[str, str], tuple[int, str]] = {}
    for i, m in enumerate(medications):
        for code in m.rxnorm:
            how = "rxnorm-unverified" if code in m.unverified_rxnorm else "rxnorm"
            index.setdefault(("rxnorm", code), (i, how))
        for code in m.snomed:
            index.setdefault(("snomed", code), (i, "snomed"))
        for code in m.atc:
            index.setdefault(("atc", code), (i, "atc"))
    return Terminology(
        version=str(meds["version"]),
        medications=medications,
        conditions=conditions,
        observations=obs,
        negation=NegationRules.of(_read("negation.yaml")),
        normalise_max_chars=int(meds.get("normalise_max_chars", 65536)),
        _code_index=index,
        _condition_index={
            code: i for i, c in reversed(list(enumerate(conditions))) for code in c.snomed
        },
    )
