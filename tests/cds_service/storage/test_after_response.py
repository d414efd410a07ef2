"""Writes after the answer: a worker holds its calls' writes briefly and commits them together.

Through the public surface: hook calls over HTTP (test client and a real `her2-cds serve`), the
timeline link, and the database as another worker or replica sees it (its own connection).
"""

from __future__ import annotations

import re
import signal
import time
import weakref
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.state import service_state
from cds_service.storage import after_response
from cds_service.storage.db import Database
from tests.conftest import hook_request, load_fixture
from tests.serving import serving

PATH = "/cds-services/her2-next-line"


def rows(url: str, table: str) -> int:
    """Rows of `table` as another process sees them: a connection of its own."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def commits(app: Flask) -> list[int]:
    counted = [0]
    db = service_state(app).db
    assert isinstance(db, Database)

    def count(_conn: Any) -> None:
        counted[0] += 1

    sa.event.listen(db.engine, "commit", count)
    return counted


def link_of(cards: dict[str, Any]) -> str:
    found = re.findall(r"/timeline/[^\s\"')]+\?view=[0-9a-f]+", orjson.dumps(cards).decode())
    assert found, "the next-line card links to the timeline view"
    return str(found[0])


def hold_writes(app: Flask) -> None:
    """Hold writes past the operators' 5 s cap, so that a loaded machine answering slowly cannot
    commit them before the test flushes (the test was flaky under load)."""
    object.__setattr__(service_state(app).config, "write_delay", 600.0)


def test_calls_answered_together_are_committed_in_one_transaction(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'held.db'}"
    app = create_app({"database_url": url, "write_delay": 5.0})
    hold_writes(app)
    client = app.test_client()
    body = hook_request(load_fixture("her2_after_thp_progression"))
    assert client.post(PATH, json=body).status_code == 200  # also draws the link secret
    after_response.flush()
    counted = commits(app)
    for i in range(5):  # five patients: one picture each (a patient's next call replaces it)
        body = hook_request(load_fixture("her2_after_thp_progression"), patient_id=f"held-{i}")
        assert client.post(PATH, json=body).status_code == 200
    assert counted == [0]
    assert rows(url, "timeline_latest") == 1  # the five are held by the worker, not yet committed
    after_response.flush()
    assert counted == [1]
    assert rows(url, "timeline_latest") == 6
    assert rows(url, "card_rule") > 0


def test_other_workers_see_the_writes_within_the_delay(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'delay.db'}"
    client = create_app({"database_url": url, "write_delay": 0.1}).test_client()
    assert client.post(PATH, json=hook_request(load_fixture("her2_ild_after_thp"))).status_code
    deadline = time.monotonic() + 10
    while rows(url, "timeline_latest") == 0:
        assert time.monotonic() < deadline, "the worker's thread never committed"
        time.sleep(0.05)  # polling the worker's writer thread


def test_a_link_opens_at_once_on_the_worker_that_answered(tmp_path: Path) -> None:
    client = create_app(
        {"database_url": f"sqlite:///{tmp_path / 'own.db'}", "write_delay": 5.0}
    ).test_client()
    resp = client.post(PATH, json=hook_request(load_fixture("her2_after_thp_progression")))
    page = client.get(link_of(resp.get_json()))
    assert page.status_code == 200 and b"<svg" in page.data


def test_write_delay_zero_commits_at_the_end_of_each_call(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'zero.db'}"
    app = create_app({"database_url": url, "write_delay": 0})
    client = app.test_client()
    assert client.post(PATH, json=hook_request(load_fixture("her2_ild_after_thp"))).status_code
    counted = commits(app)  # after the first call, which also drew the link secret
    for i in range(2):
        body = hook_request(load_fixture("her2_ild_after_thp"), patient_id=f"zero-{i}")
        assert client.post(PATH, json=body).status_code == 200
        assert rows(url, "timeline_latest") == i + 2
    assert counted == [2]


def test_the_calls_objects_are_freed_once_the_answer_is_sent_not_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Freeing a parsed request and its picture is work too (about a third of orjson's parse
    time on 1,000 resources): it waits until the response has been sent (WSGI close)."""
    import cds_service.pipeline

    made: list[weakref.ref[Any]] = []
    real = cds_service.pipeline.patient_view

    def watched(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        made.append(weakref.ref(result))
        return result

    monkeypatch.setattr(cds_service.pipeline, "patient_view", watched)
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'free.db'}", "write_delay": 0})
    made.clear()  # the start-up warm-up call
    # Werkzeug's own client leaves the response open, as a server does until it has sent it.
    resp = FlaskClient(app, app.response_class).post(
        PATH, json=hook_request(load_fixture("her2_ild_after_thp"))
    )
    assert resp.status_code == 200 and resp.get_json()["cards"]
    (result,) = made
    assert result() is not None
    resp.close()
    assert result() is None


def test_a_bad_write_delay_is_refused() -> None:
    from cds_service.config import ConfigError, from_env

    with pytest.raises(ConfigError, match="HER2CDS_WRITE_DELAY"):
        from_env({"HER2CDS_WRITE_DELAY": "60"})
    assert from_env({"HER2CDS_WRITE_DELAY": "0"}).write_delay == 0


def test_a_worker_stopped_with_sigterm_commits_what_it_holds(tmp_path: Path) -> None:
    """`her2-cds serve`: a call answered just before SIGTERM still has its link stored."""
    db_file = tmp_path / "serve.db"
    env = {
        "HER2CDS_DATABASE_URL": f"sqlite:///{db_file}",
        "HER2CDS_WRITE_DELAY": "5",  # far longer than the test: only the exit commits
    }
    with serving(tmp_path, "serve", env) as served:
        body = hook_request(load_fixture("her2_after_thp_progression"))
        assert served.call("POST", PATH, body)[0] == 200
        assert served.stop() == 0
    log = served.log
    assert rows(f"sqlite:///{db_file}", "timeline_latest") == 1, log.read_text()


def test_a_forked_child_neither_commits_nor_waits_for_its_parents_writes(tmp_path: Path) -> None:
    """gunicorn forks workers from a master; a child must start with nothing held and with
    locks of its own, whatever the parent's writer thread was doing at the fork."""
    import os

    url = f"sqlite:///{tmp_path / 'fork.db'}"
    app = create_app({"database_url": url, "write_delay": 5.0})
    hold_writes(app)
    client = app.test_client()
    assert client.post(PATH, json=hook_request(load_fixture("her2_ild_after_thp"))).status_code
    after_response.flush()
    second = hook_request(load_fixture("her2_ild_after_thp"), patient_id="fork-2")
    assert client.post(PATH, json=second).status_code
    with after_response._WRITER._committing:  # as if its thread were committing right now
        pid = os.fork()
    if pid == 0:  # the child: flush must return at once and commit nothing of the parent's
        try:
            after_response.flush()
            os._exit(0 if rows(url, "timeline_latest") == 1 else 3)
        except BaseException:
            os._exit(4)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child's flush hung on its parent's lock")
        time.sleep(0.05)  # polling the child
    assert os.waitstatus_to_exitcode(done[1]) == 0
    after_response.flush()
    assert rows(url, "timeline_latest") == 2  # the parent still commits its own
