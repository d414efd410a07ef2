"""Drawing a journey: the patient's random stream, the kind, the person, then the kind's story."""

from __future__ import annotations

import random
from datetime import date

from synthetic.controls import other_kinds
from synthetic.drawer import Drawer, pick
from synthetic.her2_metastatic import her2_metastatic
from synthetic.journey import GENERATOR_VERSION, Journey, catalogue
from synthetic.people import person


def draw(seed: int, index: int, as_of: date, kind: str | None = None) -> Journey:
    """The journey of patient `index` in the cohort `seed` (same arguments, same journey)."""
    rng = random.Random(f"her2-cds-synth:{GENERATOR_VERSION}:{seed}:{index}")
    d = Drawer(rng, as_of)
    chosen = kind or pick(rng, {k: float(v) for k, v in catalogue()["kinds"].items()})
    j = person(d, index, chosen)
    if chosen == "her2-metastatic":
        her2_metastatic(d, j)
    else:
        other_kinds(d, j)
    for course in [*j.early, *(c for ln in j.lines for c in ln.courses)]:
        if course.end is not None and course.end >= as_of:
            course.end = None  # planned to stop after the snapshot: running now
    j.tags.insert(0, chosen)
    return j
