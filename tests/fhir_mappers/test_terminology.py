"""Terminology as data: schema-checked tables, code-first matching, text that backs every code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.code_systems import RXNORM, SNOMED
from engine.knowledge import load_knowledge
from fhir_mappers import terminology as t
from fhir_mappers.knowledge_set import clear_caches, load_knowledge_set
from fhir_mappers.terminology import load_terminology, normalise_text
from tests.builders import ATC, coded

TERM = load_terminology()


def match(system: str | None, code: str | None, text: str = "") -> tuple[str, ...] | None:
    m = TERM.match_medication(coded(system, code, text))
    return m.drugs if m else None


@pytest.mark.parametrize(
    ("system", "code", "text", "expected"),
    [
        # Conjugates and Phesgo are classified before plain trastuzumab.
        (RXNORM, "2267576", "", ("fam-trastuzumab deruxtecan",)),
        (RXNORM, "2267581", "", ("fam-trastuzumab deruxtecan",)),
        (
            None,
            None,
            "fam-trastuzumab deruxtecan-nxki 100 MG Injection",
            ("fam-trastuzumab deruxtecan",),
        ),
        (None, None, "ENHERTU", ("fam-trastuzumab deruxtecan",)),
        (None, None, "T-DXd 5.4 mg/kg", ("fam-trastuzumab deruxtecan",)),
        (None, None, "DS-8201a trial drug", None),  # a different string: not guessed
        (None, None, "DS-8201", ("fam-trastuzumab deruxtecan",)),
        (ATC, "L01FD04", "", ("fam-trastuzumab deruxtecan",)),
        (RXNORM, "1371041", "", ("ado-trastuzumab emtansine",)),
        (RXNORM, "1658087", "", ("ado-trastuzumab emtansine",)),
        (SNOMED, "702836004", "", ("ado-trastuzumab emtansine",)),
        (None, None, "ado-trastuzumab emtansine 160 MG Injection", ("ado-trastuzumab emtansine",)),
        (None, None, "Kadcyla", ("ado-trastuzumab emtansine",)),
        (None, None, "PHESGO 1200 mg/600 mg", ("pertuzumab", "trastuzumab")),
        (
            None,
            None,
            "pertuzumab, trastuzumab, and hyaluronidase-zzxf",
            ("pertuzumab", "trastuzumab"),
        ),
        # Plain trastuzumab: IV, SC, biosimilars, brand names.
        (RXNORM, "224905", "", ("trastuzumab",)),
        (RXNORM, "2119714", "", ("trastuzumab",)),
        (None, None, "Herceptin Hylecta", ("trastuzumab",)),
        (None, None, "trastuzumab-anns 420 MG", ("trastuzumab",)),
        (None, None, "trastuzumab-pkrb", ("trastuzumab",)),
        (None, None, "Trazimera 150 mg vial", ("trastuzumab",)),
        (RXNORM, "1298944", "", ("pertuzumab",)),
        (SNOMED, "704226002", "", ("pertuzumab",)),
        (RXNORM, "2361290", "", ("tucatinib",)),
        (None, None, "TUKYSA 150 MG Oral Tablet", ("tucatinib",)),
        (ATC, "L01EH01", "", ("lapatinib",)),
        (RXNORM, "1940648", "", ("neratinib",)),
        (None, None, "Margenza", ("margetuximab",)),
        (None, None, "Abraxane 100 MG", ("nab-paclitaxel",)),
        (None, None, "paclitaxel protein-bound particles", ("nab-paclitaxel",)),
        (RXNORM, "583214", "Paclitaxel 100 MG Injection", ("paclitaxel",)),
        (None, None, "Taxotere", ("docetaxel",)),
        (RXNORM, "1045456", "", ("eribulin",)),
        (RXNORM, "1790099", "10 ML Doxorubicin Hydrochloride 2 MG/ML Injection", ("doxorubicin",)),
        (RXNORM, "198240", "Tamoxifen 10 MG Oral Tablet", ("tamoxifen",)),
        (RXNORM, "1946840", "Verzenio 100 MG Oral Tablet", ("abemaciclib",)),
        (None, None, "Acetaminophen 325 MG", None),
        (RXNORM, "310965", "Ibuprofen 200 MG Oral Tablet", None),
    ],
)
def test_medication_matching(
    system: str | None, code: str | None, text: str, expected: tuple[str, ...] | None
) -> None:
    assert match(system, code, text) == expected


def test_unverified_code_yields_to_text_naming_another_drug() -> None:
    # 2267579 is still unverified: when the text says trastuzumab, the text decides.
    m = TERM.match_medication(coded(RXNORM, "2267579", "trastuzumab 150 MG Injection"))
    assert m is not None and m.drugs == ("trastuzumab",) and m.matched_by == "text"
    m = TERM.match_medication(coded(RXNORM, "2267579", "Enhertu"))
    assert m is not None and m.matched_by == "rxnorm-unverified"
    m = TERM.match_medication(coded(RXNORM, "224905", "Enhertu"))  # verified code decides
    assert m is not None and m.drugs == ("trastuzumab",)


def test_normalise_text_strips_strength_form_and_suffix() -> None:
    assert normalise_text("Trastuzumab-dkst 420 MG Injection") == "trastuzumab"
    assert normalise_text("Tamoxifen 10 MG Oral Tablet") == "tamoxifen"


def test_every_table_drug_is_a_knowledge_drug_and_every_code_is_backed_by_text() -> None:
    kb = load_knowledge()
    for entry in TERM.medications:
        for drug in entry.drugs:
            assert kb.drug(drug) is not None, drug
        assert entry.names, entry.drugs
        for drug in entry.drugs:
            # The generic name itself matches by text, so no code is the only way in.
            assert TERM.match_medication_text(drug) is not None, drug


def test_every_knowledge_drug_has_a_terminology_entry() -> None:
    kb = load_knowledge()
    table = {d for e in TERM.medications for d in e.drugs}
    assert set(kb.drugs) <= table


def test_unverified_codes_are_recorded_with_a_source() -> None:
    raw = yaml.safe_load((t.TERMINOLOGY_DIR / "medications.yaml").read_text())
    for m in raw["medications"]:
        statuses = {c: v["status"] for v in m.get("verification", []) for c in v["codes"]}
        for code in m.get("unverified_rxnorm", []):
            assert statuses.get(code) == "unverified", (m["drugs"], code)
        for code, status in statuses.items():
            if status == "confirmed" and code in m.get("rxnorm", []):
                assert code not in m.get("unverified_rxnorm", [])
    # The CLINICAL.md UNVERIFIED list: confirmed ones carry a source, the rest stay unverified.
    unverified = TERM.unverified_codes()
    assert "2267576" not in unverified.get("fam-trastuzumab deruxtecan", ())
    assert "2361290" not in unverified.get("tucatinib", ())
    assert "1045452" in unverified["eribulin"]
    assert "2382601" in unverified["pertuzumab + trastuzumab"]
    obs = TERM.observations["observations"]
    assert obs["lvef_unverified"] == ["8806-2"]
    assert {c for v in obs["lvef_verification"] for c in v["codes"]} >= {"18043-0", "8806-2"}


def test_conjugates_come_before_trastuzumab_in_the_table() -> None:
    order = [e.drugs for e in TERM.medications]
    plain = order.index(("trastuzumab",))
    for conj in (
        ("fam-trastuzumab deruxtecan",),
        ("ado-trastuzumab emtansine",),
        ("pertuzumab", "trastuzumab"),
    ):
        assert order.index(conj) < plain


@pytest.mark.parametrize(
    ("system", "code", "concepts"),
    [
        (SNOMED, "427685000", ("her2-positive-breast-cancer", "breast-cancer")),
        (SNOMED, "94225005", ("brain-metastasis", "metastasis")),
        ("http://hl7.org/fhir/sid/icd-10-cm", "C79.31", ("brain-metastasis", "metastasis")),
        ("http://hl7.org/fhir/sid/icd-10", "C50.9", ("breast-cancer",)),
        (SNOMED, "65363002", None),  # otitis media
    ],
)
def test_condition_matching(system: str, code: str, concepts: tuple[str, ...] | None) -> None:
    m = TERM.match_condition(coded(system, code, "x"))
    assert (m.concepts if m else None) == concepts


def _clear_caches() -> None:
    clear_caches()


def _break_medications(data: dict[str, Any]) -> None:
    data["medications"][0]["rxnorm"] = ["not-a-code"]


def _break_lines(data: dict[str, Any]) -> None:
    del data["new_line_classes"]


def _break_systems(data: dict[str, Any]) -> None:
    data["systems"]["http://snomed.info/sct"] = "urn:oid:2.16.840.1.113883.6.96"


def _break_negation(data: dict[str, Any]) -> None:
    data["pre_negation"].append("No Evidence Of")  # trigger phrases are lowercase words


@pytest.mark.parametrize(
    ("name", "breakage"),
    [
        ("negation.yaml", _break_negation),
        ("medications.yaml", _break_medications),
        ("lines.yaml", _break_lines),
        ("systems.yaml", _break_systems),
    ],
)
def test_broken_terminology_file_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    breakage: Callable[[dict[str, Any]], None],
) -> None:
    for f in t.TERMINOLOGY_DIR.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text())
    (tmp_path / "schemas").mkdir()
    for f in (t.TERMINOLOGY_DIR / "schemas").glob("*.json"):
        (tmp_path / "schemas" / f.name).write_text(f.read_text())
    data = yaml.safe_load((tmp_path / name).read_text())
    breakage(data)
    (tmp_path / name).write_text(yaml.safe_dump(data))
    monkeypatch.setattr(t, "TERMINOLOGY_DIR", tmp_path)
    _clear_caches()
    try:
        with pytest.raises(t.TerminologyError, match=name):
            load_knowledge_set()  # the one loader checks every file (lines.yaml too)
    finally:
        monkeypatch.undo()
        _clear_caches()
