"""Metastatic lines: the planned sequence with its deviations, laid out in time, and restaging."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from synthetic.drawer import Drawer, months, random_days
from synthetic.journey import Journey, Line, catalogue
from synthetic.regimens import courses_for


def duration(rng: random.Random, plan: str) -> float:
    """A line duration in months: lognormal around the trial's median PFS, >= min_line_months."""
    cat = catalogue()
    median = float(cat["pfs_months"].get(plan, 8.0))
    value = median * math.exp(rng.gauss(0.0, 0.55))
    return max(float(cat["min_line_months"]), min(value, 54.0))


def plan_lines(
    dr: Drawer,
    n: int,
    prior0: int,
    hr_pos: bool,
    cns_only: bool,
    ild_before: bool,
    ongoing: bool = False,
) -> list[tuple[str, str]]:
    """(plan, deviation) per line: the guideline sequence, with drawn deviations."""
    rng = dr.rng
    plans: list[tuple[str, str]] = []
    k = prior0
    received: set[str] = set()
    dev_share = float(dr.p["deviation"])
    for i in range(n):
        plan, why = "", ""
        deviate = rng.random() < dev_share
        if deviate and rng.random() < 0.2:
            plan, why = (
                rng.choice(["chemo-only", "endocrine-only" if hr_pos else "chemo-only"]),
                "HER2 blockade not continued",
            )
        elif k == 0:
            plan = "thp"
            if deviate:
                choices = ["tdxd-pertuzumab"] + (["hp-endocrine"] if hr_pos else [])
                plan, why = rng.choice(choices), "first-line alternative"
        elif k == 1:
            plan = "tdxd"
            if "tdxd-pertuzumab" in received:  # T-DXd already given first line (DB-09)
                plan = "tucatinib-trastuzumab-capecitabine" if rng.random() < 0.6 else "tdm1"
            elif ild_before:
                plan = "tdm1"
            elif cns_only and rng.random() < 0.6:
                plan = "tucatinib-trastuzumab-capecitabine"
            elif deviate:
                plan, why = "tdm1", "T-DM1 instead of T-DXd"
        else:
            order = ["tucatinib-trastuzumab-capecitabine", "tdm1", "tdxd"]
            if ild_before:
                order.remove("tdxd")
            given = received | ({"tdxd"} if "tdxd-pertuzumab" in received else set())
            fresh = [p for p in order if p not in given]
            if deviate or not fresh:
                options = [
                    "lapatinib-capecitabine",
                    "trastuzumab-chemo",
                    "neratinib-capecitabine",
                ]
                if k >= 2:
                    options.append("margetuximab-chemo")
                # a regimen that already failed is not given again (trastuzumab + chemotherapy
                # may be, with another partner)
                options = [o for o in options if o not in received] or ["trastuzumab-chemo"]
                plan, why = rng.choice(options), "later-line option"
            else:
                plan = fresh[0]
        if i == n - 1 and k >= 1 and ongoing and rng.random() < 0.03:
            plan, why = "anthracycline-trastuzumab", "anthracycline with trastuzumab"
        plans.append((plan, why))
        received.add(plan)
        if plan not in ("chemo-only", "endocrine-only"):
            k += 1
    return plans


def place_lines(dr: Drawer, j: Journey, plans: list[tuple[str, str]], ongoing: bool) -> date:
    """Lay the lines out backwards from the snapshot; returns the metastatic date."""
    rng = dr.rng
    spans: list[tuple[date, date | None, date | None]] = []  # start, end, progression
    cursor: date | None = None  # start of the following line
    for idx in range(len(plans) - 1, -1, -1):
        plan = plans[idx][0]
        dur = months(duration(rng, plan))
        if cursor is None:  # the last line
            if ongoing:
                elapsed = timedelta(days=rng.randint(45, max(46, dur.days)))
                start = dr.as_of - elapsed
                spans.append((start, None, None))
            else:
                prog = dr.as_of - random_days(rng, 7, 60)
                spans.append((prog - dur, prog, prog))
        else:
            prog = cursor - random_days(rng, 14, 35)
            spans.append((prog - dur, prog, prog))
        cursor = spans[-1][0]
    spans.reverse()
    first = spans[0][0] if spans else dr.as_of - random_days(rng, 0, 10)
    metastatic = first - random_days(rng, 14, 45)
    for number, ((plan, why), (l_start, l_end, l_prog)) in enumerate(
        zip(plans, spans, strict=True), 1
    ):
        line = Line(
            number,
            plan,
            l_start,
            l_end,
            [],
            l_prog,
            "progression" if l_prog else "ongoing",
            why,
        )
        avoid = frozenset(j.lines[-1].drugs) if j.lines else frozenset()
        line.courses = courses_for(dr, j, plan, l_start, l_end, avoid)
        j.lines.append(line)
    return metastatic


def restaging(dr: Drawer, j: Journey) -> None:
    """Restaging every ~3 months (improved / stable) and the progression that ends a line."""
    rng = dr.rng
    for ln in j.lines:
        end = ln.progression or ln.end or dr.as_of
        d = ln.start + random_days(rng, 75, 100)
        while d < end - timedelta(days=20):
            j.assessments.append((d, rng.choice(["improved", "stable", "stable"])))
            d += random_days(rng, 80, 100)
        if ln.progression:
            j.assessments.append((ln.progression, "worsened"))
