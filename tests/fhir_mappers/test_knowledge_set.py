"""Issue 21: one knowledge set (knowledge, terminology, line rules) loaded by one loader,
versioned together in knowledgeVersion, attached to the app and passed to what decides."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cds_service import create_app, pipeline
from cds_service.state import service_state
from engine import knowledge
from engine.datafiles import DataFileError
from engine.knowledge import load_knowledge
from fhir_mappers import KnowledgeSet, build_record, load_knowledge_set
from fhir_mappers import terminology as term_module
from fhir_mappers.knowledge_set import clear_caches
from tests import builders as b
from tests.golden.scenarios import AS_OF, scenarios

ROOT = Path(__file__).resolve().parents[2]


def _card_versions(cards: list[dict[str, Any]]) -> set[str]:
    return {c["extension"]["org.her2cds"]["knowledgeVersion"] for c in cards}


def _patient_view_cards(ks: KnowledgeSet) -> list[dict[str, Any]]:
    s = scenarios()["after_thp_tdxd"]
    result = pipeline.patient_view(
        s.bundle, instance="ks-test", patient_id=s.patient_id, as_of=AS_OF, knowledge=ks
    )
    return result.cards


def _renamed(ks: KnowledgeSet, version: str) -> KnowledgeSet:
    return replace(ks, version=version, knowledge=replace(ks.knowledge, version=version))


def test_one_version_for_knowledge_terminology_and_line_rules() -> None:
    ks = load_knowledge_set()
    assert ks.knowledge.version == ks.version
    # the engine's own loader (engine.assess's default) gives the same version
    assert load_knowledge().version == ks.version
    release, digest = ks.version.split("+")
    assert release and len(digest) == 8


@pytest.fixture
def copied_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The knowledge and terminology folders copied apart from each other (so the engine's
    own `versioned_with` path does not reach the copy: only the set's loader covers it)."""
    kdir, tdir = tmp_path / "knowledge", tmp_path / "elsewhere" / "terminology"
    shutil.copytree(ROOT / "engine" / "knowledge", kdir)
    shutil.copytree(ROOT / "fhir_mappers" / "terminology", tdir)
    monkeypatch.setattr(knowledge, "KNOWLEDGE_DIR", kdir)
    monkeypatch.setattr(term_module, "TERMINOLOGY_DIR", tdir)
    clear_caches()
    yield tmp_path
    monkeypatch.undo()
    clear_caches()


@pytest.mark.parametrize(
    "path",
    [
        "elsewhere/terminology/conditions.yaml",
        "elsewhere/terminology/medications.yaml",
        "elsewhere/terminology/lines.yaml",
        "elsewhere/terminology/dose_text.yaml",
        "knowledge/warnings.yaml",
    ],
)
def test_a_reviewers_edit_to_any_file_changes_the_cards_knowledge_version(
    copied_folders: Path, path: str
) -> None:
    before = load_knowledge_set()
    edited = copied_folders / path
    edited.write_text(edited.read_text(encoding="utf-8") + "\n# a reviewer's edit\n")
    clear_caches()
    after = load_knowledge_set()
    assert after.version != before.version
    assert after.version.split("+")[0] == before.version.split("+")[0]  # nobody bumped it
    assert _card_versions(_patient_view_cards(after)) == {after.version}


def test_a_broken_terminology_file_stops_the_set_from_loading(copied_folders: Path) -> None:
    lines = copied_folders / "elsewhere" / "terminology" / "lines.yaml"
    lines.write_text(lines.read_text(encoding="utf-8").replace("new_line_classes:", "x:", 1))
    clear_caches()
    with pytest.raises(DataFileError, match=r"lines\.yaml"):
        load_knowledge_set()


def test_the_pipeline_decides_with_the_set_it_is_given() -> None:
    ks = _renamed(load_knowledge_set(), "test-release+0000beef")
    cards = _patient_view_cards(ks)
    assert cards and _card_versions(cards) == {"test-release+0000beef"}


def test_the_line_rules_given_are_the_ones_applied() -> None:
    """Therapy begun 12 days before the metastatic date is reported (lines.yaml
    setting_check_days: 30); line rules with no such window report nothing."""
    bundle = b.bundle(
        b.patient(),
        b.breast_cancer("2018-01-01"),
        b.her2(True, "2018-01-05"),
        b.metastasis(onset="2021-01-01"),
        b.request("72962", "docetaxel", "2020-12-20", rid="early-doc"),
    )
    ks = load_knowledge_set()

    def issues(days: int) -> list[str]:
        rec = build_record(
            bundle,
            as_of=AS_OF,
            knowledge=ks.knowledge,
            terminology=ks.terminology,
            line_rules=replace(ks.line_rules, setting_check_days=days),
        )
        return [i.message for i in rec.data_issues if i.source_id == "MedicationRequest/early-doc"]

    assert any("12 days before the metastatic date" in m for m in issues(30))
    assert issues(0) == []


@pytest.fixture
def renamed_app(tmp_path: Path) -> Iterator[Flask]:
    ks = _renamed(load_knowledge_set(), "app-release+0000cafe")
    yield create_app({"database_url": f"sqlite:///{tmp_path / 'ks.db'}"}, knowledge=ks)


def test_the_app_answers_with_the_knowledge_set_it_was_built_with(renamed_app: Flask) -> None:
    from tests.conftest import hook_request

    assert service_state(renamed_app).knowledge.version == "app-release+0000cafe"
    client = renamed_app.test_client()
    services = client.get("/cds-services").get_json()["services"]
    assert {s["extension"]["org.her2cds"]["knowledgeVersion"] for s in services} == {
        "app-release+0000cafe"
    }
    assert client.get("/readyz").get_json()["knowledgeVersion"] == "app-release+0000cafe"
    s = scenarios()["after_thp_tdxd"]
    answer = client.post("/cds-services/her2-next-line", json=hook_request(s.bundle))
    cards = answer.get_json()["cards"]
    assert cards and _card_versions(cards) == {"app-release+0000cafe"}
