"""The knowledge base: every file valid against its schema, consistent, and reviewable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import engine.knowledge as knowledge
from engine.knowledge import KnowledgeError, load_knowledge

SECTION_4 = {
    "off-sequence",
    "tdxd-ild",
    "tdxd-ild-monitoring",
    "cardiac-lvef",
    "lvef-due",
    "anthracycline-concurrent",
    "her2-blockade-stopped",
    "her2-status",
    "tki-after-tki",
    "chemo-endocrine-concurrent",
    "wrong-product",
    "dose-check",
    "pregnancy-her2",  # revised CLINICAL.md section 4
}
REGIMENS = {
    "thp",
    "tdxd-pertuzumab",
    "tdxd",
    "tdm1",
    "tucatinib-trastuzumab-capecitabine",
    "neratinib-capecitabine",
    "lapatinib-capecitabine",
    "lapatinib-trastuzumab",
    "margetuximab-chemo",
    "trastuzumab-chemo",
    "endocrine-her2",
}


# Notices about the data rather than clinical warnings: no trial to cite.
DATA_NOTICES = {"order-not-checked"}
# Warnings CLINICAL.md section 1 asks for (a card naming the facts that disagree).
SECTION_1 = {"her2-discordance", "uncertain-fact"}
# CLINICAL.md section 3 ILD modifier ("T-DM1 also carries a pneumonitis warning"), at order time
# (third outside review, M4: T-DM1 restarted with ILD on record after an unexplained stop).
SECTION_3 = {"ild-restart"}


def test_every_section_4_warning_is_in_the_data_file() -> None:
    """CLINICAL.md section 4 lists eleven warnings; each is worded in warnings.yaml, with its
    evidence. Any other rule is a declared data notice (an order that could not be checked)."""
    kb = load_knowledge()
    assert set(kb.warnings) == SECTION_4 | SECTION_1 | SECTION_3 | DATA_NOTICES
    for rule in kb.warnings.values():
        assert rule.evidence or rule.id in DATA_NOTICES, rule.id
        for v in rule.variants.values():
            assert v.severity in ("info", "warning", "critical")


def test_every_regimen_of_the_issue_with_doses_evidence_and_approvals() -> None:
    """Issue 5: THP, T-DXd + P, T-DXd, T-DM1, tucatinib triplet, neratinib + capecitabine,
    lapatinib + capecitabine, lapatinib + trastuzumab, margetuximab + chemotherapy, trastuzumab +
    chemotherapy, endocrine + HER2-directed therapy; each with doses, evidence and approvals."""
    kb = load_knowledge()
    assert set(kb.regimens) >= REGIMENS
    for rule in kb.regimens.values():
        assert rule.regimen.evidence and rule.regimen.components
        assert all(c.dose for c in rule.regimen.components)
    assert kb.regimens["neratinib-capecitabine"].regimen.approvals == ("FDA",)
    assert kb.regimens["margetuximab-chemo"].regimen.approvals == ("FDA",)
    assert kb.regimens["lapatinib-trastuzumab"].regimen.approvals == ("EMA",)


def test_verified_evidence_says_how() -> None:
    """Issue 5: "set verified: true only for what you confirmed (add a verification note)"."""
    doc = yaml.safe_load((knowledge.KNOWLEDGE_DIR / "evidence.yaml").read_text())
    for e in doc["evidence"]:
        if e["verified"]:
            assert len(e.get("verification", "")) > 30, e["id"]
        assert e["url"].startswith("https://")


def test_one_version_across_files() -> None:
    kb = load_knowledge()
    for name in ("drugs", "evidence", "regimens", "parameters", "warnings"):
        doc = yaml.safe_load((knowledge.KNOWLEDGE_DIR / f"{name}.yaml").read_text())
        assert doc["version"] <= kb.version, name


def _broken_copy(tmp_path: Path, name: str, old: str, new: str) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(knowledge.KNOWLEDGE_DIR, target)
    path = target / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return target


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("warnings.yaml", "severity: critical", "severity: fatal", "warnings.yaml"),
        ("warnings.yaml", "evidence: [slamon-2001", "evidence: [no-such-trial", "unknown evidence"),
        (
            "parameters.yaml",
            "early_relapse: [trastuzumab",
            "early_relapse: [herceptin",
            "unknown drug",
        ),
        ("regimens.yaml", "approvals: [FDA]", "approvals: [PMDA]", "regimens.yaml"),
        (
            "warnings.yaml",
            "drugs: [fam-trastuzumab deruxtecan]",
            "drugs: [enhertu]",
            "uncertain_facts: ild: unknown drug",
        ),
        ("warnings.yaml", "order_severity: warning", "order_severity: urgent", "warnings.yaml"),
    ],
)
def test_bad_knowledge_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, old: str, new: str, message: str
) -> None:
    """DESIGN.md: knowledge files are validated when the service starts and in the tests."""
    monkeypatch.setattr(knowledge, "KNOWLEDGE_DIR", _broken_copy(tmp_path, name, old, new))
    load_knowledge.cache_clear()
    try:
        with pytest.raises(KnowledgeError, match=message):
            load_knowledge()
    finally:
        monkeypatch.undo()
        load_knowledge.cache_clear()


def test_every_dose_says_where_it_comes_from() -> None:
    """Issue 5: "each with doses as the seeds give them"; COMMON.md: "a code or figure you cannot
    verify stays marked unverified in the data file, never guessed"."""
    kb = load_knowledge()
    for rule in kb.regimens.values():
        for c in rule.regimen.components:
            src = c.dose_source
            assert src.startswith("UNVERIFIED") or any(
                w in src for w in ("seed", "CLINICAL.md", "search tool")
            ), (rule.regimen.id, c.drug)
    tdxd = kb.regimens["tdxd"].regimen.components[0]
    assert tdxd.dose == "5.4 mg/kg" and "seed" in tdxd.dose_source


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("engine/knowledge", "warnings.yaml"),
        ("fhir_mappers/terminology", "conditions.yaml"),
        ("fhir_mappers/terminology", "lines.yaml"),
    ],
)
def test_version_changes_with_any_advice_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str, name: str
) -> None:
    """Issue 18: "Keep the knowledge version honest: it changes when any file that changes advice
    changes (knowledge, terminology, line rules)", even when nobody bumps `version:`."""
    root = Path(knowledge.__file__).parent.parent
    for sub in ("engine/knowledge", "fhir_mappers/terminology"):
        shutil.copytree(root / sub, tmp_path / sub)
    monkeypatch.setattr(knowledge, "KNOWLEDGE_DIR", tmp_path / "engine" / "knowledge")
    load_knowledge.cache_clear()
    try:
        before = load_knowledge().version
        path = tmp_path / folder / name
        path.write_text(path.read_text() + "\n# a reviewer's edit\n")
        load_knowledge.cache_clear()
        after = load_knowledge().version
    finally:
        monkeypatch.undo()
        load_knowledge.cache_clear()
    assert before.split("+")[0] == after.split("+")[0]
    assert before != after
