"""The timeline store keeps what a link can still open (issue 20 item 10): one picture per
patient and CDS client, replaced by that patient's next call, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask

from cds_service import create_app
from cds_service.storage import after_response
from tests.auth_support import HOOK, TENANT_ISS, FakeClock, bearer, make_app, mint
from tests.cds_service.storage.test_feedback import db
from tests.conftest import ClosingClient, hook_request, load_fixture
from tests.pg import PostgresServer

PV = "/cds-services/her2-next-line"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'timeline.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"tl_{uuid.uuid4().hex[:12]}")
    app = create_app({"database_url": url, "write_delay": 0})
    yield app
    db(app).dispose()


def stored_rows(app: Flask) -> list[tuple[str, str]]:
    after_response.flush()
    with db(app).engine.connect() as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(sa.text("SELECT patient_id, client FROM timeline_latest"))
        ]


def link_of(resp: Any) -> str:
    found = re.findall(
        r"/timeline/[^\s\"')]+\?view=[0-9a-f]+", orjson.dumps(resp.get_json()).decode()
    )
    assert found, resp.get_json()
    return str(found[0])


def test_one_picture_per_patient_replaced_by_the_next_call(backend: Flask) -> None:
    http = ClosingClient(backend)
    links = []
    for _ in range(12):
        resp = http.post(PV, json=hook_request(load_fixture("her2_after_thp_progression")))
        assert resp.status_code == 200
        links.append(link_of(resp))
    other = http.post(PV, json=hook_request(load_fixture("her2_ild_after_thp"), patient_id="p-2"))
    assert other.status_code == 200
    assert sorted(stored_rows(backend)) == [("p-2", "-"), ("thp-prog", "-")]
    assert http.get(links[-1]).status_code == 200  # the latest link opens
    assert http.get(link_of(other)).status_code == 200
    assert http.get(links[0]).status_code == 404  # an older call's link no longer does


def test_each_client_keeps_its_own_picture_of_a_patient(tmp_path: Path) -> None:
    clock = FakeClock()
    app = make_app(tmp_path, clock, write_delay=0)
    http = ClosingClient(app)
    body = hook_request(load_fixture("her2_after_thp_progression"))
    first = http.post(PV, json=body, headers=bearer(mint(HOOK, clock())))
    tenant = mint(HOOK, clock(), iss=TENANT_ISS, kid="ec-t", tenant="org-a")
    second = http.post(PV, json=dict(body, hookInstance=str(uuid.uuid4())), headers=bearer(tenant))
    assert first.status_code == second.status_code == 200
    rows = stored_rows(app)
    assert len(rows) == 2 and {p for p, _ in rows} == {"thp-prog"}
    assert "-" not in {c for _, c in rows}  # the issuer's digest, not "no client"
    assert all(TENANT_ISS not in c for _, c in rows)
    for resp in (first, second):
        assert http.get(link_of(resp)).status_code == 200


def _expiring(replace: tuple[str, ...]) -> tuple[sa.Engine, Any]:
    from cds_service.storage.expiring import ExpiringTable

    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("k", sa.String(8), primary_key=True),
        sa.Column("v", sa.String(8)),
        sa.Column("until", sa.Float),
    )
    engine = sa.create_engine("sqlite://")
    table.metadata.create_all(engine)
    return engine, ExpiringTable(
        table, expired=lambda now: table.c.until < now, prune_every=3, replace=replace
    )


@pytest.mark.parametrize("replace", [(), ("v", "until")])
def test_an_expiring_table_keeps_or_replaces_a_key_and_prunes_every_n_writes(
    replace: tuple[str, ...],
) -> None:
    """The one pattern behind card rules (a key written again is kept) and timeline pictures
    (it is replaced): expired rows go at every third write, not before."""
    engine, table = _expiring(replace)

    def rows() -> dict[str, str]:
        with engine.connect() as conn:
            return {k: v for k, v, _ in conn.execute(sa.select(table.table))}

    with engine.begin() as conn:
        table.write(conn, [{"k": "old", "v": "1", "until": 5.0}], now=0.0)
        table.write(conn, [{"k": "a", "v": "1", "until": 50.0}], now=10.0)
    assert rows() == {"old": "1", "a": "1"}  # "old" expired, but no prune yet
    with engine.begin() as conn:
        table.write(conn, [{"k": "a", "v": "2", "until": 60.0}], now=10.0)  # third write
    assert rows() == {"a": "2" if replace else "1"}
