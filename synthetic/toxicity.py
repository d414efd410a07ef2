"""Toxicities of HER2-directed therapy: pneumonitis on T-DXd, LVEF drops and heart failure."""

from __future__ import annotations

from datetime import date, timedelta

from synthetic.drawer import Drawer, random_days
from synthetic.journey import Event, Journey, Line
from synthetic.regimens import courses_for

_HER2_DIRECTED = frozenset(
    {
        "trastuzumab",
        "pertuzumab",
        "ado-trastuzumab emtansine",
        "fam-trastuzumab deruxtecan",
        "tucatinib",
        "lapatinib",
        "neratinib",
        "margetuximab",
    }
)
_CARDIO_MONITORED = frozenset(
    {"trastuzumab", "pertuzumab", "ado-trastuzumab emtansine", "fam-trastuzumab deruxtecan"}
)


def pneumonitis_on_tdxd(dr: Drawer, j: Journey) -> None:
    """Drug-induced pneumonitis on T-DXd: stop the line (grade 2+) or resume (grade 1)."""
    rng = dr.rng
    for i, line in enumerate(j.lines):
        if "fam-trastuzumab deruxtecan" not in line.drugs or not dr.chance("ild_on_tdxd"):
            continue
        span_end = line.end or dr.as_of
        if (span_end - line.start).days < 170:
            continue
        onset = line.start + random_days(rng, 140, (span_end - line.start).days - 20)
        if dr.chance("ild_on_tdxd_rechallenged"):
            j.events.append(Event("ild-drug", onset, "resolved"))
            j.tags.append("ild-on-tdxd-rechallenged")
            continue
        j.events.append(Event("ild-drug", onset, rng.choice(["active", "resolved"])))
        j.tags.append("ild-on-tdxd-stopped")
        stop = onset + random_days(rng, 0, 6)
        line.end, line.progression, line.stop_reason = stop, None, "pneumonitis"
        for c in line.courses:
            c.end = stop
        # the rest of the journey shifts: later lines start 4-10 weeks after the stop
        if i + 1 < len(j.lines):
            del j.lines[i + 1 :]
            if rng.random() < 0.7:
                nxt_start = stop + random_days(rng, 30, 70)
                if nxt_start < dr.as_of - timedelta(days=30):
                    plan = "tucatinib-trastuzumab-capecitabine"
                    if plan in {ln.plan for ln in j.lines}:
                        plan = "tdm1"
                    nl = Line(
                        len(j.lines) + 1,
                        plan,
                        nxt_start,
                        None,
                        [],
                        None,
                        "ongoing",
                        "after pneumonitis",
                    )
                    nl.courses = courses_for(dr, j, plan, nxt_start, None)
                    j.lines.append(nl)
        break


def lvef_series(dr: Drawer, j: Journey, start: date, end: date, base: int) -> None:
    """An LVEF every ~3 months on HER2-directed therapy (with missed scans), small drift."""
    d = start
    while d <= end:
        j.lvef.append((d, base + dr.rng.randint(-4, 3)))
        d += random_days(dr.rng, 80, 100)


def cardiac(dr: Drawer, j: Journey) -> None:
    """LVEF baseline before HER2 therapy, ~3-monthly on it; drops and heart failure."""
    rng = dr.rng
    her2_courses = [
        c
        for c in (*j.early, *(c for ln in j.lines for c in ln.courses))
        if c.drug in _CARDIO_MONITORED
    ]
    if not her2_courses:
        return
    base = rng.randint(55, 70)
    first = min(c.start for c in her2_courses)
    j.lvef.append((first - random_days(rng, 5, 25), base))
    for c in sorted(her2_courses, key=lambda c: c.start):
        end = c.end or dr.as_of
        lvef_series(dr, j, c.start + random_days(rng, 80, 100), end, base)
    j.lvef = sorted({d: v for d, v in j.lvef}.items())
    current = j.lines[-1] if j.lines and j.lines[-1].end is None else None
    on_her2 = current is not None and any(d in _HER2_DIRECTED for d in current.drugs)
    j.lvef = [(d, v) for d, v in j.lvef if d <= dr.as_of - timedelta(days=1)]
    # keep the latest LVEF clearly inside or clearly outside the 3-month window
    if on_her2 and dr.chance("lvef_overdue"):
        j.lvef = [(d, v) for d, v in j.lvef if d <= dr.as_of - timedelta(days=110)]
        j.tags.append("lvef-overdue")
    elif on_her2:
        j.lvef = [(d, v) for d, v in j.lvef if d <= dr.as_of - timedelta(days=110)]
        j.lvef.append((dr.as_of - random_days(rng, 5, 70), base + rng.randint(-4, 3)))
    if j.lvef and len(j.lvef) > 1 and dr.chance("lvef_drop"):
        d, _ = j.lvef[-1]
        kind = rng.choice(["under-50", "drop-16", "under-40"])
        value = {"under-50": rng.randint(41, 47), "under-40": rng.randint(28, 37)}.get(kind, 0)
        if kind == "drop-16":  # a high baseline, a drop of 18-20 points, still >= 52%
            # the whole series sits near the high baseline, so the drop is >= 16 points from
            # any baseline (the first value, the one before the current line, the maximum)
            high = rng.randint(72, 76)
            j.lvef = [(dd, high + rng.randint(-2, 1)) for dd, _ in j.lvef]
            j.lvef[0] = (j.lvef[0][0], high)
            value = high - 2 - rng.randint(18, 20)
        j.lvef[-1] = (d, value)
        j.tags.append(f"lvef-{kind}")
    # keep baseline-to-latest clear of the 16-point and 50% boundaries when no drop is drawn
    if j.lvef and not any(t.startswith("lvef-") and t != "lvef-overdue" for t in j.tags):
        j.lvef = [(d, max(min(v, base + 3), base - 8, 53)) for d, v in j.lvef]
    if rng.random() < float(dr.p["heart_failure"]):
        onset = (j.lines[-1].start if j.lines else (j.metastatic_since or dr.as_of)) + random_days(
            rng, 20, 40
        )
        onset = min(onset, dr.as_of - timedelta(days=5))
        j.events.append(Event(rng.choice(["heart-failure", "hfref", "cardiomyopathy"]), onset))
        j.tags.append("heart-failure")
