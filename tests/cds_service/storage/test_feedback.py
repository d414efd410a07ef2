"""Feedback (section 10, requirements 26-27): validated, stored once per card, outcome and
timestamp, in SQLite by default and in a real PostgreSQL server the tests start themselves."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.api.feedback import stored_feedback
from cds_service.state import service_state
from cds_service.storage.db import Database
from tests.conftest import hook_request, load_fixture
from tests.pg import PostgresServer
from tests.protocol_support import checking_client

URL = "/cds-services/her2-next-line/feedback"
WHEN = "2026-11-22T02:10:00Z"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'feedback.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"fb_{uuid.uuid4().hex[:12]}")
    app = create_app({"database_url": url})
    yield app
    db(app).dispose()


@pytest.fixture
def client(backend_app: Flask) -> FlaskClient:
    return checking_client(backend_app)


def db(app: Flask) -> Database:
    database = service_state(app).db
    assert isinstance(database, Database)
    return database


def accepted(card: str = "card-1", when: str = WHEN, suggestion: str = "sug-1") -> dict[str, Any]:
    return {
        "card": card,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion}],
        "outcomeTimestamp": when,
    }


def overridden(card: str = "card-2", when: str = WHEN) -> dict[str, Any]:
    """As the CDS Hooks sandbox's Dismiss sends it: a reason with no display, no comment."""
    return {
        "card": card,
        "outcome": "overridden",
        "overrideReason": {"reason": {"code": "not-applicable", "system": "http://x.org/reasons"}},
        "outcomeTimestamp": when,
    }


def post(client: FlaskClient, *items: dict[str, Any]) -> Any:
    return client.post(URL, json={"feedback": list(items)})


# --------------------------------------------------------------------------- 27: accepted


def test_27_accepted_and_overridden_are_stored(backend_app: Flask, client: FlaskClient) -> None:
    resp = post(client, accepted(), overridden())
    assert resp.status_code == 200
    assert resp.get_json() == {"received": 2, "stored": 2}
    rows = stored_feedback(db(backend_app))
    assert [(r["card"], r["outcome"]) for r in rows] == [
        ("card-1", "accepted"),
        ("card-2", "overridden"),
    ]
    assert rows[0]["service_id"] == "her2-next-line"
    assert rows[0]["accepted_suggestions"] == '["sug-1"]'
    assert rows[0]["outcome_timestamp"] == "2026-11-22T02:10:00.000000Z"
    assert (rows[1]["override_code"], rows[1]["override_system"]) == (
        "not-applicable",
        "http://x.org/reasons",
    )


def test_27_repeats_are_idempotent(backend_app: Flask, client: FlaskClient) -> None:
    assert post(client, accepted()).get_json()["stored"] == 1
    assert post(client, accepted()).get_json() == {"received": 1, "stored": 0}
    # the same instant written another way is the same feedback
    same = accepted(when="2026-11-22T04:10:00.000+02:00")
    assert post(client, same, accepted()).get_json() == {"received": 2, "stored": 0}
    # a later report of the same card, or another outcome, is new
    later = accepted(when="2026-11-22T02:11:00Z")
    assert post(client, later, overridden(card="card-1")).get_json()["stored"] == 2
    assert len(stored_feedback(db(backend_app), "card-1")) == 3


def test_27_two_workers_on_one_database_store_once(backend_app: Flask) -> None:
    """Another app on the same database (another worker) reporting the same card."""
    other = create_app({"database_url": db(backend_app).url})
    try:
        a, b = checking_client(backend_app), checking_client(other)
        assert post(a, accepted()).get_json()["stored"] == 1
        assert post(b, accepted()).get_json()["stored"] == 0
        assert len(stored_feedback(db(backend_app))) == 1
    finally:
        db(other).dispose()


