"""Shared fixtures: the app and its test client (Flask tutorial style), shared data, requests."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench.shared import find_shared, missing
from cds_service import create_app
from cds_service.services import prefetch_templates
from her2cds_cli.local_fhir import fill_prefetch, patient_keys_of
from tests.pg import PostgresServer, unavailable_reason


class ClosingClient(FlaskClient):
    """A test client that closes each response after reading it, as a WSGI server does.

    Werkzeug's test client leaves responses open, so work the service defers until the answer
    is sent (cds_service.storage.after_response: timeline pages, card rules, FHIR conformance) would
    never run in tests; a real server always closes the response."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        response.get_data()  # buffer the body before closing
        response.close()
        return response


# The test suite's own FHIR servers (tests.protocol_support.FhirServer) listen on 127.0.0.1 on a
# free port: the service may read them (HER2CDS_FHIR_SERVERS; unlisted servers are never read).
os.environ.setdefault("HER2CDS_FHIR_SERVERS", "http://127.0.0.1:*")

# Every Flask app built in the tests (some tests build their own) gets the closing client.
Flask.test_client_class = ClosingClient

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
SHARED = find_shared()
SYNTHEA = SHARED / "data" / "synthea-mcode"
CAPTURES = SHARED / "captures"
# what browser tests keep for a person to look at (screenshots, a print PDF); ignored by git
ARTIFACTS = Path(os.environ.get("HER2CDS_ARTIFACTS") or ROOT / "test-artifacts")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL for the session (tests/pg.py); skipped where none can start.
    Each user takes a database of its own (`create_database`) or the default one."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield create_app({"database_url": f"sqlite:///{tmp_path / 'test.db'}", "testing": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def at_scenario_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's today (the one clock the mappers read) pinned to the scenarios' AS_OF.

    Over HTTP the service judges a record at today's date; the golden scenarios are written
    for AS_OF (an 'active' T-DXd statement started 2025-12-01 is stale a year later), so a
    test calling them over HTTP pins the date rather than change its cards with the calendar."""
    from tests.golden.scenarios import AS_OF

    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: AS_OF)


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def hook_request(
    bundle: dict[str, Any],
    hook: str = "patient-view",
    *,
    patient_id: str | None = None,
    extra_context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A CDS Hooks request whose prefetch is filled from `bundle` with our own templates."""
    pid, keys = patient_keys_of(bundle)
    pid = patient_id or pid or "unknown"
    context: dict[str, Any] = {
        "patientId": pid,
        "userId": "Practitioner/dr-1",
        **(extra_context or {}),
    }
    resources = [e["resource"] for e in bundle.get("entry", [])]
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": fill_prefetch(prefetch_templates(), context, resources, keys),
    }


def her2_ext(card: dict[str, Any]) -> dict[str, Any]:
    ext: dict[str, Any] = card["extension"]["org.her2cds"]
    return ext


def needs_shared(path: Path) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not path.exists(), reason=missing(path))
