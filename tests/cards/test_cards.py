"""Cards through HTTP: what a clinician sees for each scenario of CLINICAL.md, and the card rules
(CDS Hooks 2.0 plus the house contract) checked on every card of every scenario."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from engine import load_knowledge
from tests.conftest import her2_ext, hook_request
from tests.golden.checks import check_response
from tests.golden.scenarios import Scenario, scenarios

pytestmark = pytest.mark.usefixtures("at_scenario_date")  # scenarios are written for AS_OF

SERVICE = {
    "patient-view": "her2-next-line",
    "order-select": "her2-order-select",
    "order-sign": "her2-order-sign",
}
VERSION = load_knowledge().version


def call(client: FlaskClient, s: Scenario) -> list[dict[str, Any]]:
    extra: dict[str, Any] = {}
    if s.drafts is not None:
        extra["draftOrders"] = s.drafts
    if s.hook == "order-select":
        extra["selections"] = s.selections
    body = hook_request(s.bundle, s.hook, patient_id=s.patient_id, extra_context=extra)
    resp = client.post(f"/cds-services/{SERVICE[s.hook]}", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cards: list[dict[str, Any]] = resp.get_json()["cards"]
    return cards


def by_kind(cards: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [c for c in cards if her2_ext(c)["kind"] == kind]


@pytest.mark.parametrize("name", sorted(scenarios()))
def test_every_card_of_every_scenario_follows_the_rules(client: FlaskClient, name: str) -> None:
    cards = call(client, scenarios()[name])
    check_response(cards, VERSION)


def test_discovery_ids_match_the_services_the_tests_call(client: FlaskClient) -> None:
    services = {s["id"]: s["hook"] for s in client.get("/cds-services").get_json()["services"]}
    for hook, sid in SERVICE.items():
        assert services.get(sid) == hook


def test_next_line_card_names_line_and_regimen_and_offers_one_order_per_regimen(
    client: FlaskClient,
) -> None:
    cards = call(client, scenarios()["after_thp_tdxd"])
    (card,) = by_kind(cards, "next-line")
    # U+2011: the sandbox must not wrap "T-" and "DXd" onto two lines (issue 19 item 6)
    assert (
        card["summary"] == "Line 2: trastuzumab deruxtecan (T\u2011DXd) 5.4 mg/kg q3w recommended"
    )
    assert card["indicator"] == "info"
    ext = her2_ext(card)
    offered = [ext["regimen"]["id"], *(a["id"] for a in ext["alternatives"])]
    assert len(card["suggestions"]) == len(offered)
    assert [s.get("isRecommended", False) for s in card["suggestions"]] == [True] + [False] * (
        len(offered) - 1
    )
    assert card["selectionBehavior"] == "at-most-one"
    first = card["suggestions"][0]["actions"]
    assert [a["type"] for a in first] == ["create"]
    mr = first[0]["resource"]
    assert mr["resourceType"] == "MedicationRequest" and mr["intent"] == "proposal"
    assert mr["subject"] == {"reference": "Patient/thp-prog"}
    assert mr["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 5.4
    assert "q3w" in mr["dosageInstruction"][0]["text"]
    # RxNorm-coded wherever the knowledge base has a code (T-DM1 has one; T-DXd is unverified)
    tdm1 = next(s for s in card["suggestions"] if "T\u2011DM1" in s["label"])
    coding = tdm1["actions"][0]["resource"]["medicationCodeableConcept"]["coding"][0]
    assert coding == {
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
        "code": "1371041",
        "display": "ado-trastuzumab emtansine",
    }


def test_next_line_detail_has_timeline_why_evidence_alternatives_and_what_would_change(
    client: FlaskClient,
) -> None:
    (card,) = by_kind(call(client, scenarios()["after_thp_tdxd"]), "next-line")
    detail = card["detail"]
    for heading in (
        "### Therapy timeline",
        "### Why this regimen",
        "### Evidence",
        "### Alternatives (ranked)",
        "### What would change this advice",
    ):
        assert heading in detail
    assert (
        "| 1 | 2023-10-05, last dose on 2025-11-20 | THP" in detail and "| progression |" in detail
    )
    assert "28.8 vs 6.8 months" in detail and "N Engl J Med 2022;386:1143-1154" in detail
    assert "1. **ado-trastuzumab emtansine (T-DM1)**" in detail


def test_links_cite_each_source_and_open_the_timeline_for_the_patient(
    client: FlaskClient,
) -> None:
    (card,) = by_kind(call(client, scenarios()["after_thp_tdxd"]), "next-line")
    cards = call(client, scenarios()["ild_tdm1"])  # a warning card beside the next-line card
    absolute = [link["url"] for link in card["links"] if link["type"] == "absolute"]
    assert "https://doi.org/10.1056/NEJMoa2115022" in absolute
    assert len(absolute) == len(set(absolute))
    # the timeline page is no SMART app: an absolute link any client opens (issue 19 item 3)
    (timeline,) = [link for link in card["links"] if "/timeline/" in link["url"]]
    assert timeline["type"] == "absolute" and "appContext" not in timeline
    assert timeline["url"].startswith("http://localhost/timeline/thp-prog?view=")
    assert not [link for c in cards for link in c.get("links", []) if link["type"] == "smart"]
    others = [c for c in cards if her2_ext(c)["kind"] != "next-line"]
    assert others and not [
        link for c in others for link in c.get("links", []) if "/timeline/" in link["url"]
    ], "the timeline link is on the next-line card only"


def test_ild_gives_tdm1_and_a_warning_with_override_reasons(client: FlaskClient) -> None:
    cards = call(client, scenarios()["ild_tdm1"])
    (nl,) = by_kind(cards, "next-line")
    assert her2_ext(nl)["regimen"]["id"] == "tdm1"
    assert "DXd" not in " ".join(s["label"] for s in nl["suggestions"])
    (ild,) = [c for c in by_kind(cards, "warning") if her2_ext(c)["rule"] == "tdxd-ild"]
    assert ild["indicator"] == "warning"  # it explains a replaced recommendation
    assert {r["code"] for r in ild["overrideReasons"]} >= {"ild-resolved"}
    assert cards.index(ild) < cards.index(nl)


@pytest.mark.parametrize(
    ("name", "why"),
    [("no_blockade", "no HER2-directed agent"), ("on_tdxd_with_ild", "T-DXd is active")],
)
def test_next_line_card_is_a_warning_when_the_current_regimen_is_wrong(
    client: FlaskClient, name: str, why: str
) -> None:
    (nl,) = by_kind(call(client, scenarios()[name]), "next-line")
    assert nl["indicator"] == "warning"
    assert "### Current regimen needs attention" in nl["detail"] and why in nl["detail"]
    assert her2_ext(nl)["currentRegimenProblem"] is True


def test_ild_while_on_tdxd_is_critical(client: FlaskClient) -> None:
    cards = call(client, scenarios()["on_tdxd_with_ild"])
    assert cards[0]["indicator"] == "critical"
    assert her2_ext(cards[0])["rule"] == "tdxd-ild"


def test_unknown_her2_gives_only_a_data_needed_card_saying_what_is_missing(
    client: FlaskClient,
) -> None:
    cards = call(client, scenarios()["her2_unknown"])
    assert [her2_ext(c)["kind"] for c in cards] == ["data-needed"]
    card = cards[0]
    assert her2_ext(card)["missing"] == "her2-status"
    assert "### What is missing" in card["detail"]
    assert "85319-2" in card["detail"] and "85318-4" in card["detail"]
    assert "suggestions" not in card


def test_out_of_scope_patient_gets_no_cards(client: FlaskClient) -> None:
    assert call(client, scenarios()["her2_negative"]) == []


@pytest.mark.parametrize(
    ("name", "indicator"),
    [("order_select_tdxd_ild", "critical"), ("order_sign_tdxd_ild", "critical")],
)
def test_tdxd_order_with_ild_is_replaced_by_tdm1(
    client: FlaskClient, name: str, indicator: str
) -> None:
    s = scenarios()[name]
    cards = call(client, s)
    assert cards[0]["indicator"] == "critical", "the most severe card comes first"
    (card,) = [c for c in cards if her2_ext(c)["rule"] == "tdxd-ild"]
    assert card["indicator"] == indicator
    assert her2_ext(card)["kind"] == "order-check" and her2_ext(card)["rule"] == "tdxd-ild"
    draft_id = "MedicationRequest/" + s.drafts["entry"][0]["resource"]["id"]  # type: ignore[index]
    (fix,) = card["suggestions"]
    assert fix["isRecommended"] is True
    # create first, then delete: a client applying only the first action keeps a right order
    create, delete = fix["actions"]
    assert delete == {
        "type": "delete",
        "description": f"Remove the draft order {draft_id}",
        "resourceId": draft_id,
    }
    mr = create["resource"]
    assert create["type"] == "create" and mr["intent"] == "order" and mr["status"] == "draft"
    assert mr["medicationCodeableConcept"]["coding"][0]["code"] == "1371041"
    assert mr["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 3.6
    assert card["overrideReasons"]


def test_wrong_tdxd_dose_is_fixed_to_the_breast_cancer_dose(client: FlaskClient) -> None:
    (card,) = [
        c
        for c in call(client, scenarios()["order_select_tdxd_dose"])
        if her2_ext(c)["rule"] == "dose-check"
    ]
    create, delete = card["suggestions"][0]["actions"]
    assert (create["type"], delete["type"]) == ("create", "delete")  # create first
    dosage = create["resource"]["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 5.4


def test_order_select_checks_only_the_selected_orders(client: FlaskClient) -> None:
    """The T-DXd draft (ILD on record) is in the session but not selected: only the selected
    trastuzumab draft is checked, so the ILD finding does not fire."""
    s = scenarios()["order_select_tdxd_ild"]
    drafts: dict[str, Any] = s.drafts  # type: ignore[assignment]
    other_draft = {
        **drafts["entry"][0]["resource"],
        "id": "draft-trastuzumab",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "224905"}],
            "text": "trastuzumab",
        },
    }
    both = {**drafts, "entry": [*drafts["entry"], {"resource": other_draft}]}
    only_other = Scenario(
        s.name, s.hook, s.bundle, s.patient_id, both, ["MedicationRequest/draft-trastuzumab"]
    )
    rules = {her2_ext(c)["rule"] for c in call(client, only_other)}
    assert "tdxd-ild" not in rules


def test_card_uuids_are_deterministic_per_hook_instance(client: FlaskClient) -> None:
    s = scenarios()["after_thp_tdxd"]
    body = hook_request(s.bundle, patient_id=s.patient_id)
    first = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    again = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    assert [c["uuid"] for c in first] == [c["uuid"] for c in again]
    body["hookInstance"] = "another-instance"
    other = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    assert not {c["uuid"] for c in first} & {c["uuid"] for c in other}


def test_a_draft_without_id_gets_the_fix_in_words_not_half_a_suggestion(
    client: FlaskClient,
) -> None:
    s = scenarios()["order_sign_tdxd_ild"]
    drafts: dict[str, Any] = s.drafts  # type: ignore[assignment]
    order = {k: v for k, v in drafts["entry"][0]["resource"].items() if k != "id"}
    no_id = Scenario(
        s.name, s.hook, s.bundle, s.patient_id, {**drafts, "entry": [{"resource": order}]}
    )
    cards = call(client, no_id)
    check_response(cards, VERSION)
    (card,) = [c for c in cards if her2_ext(c)["rule"] == "tdxd-ild"]
    assert card["indicator"] == "critical"
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert (
        "**Fix:** remove this draft and order ado-trastuzumab emtansine (T-DM1)" in card["detail"]
    )


def test_her2_positive_without_staging_asks_for_the_staging(client: FlaskClient) -> None:
    cards = call(client, scenarios()["no_staging"])
    assert [her2_ext(c)["missing"] for c in cards] == ["metastatic-status"]
    assert "21907-1" in cards[0]["detail"] and "21908-9" in cards[0]["detail"]


def test_a_planned_end_date_reads_as_ongoing_not_stopped(client: FlaskClient) -> None:
    (nl,) = by_kind(call(client, scenarios()["no_blockade"]), "next-line")
    # active with no end in the past: ongoing, and no date in the future (CLINICAL.md 2.5)
    assert "| 2 | 2025-03-10 to ongoing | capecitabine | ongoing |" in nl["detail"]
    assert "2027-03-01" not in nl["detail"]
