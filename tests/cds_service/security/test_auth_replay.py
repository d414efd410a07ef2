"""The replay cache is the database's: workers and processes on one database share it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cds_service.security.replay import JTI_TABLE, ReplayCache
from cds_service.storage.db import Database
from tests.auth_support import (
    DISCOVERY,
    FakeClock,
    assert_rejected,
    bearer,
    make_app,
    mint,
    no_token_in_logs,
    service_log,
)

__all__ = ["no_token_in_logs", "service_log"]

pytestmark = pytest.mark.usefixtures("no_token_in_logs")


def test_a_token_used_on_one_app_is_refused_by_another_on_the_same_database(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    one = make_app(tmp_path, clock, db_name="shared.db").test_client()
    two = make_app(tmp_path, clock, db_name="shared.db").test_client()
    token = mint(DISCOVERY, clock())
    assert one.get("/cds-services", headers=bearer(token)).status_code == 200
    assert_rejected(two.get("/cds-services", headers=bearer(token)))
    other = mint(DISCOVERY, clock())
    assert two.get("/cds-services", headers=bearer(other)).status_code == 200
    assert_rejected(one.get("/cds-services", headers=bearer(other)))


def test_apps_on_different_databases_do_not_share(tmp_path: Path) -> None:
    clock = FakeClock()
    one = make_app(tmp_path, clock, db_name="a.db").test_client()
    two = make_app(tmp_path, clock, db_name="b.db").test_client()
    token = mint(DISCOVERY, clock())
    assert one.get("/cds-services", headers=bearer(token)).status_code == 200
    assert two.get("/cds-services", headers=bearer(token)).status_code == 200


def _caches(tmp_path: Path, clock: FakeClock, count: int) -> list[ReplayCache]:
    caches = []
    for _ in range(count):
        db = Database(f"sqlite:///{tmp_path / 'replay.db'}")
        cache = ReplayCache(db.engine, clock)
        cache.create_table()
        caches.append(cache)
    return caches


def test_concurrent_first_uses_of_one_jti_let_exactly_one_through(tmp_path: Path) -> None:
    clock = FakeClock()
    caches = _caches(tmp_path, clock, 2)
    exp = clock() + 300
    for round_ in range(5):
        jti = f"jti-{round_}"
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(
                pool.map(lambda i, j=jti: caches[i % 2].first_use("iss", j, exp), range(6))
            )
        assert results.count(True) == 1


def test_expired_rows_are_pruned(tmp_path: Path) -> None:
    clock = FakeClock()
    cache, other = _caches(tmp_path, clock, 2)
    for i in range(10):
        assert cache.first_use("iss", f"old-{i}", clock() + 100)
    clock.advance(101)
    assert other.prune() == 10
    with cache.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(JTI_TABLE)).scalar_one() == 0


def test_a_leftover_expired_row_does_not_block_a_new_token(tmp_path: Path) -> None:
    clock = FakeClock()
    cache, other = _caches(tmp_path, clock, 2)
    assert cache.first_use("iss", "j", clock() + 10)
    assert not other.first_use("iss", "j", clock() + 200)
    clock.advance(11)  # the first token is dead; its row is still there (pruned once a minute)
    with other.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(JTI_TABLE)).scalar_one() == 1
    assert other.first_use("iss", "j", clock() + 200)
    assert not cache.first_use("iss", "j", clock() + 200)


# --- the same on PostgreSQL (tests/pg.py starts a throw-away server; skipped without it) -----


@pytest.fixture
def postgres_url(postgres: Any, request: pytest.FixtureRequest) -> str:
    """A database of its own for each test."""
    url: str = postgres.create_database(f"auth_{request.node.name[:40].lower()}")
    return url


def test_postgres_replay_cache_is_shared_and_atomic(postgres_url: str) -> None:
    clock = FakeClock()
    caches = []
    for _ in range(2):
        db = Database(postgres_url)
        cache = ReplayCache(db.engine, clock)
        cache.create_table()
        caches.append(cache)
    exp = clock() + 300
    for round_ in range(5):
        jti = f"pg-jti-{round_}"
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(
                pool.map(lambda i, j=jti: caches[i % 2].first_use("iss", j, exp), range(6))
            )
        assert results.count(True) == 1
    clock.advance(301)
    assert caches[1].prune() == 5


def test_postgres_two_apps_share_the_replay_cache(tmp_path: Path, postgres_url: str) -> None:
    clock = FakeClock()
    one = make_app(tmp_path, clock, database_url=postgres_url).test_client()
    two = make_app(tmp_path, clock, database_url=postgres_url).test_client()
    token = mint(DISCOVERY, clock())
    assert one.get("/cds-services", headers=bearer(token)).status_code == 200
    assert_rejected(two.get("/cds-services", headers=bearer(token)))
