"""Regimens: the drug courses a metastatic line's plan is given as."""

from __future__ import annotations

from datetime import date, timedelta

from synthetic.drawer import Drawer, random_days
from synthetic.journey import Course, Journey


def courses_for(
    dr: Drawer,
    j: Journey,
    plan: str,
    start: date,
    end: date | None,
    avoid: frozenset[str] = frozenset(),
) -> list[Course]:
    """The drugs of a plan; `avoid`: the previous line's drugs (a failed chemotherapy or
    endocrine pair is not given again as the 'new' line)."""
    rng = dr.rng
    c: list[Course] = []

    def fresh(*options: str) -> str:
        usable = [o for o in options if o not in avoid]
        return rng.choice(usable or list(options))

    def add(drug: str, s: date = start, e: date | None = end) -> None:
        c.append(Course(drug, s, e))

    def capped(days: int) -> date:
        limit = start + timedelta(days=days)
        return limit if end is None or limit < end else end

    if plan == "thp":
        if rng.random() < 0.65:
            taxane_end = capped(21 * 5)
            add("docetaxel", start, taxane_end)
        else:
            taxane_end = capped(7 * rng.randint(11, 17))
            add("paclitaxel", start, taxane_end)
        add("trastuzumab")
        add("pertuzumab")
        if rng.random() < 0.12:
            switch = taxane_end + random_days(rng, 21, 42)
            for course in c:
                if course.drug in ("trastuzumab", "pertuzumab") and switch < (
                    end or dr.as_of
                ) - timedelta(days=21):
                    course.phesgo_from = switch
        recent = end is None and (dr.as_of - start).days < 90  # taxane still running
        concurrent = j.hr_positive and recent and rng.random() < 0.3
        if concurrent:  # deviation: endocrine therapy started with the taxane
            add("letrozole" if j.sex == "female" else "tamoxifen", start)
            j.tags.append("chemo-endocrine-concurrent")
        elif j.hr_positive and rng.random() < float(dr.p["endocrine_maintenance"]):
            e_start = taxane_end + random_days(rng, 28, 49)
            if e_start < (end or dr.as_of) - timedelta(days=30):  # started by the snapshot
                add(
                    "tamoxifen" if j.sex == "male" else rng.choice(["letrozole", "anastrozole"]),
                    e_start,
                )
                j.tags.append("endocrine-maintenance")
    elif plan == "tdxd-pertuzumab":
        add("fam-trastuzumab deruxtecan")
        add("pertuzumab")
    elif plan == "tdxd":
        add("fam-trastuzumab deruxtecan")
    elif plan == "tdm1":
        add("ado-trastuzumab emtansine")
    elif plan == "tucatinib-trastuzumab-capecitabine":
        add("tucatinib")
        add("trastuzumab")
        add("capecitabine")
    elif plan == "lapatinib-capecitabine":
        add("lapatinib")
        add("capecitabine")
    elif plan == "neratinib-capecitabine":
        add("neratinib")
        add("capecitabine")
    elif plan == "margetuximab-chemo":
        add("margetuximab")
        add("capecitabine")
    elif plan == "trastuzumab-chemo":
        add("trastuzumab")
        add(fresh("vinorelbine", "vinorelbine", "eribulin", "gemcitabine"))
    elif plan == "hp-endocrine":
        add("trastuzumab")
        add("pertuzumab")
        add(rng.choice(["letrozole", "anastrozole"]))
    elif plan == "chemo-only":
        add(fresh("capecitabine", "eribulin", "vinorelbine"))
    elif plan == "endocrine-only":
        pairs = [("letrozole", "palbociclib"), ("fulvestrant", "abemaciclib")]
        pair = rng.choice([p for p in pairs if not set(p) & avoid] or pairs)
        for drug in pair:
            add(drug)
    elif plan == "anthracycline-trastuzumab":
        add("doxorubicin")
        add("trastuzumab")
    else:  # pragma: no cover - a plan without courses is a generator bug
        raise ValueError(f"unknown plan {plan}")
    return c
