"""What an integrator sees in a CDS client (issue 19 items 3 and 6): the timeline link opens from
any client, suggestion labels read cleanly, info cards carry a fitting topic, and the names that
must not wrap at their hyphen keep together."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests import builders as b
from tests.cards.test_cards import call
from tests.conftest import her2_ext, hook_request
from tests.engine_builders import her2_story
from tests.golden.scenarios import scenarios

UNBREAKABLE = re.compile(r"T-(DM1|DXd)")
NON_BREAKING_HYPHEN = "\u2011"


def _all_cards(client: FlaskClient) -> list[tuple[str, dict[str, Any]]]:
    return [(name, card) for name, s in sorted(scenarios().items()) for card in call(client, s)]


def test_no_suggestion_label_has_two_brackets_in_a_row(client: FlaskClient) -> None:
    labels = [s["label"] for _, c in _all_cards(client) for s in c.get("suggestions") or ()]
    assert any("recommended" in label for label in labels)
    assert not [label for label in labels if re.search(r"\)\s*\(", label)]


@pytest.mark.parametrize("name", ["after_thp_tdxd", "ild_tdm1"])
def test_the_recommended_label_names_the_regimen_and_says_recommended_once(
    client: FlaskClient, name: str
) -> None:
    (card,) = [c for c in call(client, scenarios()[name]) if her2_ext(c)["kind"] == "next-line"]
    (first, *_) = card["suggestions"]
    assert first["isRecommended"] is True
    short = {"after_thp_tdxd": "DXd", "ild_tdm1": "DM1"}[name]
    assert first["label"].endswith(f"(T{NON_BREAKING_HYPHEN}{short}, recommended)")
    assert first["label"].count("recommended") == 1


def test_summaries_and_labels_never_break_t_dm1_or_t_dxd(client: FlaskClient) -> None:
    seen = 0
    for name, card in _all_cards(client):
        texts = [card["summary"], *(s["label"] for s in card.get("suggestions") or ())]
        for text in texts:
            assert not UNBREAKABLE.search(text), (name, text)
            seen += text.count(NON_BREAKING_HYPHEN)
            # the summary limit still holds: one character for one
            assert len(card["summary"]) < 140
    assert seen >= 5  # the scenarios name T-DM1 and T-DXd in summaries and labels


def test_details_and_resources_keep_plain_hyphens(client: FlaskClient) -> None:
    """Only what a client wraps as a title changes: markdown detail and the orders are as before."""
    for _, card in _all_cards(client):
        assert NON_BREAKING_HYPHEN not in card.get("detail", "")
        for s in card.get("suggestions") or ():
            for action in s.get("actions") or ():
                assert NON_BREAKING_HYPHEN not in repr(action.get("resource", {}))


def test_info_cards_are_not_labelled_safety_warning(client: FlaskClient) -> None:
    infos = [c for _, c in _all_cards(client) if her2_ext(c)["kind"] == "warning"]
    assert {c["indicator"] for c in infos} >= {"info", "warning"}
    for card in infos:
        display = card["source"]["topic"]["display"]
        assert (display == "Safety warning") == (card["indicator"] != "info"), card["summary"]


def test_the_rebiopsy_card_is_advice_not_a_safety_warning(client: FlaskClient) -> None:
    recent = (date.today() - timedelta(days=30)).isoformat()  # a current record
    story = her2_story(met=recent)
    her2_obs = next(r for r in story if r["resourceType"] == "Observation")
    her2_obs["bodySite"] = {"text": "Left breast"}  # HER2 from the primary tumour only
    body = hook_request(b.bundle(*story))
    cards = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    (card,) = [c for c in cards if her2_ext(c).get("rule") == "her2-status"]
    assert "re-biopsy" in card["summary"] and card["indicator"] == "info"
    assert card["source"]["topic"]["display"] == "Clinical advice"


def test_the_timeline_link_is_absolute_and_only_on_the_next_line_card(
    client: FlaskClient,
) -> None:
    with_link = 0
    for name, card in _all_cards(client):
        links = card.get("links") or []
        assert not [link for link in links if link["type"] == "smart"], name
        timeline = [link for link in links if "/timeline/" in link["url"]]
        if her2_ext(card)["kind"] != "next-line":
            assert not timeline, (name, card["summary"])
        elif timeline:
            with_link += 1
            (link,) = timeline
            assert link["type"] == "absolute" and "appContext" not in link
    assert with_link >= 3
