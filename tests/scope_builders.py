"""Shared FHIR stories and hook calls for tests/engine/test_scope.py and tests/engine/test_pregnancy.py."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests import builders as b
from tests.conftest import her2_ext, hook_request

AS_OF = date(2026, 6, 1)
TDXD_RXNORM = "2267579"  # an Enhertu product code (CLINICAL.md drug table)


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's today, so that 'current' and 'stale' do not move with the calendar."""
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: AS_OF)


def person(**fields: Any) -> dict[str, Any]:
    p = b.patient()
    p.update(fields)
    return {k: v for k, v in p.items() if v is not None}


def story(*extra: dict[str, Any], shift_days: int = 0, **patient: Any) -> dict[str, Any]:
    """HER2+ metastatic, progressed on THP in 2025: T-DXd is the line-2 recommendation.
    `shift_days` moves every clinical date that many days earlier (a stale record)."""

    def d(iso: str) -> str:
        return (date.fromisoformat(iso) - timedelta(days=shift_days)).isoformat()

    return b.bundle(
        person(**patient),
        b.breast_cancer(d("2024-01-01")),
        b.her2(True, d("2024-01-10")),
        b.metastasis(onset=d("2024-02-01")),
        *b.thp(d("2024-02-15"), d("2025-10-01")),
        b.progression(d("2025-10-01")),
        b.lvef(60, d("2026-05-01")),
        *extra,
    )


def drafts(*orders: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]}


def tdxd_draft() -> dict[str, Any]:
    return b.request(TDXD_RXNORM, "Enhertu", "2026-06-01", status="draft", rid="draft-tdxd")


def trastuzumab_draft() -> dict[str, Any]:
    return b.request("224905", "trastuzumab", "2026-06-01", status="draft", rid="draft-t")


def call(
    client: FlaskClient, bundle: dict[str, Any], hook: str = "patient-view", **ctx: Any
) -> list[dict[str, Any]]:
    service = {"patient-view": "her2-next-line", "order-sign": "her2-order-sign"}[hook]
    resp = client.post(
        f"/cds-services/{service}", json=hook_request(bundle, hook, extra_context=ctx)
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cards: list[dict[str, Any]] = resp.get_json()["cards"]
    return cards


def kinds(cards: list[dict[str, Any]]) -> list[str]:
    return [str(her2_ext(c)["kind"]) for c in cards]


def rules(cards: list[dict[str, Any]]) -> set[str]:
    return {str(her2_ext(c).get("rule")) for c in cards}
