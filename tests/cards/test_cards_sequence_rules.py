"""The next-line and ILD cards over HTTP for issue 18 classes 5-7, 9 and 10, with real FHIR
bundles; expectations from CLINICAL.md sections 2.6, 3 and 4."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests import builders as b
from tests.conftest import her2_ext, hook_request
from tests.engine_builders import drug, her2_story, regimen

TDXD = "fam-trastuzumab deruxtecan"
THP = ["pertuzumab", "trastuzumab", "docetaxel"]
TRIPLET = ["tucatinib", "trastuzumab", "capecitabine"]


def cards_for(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, story: list[dict[str, Any]], as_of: str
) -> list[dict[str, Any]]:
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: date.fromisoformat(as_of))
    body = hook_request(b.bundle(*story), patient_id="p1")
    resp = client.post("/cds-services/her2-next-line", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cards: list[dict[str, Any]] = resp.get_json()["cards"]
    return cards


def next_line(cards: list[dict[str, Any]]) -> dict[str, Any]:
    (card,) = [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    return card


def rules(cards: list[dict[str, Any]]) -> list[str]:
    return [her2_ext(c).get("rule", "") for c in cards]


def test_relapse_after_adjuvant_tdm1_card_recommends_tdxd_and_names_the_threshold(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLINICAL.md 2.6: relapse within 12 months of adjuvant T-DM1 gets T-DXd, not THP and not
    T-DM1 again; "say which one was used"."""
    story = her2_story(
        *regimen(THP, "2019-01-01", "2019-05-01"),
        drug("ado-trastuzumab emtansine", "2019-06-01", "2020-04-01"),
        met="2020-10-01",
    )
    card = next_line(cards_for(client, monkeypatch, story, "2020-10-10"))
    ext = her2_ext(card)
    assert ext["regimen"]["id"] == "tdxd"
    assert {"thp", "tdm1"}.isdisjoint(a["id"] for a in ext.get("alternatives", []))
    assert "threshold 12 months, parameter lines.early_relapse_months" in card["detail"]
    assert "(threshold 12 months) counted as a line" in card["detail"]


def test_after_thp_and_the_tucatinib_triplet_the_card_recommends_tdxd(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLINICAL.md section 3: "T-DXd is never skipped"."""
    story = her2_story(
        *regimen(THP, "2021-01-15", "2022-06-01"),
        b.progression("2022-06-01"),
        *regimen(TRIPLET, "2022-06-10", "2023-06-01"),
        b.progression("2023-06-01"),
    )
    card = next_line(cards_for(client, monkeypatch, story, "2023-06-15"))
    assert her2_ext(card)["regimen"]["id"] == "tdxd"
    assert (
        card["suggestions"][0]["isRecommended"] and "T\u2011DXd" in card["suggestions"][0]["label"]
    )
    assert "never skipped" in card["detail"]


def test_ild_after_tdxd_stopped_gives_the_ild_card_and_tdm1_with_its_pneumonitis_note(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLINICAL.md section 3 ILD modifier and section 4 tdxd-ild ("or was given before")."""
    story = her2_story(
        drug(TDXD, "2021-01-15", "2021-04-01"),
        drug("pertuzumab", "2021-01-15", "2021-04-01"),
        b.ild("2021-03-25"),
    )
    cards = cards_for(client, monkeypatch, story, "2021-04-20")
    (ild,) = [c for c in cards if her2_ext(c).get("rule") == "tdxd-ild"]
    assert "never re-challenge" in ild["detail"] and "permanent" in ild["detail"]
    assert "T-DM1 also carries a pneumonitis warning" in ild["detail"]
    card = next_line(cards)
    assert her2_ext(card)["regimen"]["id"] == "tdm1"
    assert "T-DM1 also carries a pneumonitis warning" in card["detail"]
    # T-DXd stopped with no reason recorded: no one-click until it is known (review 3, M4/C3);
    # whatever is offered, never T-DXd
    labels = " ".join(s["label"] for s in card.get("suggestions", []))
    assert "DXd" not in labels and "deruxtecan" not in labels


def _after_thp(*more: dict[str, Any]) -> list[dict[str, Any]]:
    return her2_story(*regimen(THP, "2021-01-15", "2022-06-01"), b.progression("2022-06-01"), *more)


def test_line_two_card_cites_no_brain_trial_and_no_third_line_summary_without_brain_mets(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLINICAL.md: "a trial result about brain metastases is cited only when she has them";
    issue 18: "Third line after T-DXd" on line-2 cards."""
    card = next_line(cards_for(client, monkeypatch, _after_thp(), "2022-06-15"))
    text = json.dumps(card)
    assert her2_ext(card)["line"] == 2
    assert "DESTINY-Breast12" not in text and "brain metastases" not in card["detail"]
    assert "Third line" not in text
    brain = b.metastasis("94225005", onset="2022-05-01", display="Brain metastasis")
    with_brain = next_line(cards_for(client, monkeypatch, _after_thp(brain), "2022-06-15"))
    assert "DESTINY-Breast12" in with_brain["detail"]
    assert any("DESTINY-Breast12" in link["label"] for link in with_brain["links"])


def test_unverified_evidence_is_marked_and_28_8_never_beside_0_28(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLINICAL.md: "Codes marked UNVERIFIED ... never hides uncertainty"; issue 18: entries
    marked unverified must be shown as such; "Never quote the 28.8-month median with HR 0.28"."""
    cards = cards_for(client, monkeypatch, _after_thp(), "2022-06-15")
    card = next_line(cards)
    lines = card["detail"].splitlines()
    update = [ln for ln in lines if "DESTINY-Breast03 (updated analysis)" in ln]
    primary = [ln for ln in lines if "DESTINY-Breast03 (primary analysis)" in ln]
    assert update and all("(citation unverified)" in ln for ln in update)
    assert primary and not any("unverified" in ln for ln in primary)
    labels = {link["label"] for link in card["links"]}
    assert "Evidence: DESTINY-Breast03 (updated analysis) (citation unverified)" in labels
    assert "Evidence: DESTINY-Breast03 (primary analysis)" in labels
    (triplet,) = [ln for ln in lines if ln.startswith("2. **tucatinib")]
    assert "European consensus 2024 (citation unverified)" in triplet  # unverified in the KB
    for c in cards:
        for ln in (c["summary"] + "\n" + c.get("detail", "")).splitlines():
            assert not ("28.8" in ln and "0.28" in ln), ln


def test_receptors_not_recorded_and_specimen_unknown_are_said_plainly_once(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 class 10: "HR negative or unknown" when receptors are not recorded; the
    primary-only HER2 card when the specimen is unknown; "current therapy" when there is none."""
    cards = cards_for(client, monkeypatch, her2_story(er=None), "2021-01-10")
    card = next_line(cards)
    assert "**HR** not recorded" in card["detail"]
    assert "negative or unknown" not in card["detail"]
    assert "her2-status" not in rules(cards)
    everything = json.dumps(cards)
    assert everything.count("HER2 result specimen not recorded") == 1
    assert "current therapy" not in everything.lower()
    assert "Documented progression" not in card["detail"]


def test_primary_specimen_still_gets_the_rebiopsy_card(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    story = her2_story()
    next(r for r in story if r["resourceType"] == "Observation")["bodySite"] = {
        "text": "Right breast"
    }
    cards = cards_for(client, monkeypatch, story, "2021-01-10")
    (status,) = [c for c in cards if her2_ext(c).get("rule") == "her2-status"]
    assert "primary tumour only" in status["summary"]
    assert "specimen not recorded" not in json.dumps(cards)
