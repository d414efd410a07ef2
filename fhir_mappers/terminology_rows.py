"""The rows of the terminology tables (medications.yaml, conditions.yaml) and what matching a
FHIR concept against them returns (fhir_mappers.terminology)."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_mappers.text_match import AFFIRMED


@dataclass(frozen=True)
class MedicationEntry:
    drugs: tuple[str, ...]
    rxnorm: frozenset[str]
    snomed: frozenset[str]
    atc: frozenset[str]
    names: tuple[str, ...]
    unverified_rxnorm: frozenset[str]
    names_all: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class ConditionEntry:
    concept: str
    snomed: frozenset[str]
    icd10_prefixes: tuple[str, ...]
    text: tuple[str, ...]
    also: tuple[str, ...]
    site: str | None
    sites: dict[str, str]


@dataclass(frozen=True)
class MedicationMatch:
    """The drugs a medication names, and how we know (code or text)."""

    drugs: tuple[str, ...]
    matched_by: str  # "rxnorm", "rxnorm-unverified", "snomed", "atc", "text"


@dataclass(frozen=True)
class ConditionMatch:
    """The concepts a Condition's code names (empty: text mentions none as a fact), how its
    text asserts them (a coded match whose text negates it: "negated"), and the concepts its
    text mentions as uncertain, by name, with the text (never facts; said as data issues and,
    where the engine's knowledge says the fact would change advice, as a card)."""

    concepts: tuple[str, ...]
    site: str | None
    text_assertion: str = AFFIRMED
    # (name, the text, concept, the phrase matched) per uncertain mention
    uncertain: tuple[tuple[str, str, str, str], ...] = ()
