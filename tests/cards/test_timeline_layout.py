"""The timeline's merge and label-placement functions, without a browser (issue 22): events of
one kind on one date are drawn once with their records; LVEF labels go to the first, last,
lowest and out-of-range points only; labels placed in lanes or boxes never overlap; the
thresholds are the knowledge base's."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from cards.timeline import thresholds, timeline_page
from cards.timeline_layout import (
    Box,
    first_free,
    lanes,
    lvef_labelled,
    lvef_points,
    merge_events,
    text_width,
    wrap,
)
from engine import load_knowledge
from fhir_mappers import build_record
from tests.timeline_records import DENSE_AS_OF, DUPLICATES_AS_OF, dense, duplicate_progressions


def test_duplicate_progressions_merge_into_one_event_with_every_record() -> None:
    record = build_record(duplicate_progressions(), patient_id="p1", as_of=DUPLICATES_AS_OF)
    assert len(record.progressions) == 3
    (event,) = merge_events(record)
    assert event.label == "progression 2024-03-24 (3 records)"
    assert len(event.sources) == 3
    assert {what for _, what in event.sources} == {
        "stopped for no response",
        "disease status: worsened",
    }
    assert all(sid in event.title for sid, _ in event.sources)


def test_events_of_different_kinds_or_dates_stay_apart() -> None:
    record = build_record(dense(), patient_id="p1", as_of=DENSE_AS_OF)
    events = merge_events(record)
    keys = [(e.day, e.kind) for e in events]
    assert keys == sorted(set(keys))
    assert [e.label for e in events if e.day == date(2022, 2, 10)] == [
        "progression 2022-02-10 (2 records)"
    ]
    assert "ILD 2022-12-20" in [e.label for e in events]


def test_lvef_labels_only_first_last_lowest_and_under_the_threshold() -> None:
    record = build_record(dense(), patient_id="p1", as_of=DENSE_AS_OF)
    points = lvef_points(record.lvef)
    chosen = lvef_labelled(points, 50.0)
    values = [p.value for p in points]
    assert chosen[0] == values.index(min(values))
    assert {len(points) - 1, 0} <= set(chosen)
    assert all(points[i].value < 50 for i in chosen[3:])
    unlabelled = [p for i, p in enumerate(points) if i not in chosen]
    assert unlabelled and all(p.value >= 50 for p in unlabelled)


def test_the_same_lvef_recorded_twice_is_one_point() -> None:
    record = build_record(dense(), patient_id="p1", as_of=DENSE_AS_OF)
    twice = replace(record, lvef=(*record.lvef, replace(record.lvef[0], source_id="Obs/x")))
    points = lvef_points(twice.lvef)
    assert len(points) == len(record.lvef)
    assert points[0].source_ids[-1] == "Obs/x"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(1, 300)), max_size=40))
def test_spans_in_one_lane_never_overlap(items: list[tuple[float, float]]) -> None:
    spans = [(x, x + w) for x, w in items]
    lane_of = lanes(spans, gap=6)
    assert len(lane_of) == len(spans)
    for i, (a, b) in enumerate(spans):
        for j in range(i):
            c, d = spans[j]
            if lane_of[i] == lane_of[j]:
                assert b + 6 <= c or d + 6 <= a


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 400), st.floats(0, 100)), max_size=30))
def test_placed_boxes_never_overlap_and_stay_inside(points: list[tuple[float, float]]) -> None:
    area = Box(0, 0, 400, 100)
    placed: list[Box] = []
    for x, y in points:
        w = text_width("48%", 11)
        candidates = (
            Box(x + 6, y - 19, w, 13),
            Box(x - 6 - w, y - 19, w, 13),
            Box(x + 6, y + 5, w, 13),
        )
        box = first_free(candidates, placed, area)
        if box is not None:
            assert box.inside(area) and not any(box.overlaps(p) for p in placed)
            placed.append(box)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet="abcdefghij +()-0123456789", min_size=1, max_size=60),
        min_size=1,
        max_size=5,
    ),
    st.floats(40, 600),
)
def test_wrapped_lines_fit_their_width(parts: list[str], width: float) -> None:
    for line in wrap(parts, width, 11):
        assert text_width(line, 11) <= width + 1e-6


def test_text_width_grows_with_text_and_size() -> None:
    assert text_width("progression 2025-03-24", 11) > text_width("progression", 11) > 0
    assert text_width("50%", 12) > text_width("50%", 11)
    assert text_width("Line 1", 12, bold=True) > text_width("Line 1", 12)


def test_thresholds_are_the_cardiac_rules_values() -> None:
    kb = load_knowledge()
    drawn = [t.value for t in thresholds(kb)]
    assert drawn == [kb.param("cardiac", "lvef_low"), kb.param("cardiac", "lvef_critical")]


def test_a_different_threshold_in_the_knowledge_base_is_drawn() -> None:
    kb = load_knowledge()
    params = {**kb.parameters, "cardiac": {**kb.parameters["cardiac"], "lvef_low": 53}}
    other = replace(kb, parameters=params)
    record = build_record(dense(), patient_id="p1", as_of=DENSE_AS_OF)
    page = timeline_page(record, "v", knowledge=other)
    label = 'class="threshold-label">{}%</text>'
    assert label.format(53) in page and label.format(50) not in page
    assert "LVEF under 53%" in page
    assert label.format(50) in timeline_page(record, "v")


def test_every_picture_is_drawn_at_11_px_or_more() -> None:
    record = build_record(dense(), patient_id="p1", as_of=DENSE_AS_OF)
    page = timeline_page(record, "v")
    sizes = {int(s) for s in re.findall(r'<text[^>]* font-size="(\d+)"', page)}
    assert sizes and min(sizes) >= 11
    assert len(re.findall(r"<svg ", page)) >= 3  # one per width range
    assert page.count("<desc id=") == page.count("<svg ")
