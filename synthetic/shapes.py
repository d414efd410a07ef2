"""The shapes of issue 18, drawn on top of a journey (catalogue `shapes` and `shape_params`).

Which shape a patient gets comes from its own random stream (`shape_of`), so a patient without
a shape is drawn exactly as before. A shape either constrains the story before it is drawn
(`story_constraints`: an earlier end of the record, an ongoing last line, a KATHERINE relapse)
or is laid over the drawn journey (`overlay`). Each shape says what happened; what follows from
it is the ground truth's business (synthetic/truth.py), from CLINICAL.md.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from synthetic.drawer import Drawer, months, random_days
from synthetic.journey import STREAM_VERSION, Event, Her2Test, Journey, catalogue

HER2_EARLY = frozenset(
    {"trastuzumab", "pertuzumab", "ado-trastuzumab emtansine", "fam-trastuzumab deruxtecan"}
    | {"neratinib", "lapatinib", "tucatinib"}
)
DISTANT = ("liver", "bone", "lung")


def shapes() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = catalogue()["shapes"]
    return data


def params() -> dict[str, Any]:
    data: dict[str, Any] = catalogue()["shape_params"]
    return data


def shape_of(seed: int, index: int, kind: str) -> str:
    """The shape of patient `index` of cohort `seed` ("" for none), from its own stream."""
    rng = random.Random(f"her2-cds-shape:{STREAM_VERSION}:{seed}:{index}")
    x, acc = rng.random(), 0.0
    for name, spec in shapes().items():
        if kind in spec["kinds"]:
            acc += float(spec["share"])
            if x < acc:
                return name
    return ""


def record_end(seed: int, index: int, shape: str, as_of: date) -> date | None:
    """Stale and deceased records stop before the snapshot: the date they stop, else None."""
    rng = random.Random(f"her2-cds-shape-date:{STREAM_VERSION}:{seed}:{index}")
    p = params()
    if shape == "stale":
        lo, hi = p["stale_months"]
        return as_of - months(rng.uniform(float(lo), float(hi)))
    if shape == "deceased":
        if rng.random() < float(p["deceased_long_ago"]):
            return None  # the Synthea shape: died decades ago, yet the record runs to today
        lo, hi = p["deceased_months_before"]
        return as_of - months(rng.uniform(float(lo), float(hi)))
    return None


def overlay(d: Drawer, j: Journey, as_of: date) -> None:
    """Lay the shape over the drawn journey (draws from the patient's stream, after the story)."""
    rng, p = d.rng, params()
    shape = j.shape
    if shape == "admin-only-ongoing":
        _delayed_last_doses(rng, j)
    elif shape == "negated-text":
        _negated_text(rng, j, p)
    elif shape == "deceased":
        if j.data_until is None:
            lo, hi = p["deceased_years_ago"]
            j.deceased_date = as_of - timedelta(days=rng.randint(lo * 365, hi * 365))
            j.tags.append("deceased-long-ago")
        else:
            lo, hi = p["deceased_after_last_data"]
            j.deceased_date = min(
                j.data_until + timedelta(days=rng.randint(lo, hi)), as_of - timedelta(1)
            )
        j.deceased = "boolean" if rng.random() < float(p["deceased_boolean"]) else "datetime"
    elif shape == "paediatric":
        lo, hi = p["paediatric_age"]
        j.birth_date = as_of - timedelta(days=rng.randint(lo, hi) * 365 + rng.randint(5, 300))
    elif shape == "pregnancy":
        lo, hi = p["pregnancy_age"]
        j.birth_date = as_of - timedelta(days=rng.randint(lo, hi) * 365 + rng.randint(5, 300))
        onset = as_of - random_days(rng, 14, 120)
        kind = "hcg-positive" if rng.random() < float(p["pregnancy_hcg"]) else "pregnancy"
        j.events.append(Event(kind, onset))
    elif shape in ("her2-discordance", "her2-conversion"):
        _discordance(rng, j, p, conversion=shape == "her2-conversion")
    j.tags.append(f"shape:{shape}")


def _delayed_last_doses(rng: random.Random, j: Journey) -> None:
    """Every ongoing course of the last line: the last dose one interval late, yet within
    interval + grace (CLINICAL.md 2.5: q3w within 42 days, weekly 14, oral 30)."""
    cat = catalogue()["drugs"]
    line = j.lines[-1]
    for c in line.courses:
        if c.end is not None:
            continue
        cycle = int(cat[c.drug]["cycle_days"])
        if cat[c.drug]["route"] == "oral":
            gap = rng.randint(1, min(cycle, 30) - 3)
        else:
            gap = rng.randint(cycle + 1, 2 * cycle - 3)
        c.last_dose = max(j.as_of - timedelta(days=gap), c.start)


def _negated_text(rng: random.Random, j: Journey, p: dict[str, Any]) -> None:
    """One to three free-text problem entries that negate or doubt a fact."""
    phrases = p["negated_text"]
    about = ["metastasis"] if j.metastatic_since is None else ["ild", "brain"]
    if j.metastatic_since is not None and not j.de_novo:
        about.append("metastasis")  # the staging note of the early disease, years before
    start = j.diagnosis or j.as_of - timedelta(days=200)
    for topic in about:
        lo, hi = start, j.as_of - timedelta(days=5)
        if topic == "metastasis" and j.metastatic_since is not None:
            hi = j.metastatic_since - timedelta(days=30)  # before the metastasis, as written
        for mode in ("negated", "uncertain"):
            options = phrases[topic].get(mode, [])
            if options and hi > lo and rng.random() < 0.6:
                onset = lo + timedelta(days=rng.randint(0, (hi - lo).days))
                j.events.append(
                    Event(f"text-{topic}", onset, "active", mode, text=rng.choice(options))
                )
    if not any(e.kind.startswith("text-") for e in j.events):
        topic = about[0]
        j.events.append(
            Event(f"text-{topic}", j.as_of - timedelta(days=30), "active", "negated",
                  text=phrases[topic]["negated"][0])
        )  # fmt: skip


def _discordance(rng: random.Random, j: Journey, p: dict[str, Any], conversion: bool) -> None:
    """A metastatic biopsy that disagrees with the primary: HER2 lost (positive primary, negative
    metastasis) or gained (conversion: negative primary, positive metastasis)."""
    assert j.metastatic_since is not None
    metastatic = j.metastatic_since
    j.her2_tests = [t for t in j.her2_tests if t.specimen != "metastatic"]
    j.tags = [t for t in j.tags if t not in ("her2-metastatic-biopsy", "her2-loss-on-metastasis")]
    if conversion:
        # the primary was HER2-negative, so no HER2-directed early therapy was given
        first = min(t.when for t in j.her2_tests)
        j.her2_tests = [Her2Test(first, "ihc", rng.choice(["1+", "0"]), "primary")]
        j.her2_condition, j.her2_condition_date = "", None
        j.early = [c for c in j.early if c.drug not in HER2_EARLY]
    site = next((s.kind for s in j.sites if s.kind in DISTANT), "")
    if not site:
        site = rng.choice(DISTANT)
        j.sites.append(Event(site, metastatic))
    first_primary = min(t.when for t in j.her2_tests)
    when = max(metastatic - random_days(rng, 2, 10), first_primary + timedelta(days=1))
    specimen = rng.random() < float(p["discordance_specimen_resource"])
    if conversion:
        method = rng.choice(["ihc", "ish"])
        result = "3+" if method == "ihc" else "positive"
    else:
        method, result = rng.choice([("ihc", "1+"), ("ihc", "0"), ("ish", "negative")])
    j.her2_tests.append(Her2Test(when, method, result, "metastatic", site, specimen))


def story_constraints(shape: str) -> dict[str, Any]:
    """What a shape fixes in the story before it is drawn (her2_metastatic reads these)."""
    if shape == "admin-only-ongoing":
        return {"min_lines": 1, "ongoing": True}
    if shape == "early-relapse-tdm1":
        return {"lines": 0, "de_novo": False, "early_relapse": True, "katherine": True}
    if shape == "her2-conversion":
        return {"de_novo": False, "early_relapse": False}
    if shape == "her2-discordance":
        return {"rebiopsy": False}
    return {}
