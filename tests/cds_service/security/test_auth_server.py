"""`her2-cds serve` with authentication: real gunicorn workers, one replay cache, a clean log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.auth_support import assert_no_token, default_clients, mint
from tests.serving import serving


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    env = {
        "HER2CDS_AUTH": "required",
        "HER2CDS_TRUSTED_CLIENTS": str(default_clients(tmp_path)),
        "HER2CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'service.db'}",
    }
    with serving(tmp_path, "service", env, workers=2) as served:
        yield served.base, served.log


def test_served_with_two_workers_one_replay_cache_and_no_token_in_the_log(
    server: tuple[str, Path],
) -> None:
    base, log = server
    url = f"{base}/cds-services"
    now = time.time()
    statuses = []
    for _ in range(3):
        token = mint(url, now)
        # fresh connections, so the calls spread over both worker processes
        statuses.append(
            [
                requests.get(
                    url, headers={"Authorization": f"Bearer {token}"}, timeout=10
                ).status_code
                for _ in range(4)
            ]
        )
    assert statuses == [[200, 401, 401, 401]] * 3
    expired = mint(url, now - 3600)
    resp = requests.get(url, headers={"Authorization": f"Bearer {expired}"}, timeout=10)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(url, timeout=10).status_code == 401
    text = log.read_text(encoding="utf-8")
    assert "reason=replay" in text and "reason=expired" in text and "reason=missing" in text
    assert_no_token(text)
