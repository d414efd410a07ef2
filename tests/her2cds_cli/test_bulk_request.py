"""What `her2-cds export` asks the server for, and the small readers under it."""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.model import PatientRecord
from fhir_mappers.record import build_record
from her2cds_cli.bulk.download import LineCounter
from her2cds_cli.bulk.request import currency_cutoff, kickoff_params, kickoff_path
from her2cds_cli.bulk.transport import retry_after
from tests.bulk_server import selected
from tests.conftest import SYNTHEA, needs_shared


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"]]


def test_kickoff_asks_for_ndjson_of_the_types_and_codes_the_engine_reads() -> None:
    params = kickoff_params()
    assert ("_outputFormat", "application/fhir+ndjson") in params
    (types,) = [v.split(",") for k, v in params if k == "_type"]
    # CLINICAL.md section 1: receptors, LVEF, staging from Observations; therapy from the
    # medication resources; HER2 from a Specimen's site
    assert {"Patient", "Condition", "Observation", "MedicationRequest", "Specimen"} <= set(types)
    assert "Encounter" not in types and "Procedure" not in types
    filters = [v for k, v in params if k == "_typeFilter"]
    (codes,) = [f.split("=", 1)[1].split(",") for f in filters if f.startswith("Observation?code=")]
    # HER2 IHC and ISH, ER, PR, LVEF (echo and MUGA), TNM M, stage group, disease status
    for code in ("85319-2", "85318-4", "85337-4", "85339-0", "10230-1", "21907-1", "21908-9",
                 "97509-4", "1287652008"):  # fmt: skip
        assert code in codes, code
    assert "Observation?component-code=" in ",".join(filters)  # LVEF inside an echo panel
    assert [k for k, _ in kickoff_params(type_filter=False)] == ["_outputFormat", "_type"]


def test_kickoff_path() -> None:
    assert kickoff_path(None) == "Patient/$export"
    assert kickoff_path("her2 cohort/1") == "Group/her2%20cohort%2F1/$export"


def _without_newest(record: PatientRecord) -> PatientRecord:
    issues = tuple(i for i in record.data_issues if not i.message.startswith("inconsistent"))
    return replace(record, newest_data_date=None, newest_data_source_id="", data_issues=issues)


@needs_shared(SYNTHEA)
def test_the_filtered_export_loses_nothing_the_engine_reads_from_synthea_records() -> None:
    """Every Synthea mCODE record gives the same picture from what the export asks for as from
    the whole record, evaluated on the day of its newest data (so that a vital sign or a lab
    the engine does not read may be what keeps the record current). The filter is applied as
    a FHIR server applies it: code tokens of any system, dates with `ge`.

    Evaluated later, once the record is stale either way, the same picture but for the date of
    the newest data (and the death-date check built on it): that may be an older one, as an
    Observation the engine does not read and older than the window is not exported."""
    paths = sorted(SYNTHEA.glob("*.json.gz"))[:20]
    assert paths
    dropped = 0
    for path in paths:
        everything = _resources(orjson.loads(gzip.decompress(path.read_bytes())))
        newest = build_record(everything, as_of=date(2100, 1, 1)).newest_data_date
        assert newest is not None
        kept = [r for r in everything if selected(r, kickoff_params(as_of=newest))]
        dropped += len(everything) - len(kept)
        full, part = build_record(everything, as_of=newest), build_record(kept, as_of=newest)
        assert part == full, path.name
        later = newest + timedelta(days=600)  # past the 18 months: stale
        kept = [r for r in everything if selected(r, kickoff_params(as_of=later))]
        full, part = build_record(everything, as_of=later), build_record(kept, as_of=later)
        assert _without_newest(part) == _without_newest(full), path.name
        cutoff = currency_cutoff(later)
        assert (part.newest_data_date or cutoff) < cutoff and (
            full.newest_data_date or cutoff
        ) < cutoff
    assert dropped > 0  # the filter does filter


def test_the_currency_window_follows_the_parameter() -> None:
    """CLINICAL.md: current when the newest clinical resource is at most 18 months old."""
    filters = [v for k, v in kickoff_params(as_of=date(2026, 11, 1)) if k == "_typeFilter"]
    assert "Observation?date=ge2025-05-01" in filters
    assert "Observation?_lastUpdated=ge2025-05-01" in filters


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), (" 0 ", 0.0), (None, None), ("", None), ("soon", None), ("-5", None)],
)
def test_retry_after_in_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after(header, now=0.0) == expected


def test_retry_after_as_an_http_date() -> None:
    now = 1_780_000_000.0
    from email.utils import formatdate

    assert retry_after(formatdate(now + 90, usegmt=True), now) == pytest.approx(90, abs=1)
    assert retry_after(formatdate(now - 90, usegmt=True), now) == 0.0  # already past


@given(
    st.lists(st.text(alphabet="ab{}\n", max_size=12), max_size=8),
    st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=5),
)
def test_line_counter_counts_non_empty_lines_whatever_the_chunking(
    pieces: list[str], cuts: list[int]
) -> None:
    data = "".join(pieces).encode()
    counter, i, k = LineCounter(), 0, 0
    while i < len(data):
        step = cuts[k % len(cuts)]
        counter.feed(data[i : i + step])
        i, k = i + step, k + 1
    expected = sum(1 for line in data.split(b"\n") if line)
    ended = sum(1 for line in data.split(b"\n")[:-1] if line)
    assert counter.lines == ended
    assert counter.lines + counter.open_line == expected
