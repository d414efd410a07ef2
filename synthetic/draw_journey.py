"""Drawing a journey: the patient's random stream, the kind, the shape, the person, the story."""

from __future__ import annotations

import random
from datetime import date

from synthetic.controls import other_kinds
from synthetic.drawer import Drawer, pick
from synthetic.her2_metastatic import her2_metastatic
from synthetic.journey import STREAM_VERSION, Journey, catalogue
from synthetic.people import person
from synthetic.shapes import overlay, record_end, shape_of, story_constraints


def draw(
    seed: int, index: int, as_of: date, kind: str | None = None, shape: str | None = None
) -> Journey:
    """The journey of patient `index` in the cohort `seed` (same arguments, same journey).

    `kind` and `shape` force the patient kind and the issue-18 shape ("" for none); by default
    both are drawn with the catalogue's shares."""
    rng = random.Random(f"her2-cds-synth:{STREAM_VERSION}:{seed}:{index}")
    chosen = kind or pick(rng, {k: float(v) for k, v in catalogue()["kinds"].items()})
    drawn_shape = shape_of(seed, index, chosen) if shape is None else shape
    until = record_end(seed, index, drawn_shape, as_of)
    record_date = until or as_of  # a stale or deceased record is drawn as it stood then
    d = Drawer(rng, record_date)
    j = person(d, index, chosen)
    if chosen == "her2-metastatic":
        her2_metastatic(d, j, story_constraints(drawn_shape))
    else:
        other_kinds(d, j)
    for course in [*j.early, *(c for ln in j.lines for c in ln.courses)]:
        if course.end is not None and course.end >= record_date:
            course.end = None  # planned to stop after the snapshot: running now
    j.tags.insert(0, chosen)
    j.as_of, j.data_until, j.shape = as_of, until, drawn_shape
    if drawn_shape:
        overlay(d, j, as_of)
    return j
