"""Issue 24: the mCODE IG's own example shapes (STU1-STU4), through `evaluate` and the hooks.

Expectations are CLINICAL.md's: each fixture is a HER2-positive breast cancer, metastatic since
2025-01-15 (de novo stage IV), whose first-line THP ended in progression: line 2 is T-DXd,
recommended now (section 3, row 1). The stage IIIC patient on curative therapy is early-stage
disease: no cards at all (section 5), in particular no line recommendation and no order.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from her2cds_cli.cli import main
from tests.conftest import FIXTURES, her2_ext, hook_request
from tests.mcode_fixtures import AS_OF, build
from tests.mcode_fixtures import FIXTURES as BUILDERS

MCODE = FIXTURES / "mcode"
VERSIONS = ["mcode_stu1", "mcode_stu2", "mcode_stu3", "mcode_stu4"]
HOOKS = ["her2-next-line", "her2-order-select", "her2-order-sign"]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((MCODE / f"{name}.json").read_text(encoding="utf-8"))
    return data


def cli_cards(capsys: pytest.CaptureFixture[str], path: Path) -> list[dict[str, Any]]:
    assert main(["evaluate", "--json", "--as-of", AS_OF.isoformat(), str(path)]) == 0
    (patient,) = json.loads(capsys.readouterr().out)["patients"]
    cards: list[dict[str, Any]] = patient["cards"]
    return cards


@pytest.fixture
def on_as_of(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: AS_OF)


def hook_cards(client: FlaskClient, bundle: dict[str, Any], service: str) -> list[dict[str, Any]]:
    hook = {"her2-next-line": "patient-view", "her2-order-select": "order-select"}.get(
        service, "order-sign"
    )
    ctx: dict[str, Any] = {}
    if hook != "patient-view":
        pid = next(
            e["resource"]["id"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Patient"
        )
        draft = {
            "resourceType": "MedicationRequest",
            "id": "draft-1",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": f"Patient/{pid}"},
            "authoredOn": AS_OF.isoformat(),
            "medicationCodeableConcept": {
                "coding": [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1922509"}
                ],
                "text": "trastuzumab",
            },
        }
        ctx["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": draft}]}
        if hook == "order-select":
            ctx["selections"] = ["MedicationRequest/draft-1"]
    resp = client.post(
        f"/cds-services/{service}", json=hook_request(bundle, hook, extra_context=ctx)
    )
    assert resp.status_code == 200
    cards: list[dict[str, Any]] = resp.get_json()["cards"]
    return cards


def next_line(cards: list[dict[str, Any]]) -> dict[str, Any]:
    return her2_ext(next(c for c in cards if her2_ext(c)["kind"] == "next-line"))


def test_the_fixture_files_are_what_the_builder_writes() -> None:
    """The JSON is generated (tests/mcode_fixtures.py): an edit to one alone is caught."""
    for name in BUILDERS:
        assert load(name) == json.loads(json.dumps(build(name))), name


@pytest.mark.parametrize("name", VERSIONS)
def test_each_version_is_read_as_her2_positive_metastatic_after_thp_cli(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cards = cli_cards(capsys, MCODE / f"{name}.json")
    nl = next_line(cards)
    assert nl["line"] == 2 and nl["regimen"]["id"] == "tdxd" and nl["timing"] == "now"
    kinds = {her2_ext(c).get("rule") or her2_ext(c)["kind"] for c in cards}
    assert "her2-status" not in kinds  # HER2 was read, in the shape this version writes it


@pytest.mark.parametrize("service", HOOKS)
@pytest.mark.parametrize("name", VERSIONS)
def test_each_version_through_the_hooks(
    name: str, service: str, client: FlaskClient, on_as_of: None
) -> None:
    cards = hook_cards(client, load(name), service)
    if service == "her2-next-line":
        nl = next_line(cards)
        assert nl["line"] == 2 and nl["regimen"]["id"] == "tdxd"
    else:  # a plain trastuzumab order where T-DXd is recommended is flagged
        assert cards, "an order for this metastatic HER2+ patient gets order checks"
    assert not any("HER2 status not found" in c["summary"] for c in cards)


def test_stu4_conversion_says_the_status_changed(capsys: pytest.CaptureFixture[str]) -> None:
    """The IG's HER2-negative primary, then a positive liver biopsy (FISH and ratio, each with
    an interpretation): HER2-positive, and the card says the status changed (section 1)."""
    cards = cli_cards(capsys, MCODE / "mcode_stu4.json")
    assert any("HER2 status changed" in c["summary"] for c in cards)
    assert next_line(cards)["regimen"]["id"] == "tdxd"


def _without(bundle: dict[str, Any], part: str) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    out["entry"] = [e for e in out["entry"] if part not in e["resource"]["id"]]
    return out


@pytest.mark.parametrize("drop", [None, "distant-metastases", "primary-cancer-condition"])
def test_stage_iiic_on_curative_therapy_gets_no_line_card_cli(
    drop: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1222806003 is AJCC stage IIIC: with or without the cM0 (or the stage summary) beside
    it, no metastatic line recommendation and no one-click order."""
    bundle = load("mcode_stu4_stage_iiic_curative")
    if drop:
        bundle = _without(bundle, drop)
        if drop == "primary-cancer-condition":  # keep a breast cancer diagnosis, unstaged
            bundle["entry"].append(
                {
                    "resource": {
                        **load("mcode_stu4_stage_iiic_curative")["entry"][1]["resource"],
                        "stage": [],
                    }
                }
            )
    path = tmp_path / "iiic.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    cards = cli_cards(capsys, path)
    assert not [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    assert not any(c.get("suggestions") for c in cards)


@pytest.mark.parametrize("service", HOOKS)
def test_stage_iiic_on_curative_therapy_gets_no_cards_through_the_hooks(
    service: str, client: FlaskClient, on_as_of: None
) -> None:
    bundle = _without(load("mcode_stu4_stage_iiic_curative"), "distant-metastases")
    cards = hook_cards(client, bundle, service)
    assert not [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    assert not any("Line " in c["summary"] for c in cards)
