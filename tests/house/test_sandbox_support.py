"""The pieces of the sandbox browser tests that need no browser: the FHIR server's CORS and
search shapes (as the CDS Hooks sandbox uses them) and moving a fixture's dates."""

from __future__ import annotations

from datetime import date

import requests

from tests.conftest import load_fixture
from tests.sandbox_support import CorsFhirServer, made_current, shifted


def test_shifted_moves_every_date_by_one_offset_and_keeps_times() -> None:
    bundle = {"a": "2020-01-10", "b": [{"c": "2020-03-01T10:00:00Z"}], "d": "not a date"}
    out = shifted(bundle, date(2021, 3, 1))
    # 51 days apart (2020 is a leap year) before and after
    assert out == {"a": "2021-01-09", "b": [{"c": "2021-03-01T10:00:00Z"}], "d": "not a date"}


def test_made_current_ends_two_weeks_before_the_month_and_keeps_intervals() -> None:
    fixture = load_fixture("her2_ild_after_thp")
    out = made_current(fixture, today=date(2031, 7, 19))
    assert made_current(fixture, today=date(2031, 7, 2)) == out  # the same all month
    ms = {r["resource"]["id"]: r["resource"] for r in out["entry"]}
    before = {r["resource"]["id"]: r["resource"] for r in fixture["entry"]}
    start, end = (
        date.fromisoformat(ms["ms-19"]["effectivePeriod"][k][:10]) for k in ("start", "end")
    )
    start0, end0 = (
        date.fromisoformat(before["ms-19"]["effectivePeriod"][k][:10]) for k in ("start", "end")
    )
    assert end - start == end0 - start0 and end == date(2031, 6, 17)


def test_the_fhir_server_answers_preflight_post_search_and_get_alike() -> None:
    fixture = load_fixture("her2_ild_after_thp")
    server = CorsFhirServer([e["resource"] for e in fixture["entry"]]).start()
    try:
        url = f"{server.url}/Condition/_search"
        pre = requests.options(
            url,
            headers={
                "Origin": "http://127.0.0.1:8085",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
            timeout=5,
        )
        assert pre.status_code == 204
        assert pre.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert "content-type" in pre.headers["Access-Control-Allow-Headers"]
        posted = requests.post(url, data={"patient": "ild"}, timeout=5)
        got = requests.get(f"{server.url}/Condition", params={"patient": "ild"}, timeout=5)
        assert posted.status_code == got.status_code == 200
        assert posted.headers["Access-Control-Allow-Origin"] == "*"
        assert posted.json() == got.json() and posted.json()["total"] == 3
        meta = requests.get(f"{server.url}/metadata", timeout=5).json()
        assert meta["resourceType"] == "CapabilityStatement" and meta["fhirVersion"] == "4.0.1"
        assert server.posts == ["/fhir/Condition/_search"]
    finally:
        server.stop()
