"""Feedback at the edges (issue 20 items 4, 5 and 8): timestamps near the date limits are a 400,
not a 500; the schema's timestamp pattern rejects impossible dates; a NUL character is refused
with a 400 on SQLite and PostgreSQL alike (PostgreSQL cannot store one: it was a 503 for ever)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from cds_service.api.feedback import stored_feedback
from cds_service.api.validation import load_schema
from tests.cds_service.storage.test_feedback import URL, accepted, db, overridden
from tests.cds_service.storage.test_feedback import (
    backend_app as backend_app,  # SQLite and PostgreSQL, as there
)
from tests.protocol_support import assert_operation_outcome, checking_client

LIMITS = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+00:01"]
IMPOSSIBLE = [
    "0000-00-00T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2026-00-10T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-01-00T00:00:00Z",
    "2026-01-32T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T00:60:00Z",
    "2026-01-01T00:00:00+24:00",
]


@pytest.fixture
def http(backend_app: Flask) -> FlaskClient:
    return checking_client(backend_app)


def post(http: FlaskClient, *items: dict[str, Any]) -> Any:
    return http.post(URL, json={"feedback": list(items)})


@pytest.mark.parametrize("when", LIMITS + IMPOSSIBLE)
def test_timestamps_that_are_no_utc_date_time_are_400(
    backend_app: Flask, http: FlaskClient, when: str
) -> None:
    resp = post(http, accepted(when=when))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert "outcomeTimestamp" in assert_operation_outcome(resp.get_json())
    assert stored_feedback(db(backend_app)) == []


@pytest.mark.parametrize(
    ("when", "stored"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
        ("0001-01-01T00:01:00+00:01", "0001-01-01T00:00:00.000000Z"),
        ("0999-06-01T12:00:00Z", "0999-06-01T12:00:00.000000Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T23:59:59+23:59", "9999-12-31T00:00:59.000000Z"),
    ],
)
def test_timestamps_at_the_limits_are_stored_with_four_digit_years(
    backend_app: Flask, http: FlaskClient, when: str, stored: str
) -> None:
    assert post(http, accepted(when=when)).status_code == 200
    assert [r["outcome_timestamp"] for r in stored_feedback(db(backend_app))] == [stored]


@pytest.mark.parametrize("when", IMPOSSIBLE)
def test_the_published_timestamp_pattern_rejects_impossible_dates(when: str) -> None:
    """The pattern in the feedback schema (and so in /openapi.json) itself, not only the code."""
    schema = load_schema("feedback.schema.json")
    pattern = schema["$defs"]["item"]["properties"]["outcomeTimestamp"]["pattern"]
    assert re.search(pattern, when) is None
    assert not Draft202012Validator(schema).is_valid({"feedback": [accepted(when=when)]})
    assert re.search(pattern, "2026-11-22T02:10:00.5+05:30")


def _with_nul(where: str) -> dict[str, Any]:
    item = overridden() if where in ("comment", "display", "system", "code") else accepted()
    if where == "card":
        item["card"] = "card\x00-1"
    elif where == "suggestion":
        item["acceptedSuggestions"] = [{"id": "sug\x00"}]
    elif where == "comment":
        item["overrideReason"]["userComment"] = "not now\x00"
    elif where == "display":
        item["overrideReason"]["reason"]["display"] = "\x00"
    else:
        item["overrideReason"]["reason"][where] = "x\x00y"
    return item


@pytest.mark.parametrize("where", ["card", "suggestion", "comment", "display", "system", "code"])
def test_a_nul_character_is_a_400_on_every_database(
    backend_app: Flask, http: FlaskClient, where: str
) -> None:
    resp = post(http, accepted(card="fine"), _with_nul(where))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    text = assert_operation_outcome(resp.get_json())
    assert "NUL" in text and "feedback/1" in text
    assert "\x00" not in resp.get_data(as_text=True)
    assert stored_feedback(db(backend_app)) == []
    # and the service is fine afterwards: not "try again later" for ever
    again = post(http, accepted(card="fine"))
    assert again.status_code == 200 and again.get_json()["stored"] == 1
