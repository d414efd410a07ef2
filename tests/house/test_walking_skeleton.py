"""The walking skeleton through HTTP: discovery, a patient-view answer, the card contract."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import her2_ext, hook_request, load_fixture


def test_discovery_lists_the_services(client: FlaskClient) -> None:
    resp = client.get("/cds-services")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    services = resp.get_json()["services"]
    assert {s["hook"] for s in services} >= {"patient-view"}
    pv = next(s for s in services if s["hook"] == "patient-view")
    assert pv["id"] and pv["description"] and pv["title"]
    assert all(isinstance(v, str) for v in pv["prefetch"].values())


def test_after_thp_with_progression_line_2_is_tdxd(client: FlaskClient) -> None:
    """Seed 000: "Trastuzumab deruxtecan (T-DXd) 5.4 mg/kg IV every 3 weeks is the standard of
    care" after progression on trastuzumab + pertuzumab + taxane."""
    body = hook_request(load_fixture("her2_after_thp_progression"))
    resp = client.post("/cds-services/her2-next-line", json=body)
    assert resp.status_code == 200
    cards = resp.get_json()["cards"]
    next_line = [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    assert len(next_line) == 1
    card = next_line[0]
    ext = her2_ext(card)
    assert ext["line"] == 2
    assert ext["timing"] == "now"
    assert ext["regimen"]["drugs"] == ["fam-trastuzumab deruxtecan"]
    assert ext["knowledgeVersion"]
    assert "Line 2" in card["summary"] and "5.4 mg/kg" in card["summary"]
    assert len(card["summary"]) < 140
    assert "DESTINY-Breast03" in card["detail"]
    assert any("doi.org" in link["url"] for link in card["links"])
    recommended = [s for s in card["suggestions"] if s.get("isRecommended")]
    assert len(recommended) == 1
    assert card["selectionBehavior"] == "at-most-one"


def test_de_novo_gets_thp_at_line_1(client: FlaskClient) -> None:
    """Seed 002: THP is the first-line standard (CLEOPATRA)."""
    body = hook_request(load_fixture("her2_de_novo"))
    cards = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    ext = her2_ext(next(c for c in cards if her2_ext(c)["kind"] == "next-line"))
    assert ext["line"] == 1
    assert ext["regimen"]["id"] == "thp"
    assert set(ext["regimen"]["drugs"]) == {"pertuzumab", "trastuzumab", "docetaxel"}


def test_ild_replaces_tdxd_with_tdm1_and_warns(client: FlaskClient) -> None:
    body = hook_request(load_fixture("her2_ild_after_thp"))
    cards = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    nl = her2_ext(next(c for c in cards if her2_ext(c)["kind"] == "next-line"))
    assert nl["regimen"]["id"] == "tdm1"
    offered = {nl["regimen"]["id"], *(a["id"] for a in nl["alternatives"])}
    assert not {"tdxd", "tdxd-pertuzumab"} & offered
    rules = [her2_ext(c).get("rule") for c in cards if her2_ext(c)["kind"] == "warning"]
    assert "tdxd-ild" in rules


def test_her2_negative_gets_no_cards(client: FlaskClient) -> None:
    body = hook_request(load_fixture("her2_negative"))
    resp = client.post("/cds-services/her2-next-line", json=body)
    assert resp.status_code == 200
    assert resp.get_json() == {"cards": []}
