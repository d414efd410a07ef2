"""/healthz and /readyz through HTTP: ready with a reachable database, 503 without one."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from cds_service import create_app
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
