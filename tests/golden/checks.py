"""Checks every card must pass (CDS Hooks 2.0 card rules plus the house card contract)."""

from __future__ import annotations

import re
from typing import Any

_HTML = re.compile(r"<(?!https?://)[A-Za-z/!][^>]*>")
_EMPTY: tuple[Any, ...] = ("", [], {}, None)


def _no_empty(value: Any, path: str) -> None:
    assert value not in _EMPTY, f"empty value at {path}"
    if isinstance(value, dict):
        for k, v in value.items():
            _no_empty(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_empty(v, f"{path}[{i}]")


def check_card(card: dict[str, Any], version: str) -> None:
    _no_empty(card, "card")
    assert isinstance(card["summary"], str) and len(card["summary"]) < 140, card["summary"]
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["uuid"]
    label = card["source"]["label"]
    assert "HER2 next-line CDS" in label and version in label
    ext = card["extension"]["org.her2cds"]
    assert ext["kind"] in ("next-line", "warning", "data-needed", "order-check")
    assert ext["knowledgeVersion"] == version
    if "detail" in card:
        assert not _HTML.search(card["detail"]), "detail must be Markdown, not HTML"
    suggestions = card.get("suggestions", [])
    if suggestions:
        assert card["selectionBehavior"] in ("at-most-one", "any")
    if card.get("selectionBehavior") == "at-most-one":
        assert sum(1 for s in suggestions if s.get("isRecommended")) <= 1
    for s in suggestions:
        assert s["label"] and s["uuid"]
        for a in s["actions"]:
            assert a["type"] in ("create", "update", "delete") and a["description"]
            if a["type"] == "delete":
                assert "resource" not in a
                assert re.fullmatch(r"[A-Za-z]+/[A-Za-z0-9\-.]+", a["resourceId"])
            else:
                assert a["resource"]["resourceType"]
    for link in card.get("links", []):
        assert link["label"] and link["type"] in ("absolute", "smart")
        assert link["url"].startswith(("https://", "http://"))
        if link["type"] != "smart":
            assert "appContext" not in link
    for reason in card.get("overrideReasons", []):
        assert reason["system"] and reason["code"] and reason["display"]


def check_response(cards: list[dict[str, Any]], version: str) -> None:
    ids = []
    for card in cards:
        check_card(card, version)
        ids.append(card["uuid"])
        ids += [s["uuid"] for s in card.get("suggestions", [])]
    assert len(ids) == len(set(ids)), "card and suggestion uuids are unique per response"
