"""The per-patient random stream every drawing step uses, and the small draws they share.

A `Drawer` holds the stream, the snapshot date and the catalogue's journey shares; the
drawing modules (people, receptors, early_therapy, regimens, lines, sites, toxicity,
comorbidities, her2_metastatic, controls) take it as their first argument, so every draw comes
from the one stream in the same order (same seed and index, same journey).
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from engine.knowledge import Knowledge, load_knowledge
from synthetic.journey import catalogue


def months(n: float) -> timedelta:
    return timedelta(days=round(n * 30.4375))


def pick(rng: random.Random, shares: dict[str, float]) -> str:
    x = rng.random()
    acc = 0.0
    for key, share in shares.items():
        acc += share
        if x < acc:
            return key
    return next(reversed(shares))


def random_days(rng: random.Random, lo: int, hi: int) -> timedelta:
    return timedelta(days=rng.randint(lo, hi))


class Drawer:
    """Draws one journey from a per-patient random stream (reproducible from seed and index)."""

    def __init__(self, rng: random.Random, as_of: date, kb: Knowledge | None = None) -> None:
        self.rng = rng
        self.as_of = as_of
        self.kb = kb or load_knowledge()
        self.cat = catalogue()
        self.p = self.cat["journey"]

    def chance(self, key: str) -> bool:
        return self.rng.random() < float(self.p[key])
