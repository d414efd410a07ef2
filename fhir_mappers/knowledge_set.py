"""The one knowledge set: the engine's knowledge base, the terminology tables, the line
rules and the data-needed cards' "what to record" texts, each file validated by its schema (engine.datafiles), versioned together.

`version` is the knowledge base's release (engine/knowledge/index.yaml) plus "+" and a digest
over every advice file of engine/knowledge/ and fhir_mappers/terminology/ (lines.yaml
included), so discovery, readiness and every card's knowledgeVersion change whenever any of
them changes. The Knowledge inside carries that same version.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from engine import knowledge as engine_knowledge
from engine.datafiles import digest, read_data_file, yaml_files
from engine.knowledge import Knowledge, KnowledgeError
from fhir_mappers import terminology as term_module
from fhir_mappers.line_rules import LineRules, load_line_rules
from fhir_mappers.terminology import Terminology, load_terminology
from fhir_mappers.what_to_record import load_what_to_record


@dataclass(frozen=True)
class KnowledgeSet:
    """Everything that changes advice, loaded and checked once, under one version."""

    knowledge: Knowledge
    terminology: Terminology
    line_rules: LineRules
    # data-needed cards' "what to record" texts, codes filled in (terminology/what_to_record.yaml)
    what_to_record: dict[str, str]
    version: str


def knowledge_set_version() -> str:
    """ "<release>+<digest>" over the knowledge and terminology folders (read as bytes)."""
    folders = (engine_knowledge.KNOWLEDGE_DIR, term_module.TERMINOLOGY_DIR)
    index = read_data_file(folders[0], "index.yaml", KnowledgeError)
    return f"{index['version']}+{digest(yaml_files(folders), KnowledgeError)}"


@lru_cache(maxsize=1)
def load_knowledge_set() -> KnowledgeSet:
    """Load and validate the whole set (cached); raises a DataFileError naming the bad file.
    Composition roots (create_app, the command line, tests) call this and pass it on."""
    version = knowledge_set_version()
    return KnowledgeSet(
        knowledge=replace(engine_knowledge.load_knowledge(), version=version),
        terminology=load_terminology(),
        line_rules=load_line_rules(),
        what_to_record=load_what_to_record(),
        version=version,
    )


def clear_caches() -> None:
    """Forget every loaded file (tests that load from a copy of the folders)."""
    for cached in (
        load_knowledge_set,
        engine_knowledge.load_knowledge,
        load_terminology,
        load_line_rules,
        load_what_to_record,
        term_module._system_aliases,
    ):
        cached.cache_clear()