def test_26_27_feedback_on_real_cards_names_their_uuids(
    backend_app: Flask, client: FlaskClient
) -> None:
    body = hook_request(load_fixture("her2_after_thp_progression"))
    cards = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    card = next(c for c in cards if c.get("suggestions"))
    suggestion = card["suggestions"][0]["uuid"]
    items = [accepted(card["uuid"], suggestion=suggestion)]
    items += [overridden(c["uuid"]) for c in cards if c is not card]
    resp = post(client, *items)
    assert resp.get_json() == {"received": len(cards), "stored": len(cards)}
    row = stored_feedback(db(backend_app), card["uuid"])[0]
    assert suggestion in row["accepted_suggestions"]


# --------------------------------------------------------------------------- 27: malformed


def _broken() -> list[tuple[str, Any]]:
    def item(**changes: Any) -> dict[str, Any]:
        base = accepted()
        for k, v in changes.items():
            if v is None:
                base.pop(k)
            else:
                base[k] = v
        return {"feedback": [base]}

    no_reason = overridden()
    no_reason["overrideReason"] = {}
    no_system = overridden()
    del no_system["overrideReason"]["reason"]["system"]
    return [
        ("feedback", {}),
        ("feedback", {"feedback": []}),
        ("feedback", {"feedback": "accepted"}),
        ("JSON object", [accepted()]),
        ("card", item(card=None)),
        ("card", item(card="")),
        ("outcome", item(outcome="ignored")),
        ("outcome", item(outcome=None)),
        ("acceptedSuggestions", item(acceptedSuggestions=None)),
        ("acceptedSuggestions", item(acceptedSuggestions=[])),
        ("acceptedSuggestions", item(acceptedSuggestions=[{"uuid": "x"}])),
        ("outcomeTimestamp", item(outcomeTimestamp=None)),
        ("outcomeTimestamp", item(outcomeTimestamp="2026-11-22")),
        ("outcomeTimestamp", item(outcomeTimestamp="2026-11-22T02:10:00")),
        ("outcomeTimestamp", item(outcomeTimestamp="22/11/2026 02:10")),
        ("outcomeTimestamp", item(outcomeTimestamp="2026-02-30T02:10:00Z")),
        ("outcomeTimestamp", item(outcomeTimestamp=1795313776)),
        ("overrideReason", {"feedback": [no_reason]}),
        ("system", {"feedback": [no_system]}),
    ]


@pytest.mark.parametrize(("field", "body"), _broken())
def test_27_malformed_feedback_is_400_and_stores_nothing(app: Flask, field: str, body: Any) -> None:
    resp = checking_client(app).post(URL, json=copy.deepcopy(body))
    assert resp.status_code == 400
    assert field in resp.get_json()["issue"][0]["diagnostics"]
    assert stored_feedback(db(app)) == []


def test_27_one_bad_item_rejects_the_whole_post(backend_app: Flask, client: FlaskClient) -> None:
    bad = accepted(card="card-9")
    del bad["acceptedSuggestions"]
    assert post(client, accepted(), bad).status_code == 400
    assert stored_feedback(db(backend_app)) == []


def test_27_unknown_service_is_404(client: FlaskClient) -> None:
    resp = client.post("/cds-services/nope/feedback", json={"feedback": [accepted()]})
    assert resp.status_code == 404


def test_27_unknown_fields_and_extensions_are_ignored(client: FlaskClient) -> None:
    item = {**accepted(), "extension": {"com.example": 1}, "futureField": True}
    resp = client.post(URL, json={"feedback": [item], "extension": {"x": 1}})
    assert resp.status_code == 200


def test_feedback_with_the_database_down_is_503_not_500(tmp_path: Path) -> None:
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"})
    resp = checking_client(app).post(URL, json={"feedback": [accepted()]})
    assert resp.status_code == 503
    assert "try again" in resp.get_json()["issue"][0]["diagnostics"]


def test_default_database_is_a_sqlite_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cds_service.config import Config, from_env

    assert Config().database_url.startswith("sqlite:///")
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("HER2CDS_DATABASE_URL", url)
    assert from_env().database_url == url
    app = create_app()
    assert post(checking_client(app), accepted()).status_code == 200
    assert (tmp_path / "env.db").exists()
    db(app).dispose()
