"""The published feedback timestamp pattern (feedback.schema.json, so /openapi.json) accepts
exactly the date-times the service parses: no month 00/13, day 00/32, 31 April or 29 February
of a common year, hour 24, year 0000."""

from __future__ import annotations

import calendar
import re
from datetime import datetime

from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from cds_service.api.validation import load_schema

PATTERN = re.compile(
    load_schema("feedback.schema.json")["$defs"]["item"]["properties"]["outcomeTimestamp"][
        "pattern"
    ]
)


def parses(text: str) -> bool:
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def test_the_pattern_knows_every_month_length_of_every_year() -> None:
    for year in range(1, 10000):
        for month in (2, 4, 12):
            for day in (28, 29, 30, 31, 32):
                text = f"{year:04d}-{month:02d}-{day:02d}T00:00:00Z"
                real = day <= calendar.monthrange(year, month)[1]
                assert bool(PATTERN.search(text)) == real, text


@given(
    st.one_of(st.integers(0, 10000), st.sampled_from([1900, 2000, 2024, 2026])),
    st.one_of(st.integers(0, 13), st.sampled_from([2, 4, 6, 9, 11])),
    st.one_of(st.integers(0, 32), st.integers(28, 31)),  # month ends are where it goes wrong
    st.tuples(st.integers(0, 25), st.integers(0, 61), st.integers(0, 61)),
    st.sampled_from(["", ".5", ".123456789"]),
    st.one_of(st.sampled_from(["Z", "z"]), st.tuples(st.sampled_from("+-"), st.integers(0, 25))),
)
def test_the_pattern_accepts_what_the_service_parses(
    year: int,
    month: int,
    day: int,
    clock: tuple[int, int, int],
    fraction: str,
    zone: str | tuple[str, int],
) -> None:
    offset = zone if isinstance(zone, str) else f"{zone[0]}{zone[1]:02d}:30"
    text = f"{year:04d}-{month:02d}-{day:02d}T{clock[0]:02d}:{clock[1]:02d}:{clock[2]:02d}"
    text += fraction + offset
    assert bool(PATTERN.search(text)) == parses(text), text


def test_an_impossible_day_is_refused_by_the_schema_and_by_the_service(
    client: FlaskClient,
) -> None:
    item = {"card": "c-1", "outcome": "overridden", "overrideReason": {"userComment": "no"}}
    for when in ("2026-02-29T10:00:00Z", "2026-04-31T10:00:00Z", "2026-02-30T10:00:00Z"):
        assert PATTERN.search(when) is None, when
        resp = client.post(
            "/cds-services/her2-next-line/feedback",
            json={"feedback": [{**item, "outcomeTimestamp": when}]},
        )
        assert resp.status_code == 400, when
    leap = "2028-02-29T10:00:00Z"
    assert PATTERN.search(leap)
    resp = client.post(
        "/cds-services/her2-next-line/feedback",
        json={"feedback": [{**item, "outcomeTimestamp": leap}]},
    )
    assert resp.status_code == 200
