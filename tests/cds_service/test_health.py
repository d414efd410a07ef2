"""/healthz and /readyz through HTTP: ready with a reachable database, 503 without one."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import Column, Integer, Table, inspect

from cds_service import create_app
from cds_service.state import service_state
from cds_service.storage.db import METADATA
from engine import load_knowledge


def test_healthz_answers_ok(client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}
    assert resp.headers["Cache-Control"] == "no-store"


def test_readyz_reports_knowledge_version_and_database(client: FlaskClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ready"
    assert body["knowledgeVersion"] == load_knowledge().version
    assert body["checks"] == {"knowledge": "ok", "database": "ok"}


def test_readyz_is_503_with_operation_outcome_when_database_unreachable(tmp_path: Path) -> None:
    # a SQLite file in a directory that does not exist: every connection attempt fails
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite'}"
    app = create_app({"database_url": url, "testing": True})
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # alive, so not restarted
    resp = client.get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert [i["diagnostics"] for i in body["issue"]] == ["database unreachable"]
    assert all(i["code"] == "transient" for i in body["issue"])
    assert resp.headers["Retry-After"]
    # the database comes back (its directory appears): ready again without a restart
    (tmp_path / "missing-dir").mkdir()
    assert client.get("/readyz").status_code == 200


def test_readyz_creates_missing_tables_once_the_database_is_back(tmp_path: Path) -> None:
    # a table some store declares (feedback, replay cache); the database is down at start-up
    table = Table("ops_probe_store", METADATA, Column("id", Integer, primary_key=True))
    try:
        db_dir = tmp_path / "later"
        app = create_app({"database_url": f"sqlite:///{db_dir / 'db.sqlite'}", "testing": True})
        client = app.test_client()
        assert client.get("/readyz").status_code == 503
        db_dir.mkdir()
        assert client.get("/readyz").status_code == 200
        engine = service_state(app).db.engine
        assert "ops_probe_store" in inspect(engine).get_table_names()
    finally:
        METADATA.remove(table)
