"""(Neo)adjuvant therapy of early disease: the HER2-directed schema and adjuvant endocrine."""

from __future__ import annotations

from datetime import date, timedelta

from synthetic.drawer import Drawer, months, random_days
from synthetic.journey import Course, Journey
from synthetic.receptors import her2_positive_tests


def early_therapy(
    dr: Drawer,
    j: Journey,
    start: date,
    hr_pos: bool,
    katherine: bool = True,
    force_katherine: bool = False,
) -> date:
    """(Neo)adjuvant HER2-directed therapy from `start`; returns the last HER2-directed date."""
    rng = dr.rng
    schemas = ["tchp", "tchp", "ac-th", "th"] + (["tchp-katherine"] if katherine else [])
    schema = rng.choice(schemas)
    if force_katherine:
        schema = "tchp-katherine"
    courses: list[Course] = []
    if schema in ("tchp", "tchp-katherine"):
        chemo_end = start + timedelta(days=21 * 5)
        for drug in ("docetaxel", "carboplatin"):
            courses.append(Course(drug, start, chemo_end, "early"))
        antibody_start = start
    elif schema == "ac-th":
        ac_end = start + timedelta(days=21 * 3)
        courses += [Course(d, start, ac_end, "early") for d in ("doxorubicin", "cyclophosphamide")]
        antibody_start = ac_end + timedelta(
            days=21 + rng.randint(14, 28)
        )  # sequential, never concurrent
        courses.append(
            Course("paclitaxel", antibody_start, antibody_start + timedelta(days=7 * 11), "early")
        )
    else:
        antibody_start = start
        courses.append(Course("paclitaxel", start, start + timedelta(days=7 * 11), "early"))
    if schema == "tchp-katherine":  # residual disease after neoadjuvant: T-DM1 x14 (KATHERINE)
        her2_end = antibody_start + timedelta(days=21 * 5)
        courses.append(Course("trastuzumab", antibody_start, her2_end, "early"))
        courses.append(Course("pertuzumab", antibody_start, her2_end, "early"))
        surgery = her2_end + random_days(rng, 28, 42)
        tdm1_end = surgery + timedelta(days=21 * 13)
        courses.append(Course("ado-trastuzumab emtansine", surgery, tdm1_end, "early"))
        j.tags.append("katherine-tdm1")
        last = tdm1_end
    else:
        her2_end = antibody_start + timedelta(days=21 * 17)  # one year of trastuzumab
        courses.append(Course("trastuzumab", antibody_start, her2_end, "early"))
        if schema == "tchp":
            courses.append(Course("pertuzumab", antibody_start, her2_end, "early"))
        last = her2_end
    if hr_pos:
        drug = "tamoxifen" if j.sex == "male" or rng.random() < 0.3 else "letrozole"
        courses.append(Course(drug, her2_end + random_days(rng, 7, 30), None, "early"))
        if schema != "tchp-katherine" and rng.random() < 0.25:  # ExteNET extended adjuvant
            courses.append(Course("neratinib", her2_end + random_days(rng, 14, 40), None, "early"))
    j.early = courses
    j.tags.append(f"early-{schema}")
    return last


def close_early(dr: Drawer, j: Journey, until: date) -> None:
    """Open-ended early courses (endocrine, neratinib) stop at relapse or after their term."""
    for c in j.early:
        if c.end is None:
            term = 365 if c.drug == "neratinib" else 5 * 365
            c.end = min(c.start + timedelta(days=term), until - random_days(dr.rng, 3, 10))
            c.end = max(c.end, c.start + timedelta(days=30))


def relapse_after_early_disease(
    dr: Drawer, j: Journey, metastatic: date, early_relapse: bool, katherine: bool = False
) -> None:
    """Early disease years before the metastasis: diagnosis, HER2 tests and (neo)adjuvant therapy
    ending a drawn interval before the relapse (early: 3-10 months, late: 15-72)."""
    rng = dr.rng
    # early disease years before, (neo)adjuvant therapy, relapse after a drawn interval
    # outside the early-relapse-tdm1 shape, relapse after KATHERINE T-DM1 is drawn late only;
    # `katherine`: the shape, a relapse within months of the last adjuvant T-DM1 dose
    last_her2 = early_therapy(
        dr, j, date(2000, 1, 1), j.hr_positive, not early_relapse, force_katherine=katherine
    )
    katherine = "katherine-tdm1" in j.tags
    interval = (
        months(rng.uniform(3, 10))
        if early_relapse
        else months(rng.uniform(15 if not katherine else 16, 72))
    )
    shift = (metastatic - interval) - last_her2
    for c in j.early:
        c.start += shift
        if c.end is not None:
            c.end += shift
    close_early(dr, j, metastatic)
    start = min(c.start for c in j.early)
    j.diagnosis = start - random_days(rng, 14, 35)
    j.stage = rng.choice(["1A", "2A", "2B", "3A", "3C"])
    her2_positive_tests(dr, j, j.diagnosis - random_days(rng, 0, 7))
    j.tags.append("early-relapse" if early_relapse else "late-relapse")
