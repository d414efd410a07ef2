"""Controls and data-quality cases: every kind of patient that is not a full HER2-positive
metastatic journey (HER2-negative, HER2-low, equivocal, HER2 missing, early only, other cancers)."""

from __future__ import annotations

from datetime import timedelta

from synthetic.drawer import Drawer, months, random_days
from synthetic.early_therapy import early_therapy
from synthetic.journey import Course, Event, Her2Test, Journey, Line
from synthetic.receptors import her2_positive_tests, hormone_receptors
from synthetic.regimens import courses_for


def other_kinds(d: Drawer, j: Journey) -> None:
    """Controls and data-quality cases: HER2-negative, HER2-low, equivocal, missing, early, other cancers."""
    rng, as_of = d.rng, d.as_of
    kind = j.kind
    if kind == "non-breast":
        j.cancer = rng.choice(["stomach", "stomach", "lung", "colon"])
        j.diagnosis = as_of - random_days(rng, 200, 1500)
        j.metastatic_since = j.diagnosis + random_days(rng, 0, 300)
        j.sites.append(Event(rng.choice(["liver", "lung", "bone"]), j.metastatic_since))
        if j.cancer == "stomach":  # HER2-positive gastric cancer: trastuzumab, then T-DXd 6.4 mg/kg
            s = j.metastatic_since + random_days(rng, 14, 30)
            e = s + months(rng.uniform(5, 12))
            if e < as_of - timedelta(days=60):
                j.lines.append(
                    Line(
                        1,
                        "gastric",
                        s,
                        e,
                        [Course("trastuzumab", s, e), Course("capecitabine", s, e)],
                        e,
                        "progression",
                    )
                )
                s2 = e + random_days(rng, 14, 30)
                j.lines.append(
                    Line(2, "gastric", s2, None, [Course("fam-trastuzumab deruxtecan", s2, None)])
                )
                j.assessments.append((e, "worsened"))
        j.events.append(Event("hypertension", j.diagnosis - random_days(rng, 300, 2000)))
        return
    j.diagnosis = as_of - random_days(rng, 60, 2500)
    if kind in ("her2-negative", "her2-low-tdxd"):
        low = kind == "her2-low-tdxd" or rng.random() < 0.5
        if low and rng.random() < 0.5:
            j.her2_tests += [
                Her2Test(j.diagnosis, "ihc", "2+", "primary"),
                Her2Test(j.diagnosis + random_days(rng, 3, 12), "ish", "negative", "primary"),
            ]
        else:
            j.her2_tests.append(Her2Test(j.diagnosis, "ihc", "1+" if low else "0", "primary"))
        if rng.random() < 0.3:
            j.her2_condition = "negative"
            j.her2_condition_date = j.her2_tests[0].when
        hormone_receptors(d, j, 0.75)
        metastatic = kind == "her2-low-tdxd" or rng.random() < 0.6
        if metastatic:
            j.metastatic_since = j.diagnosis + random_days(rng, 0, 900)
            if j.metastatic_since > as_of - timedelta(days=200):
                j.metastatic_since = as_of - random_days(rng, 200, 400)
                j.diagnosis = min(j.diagnosis, j.metastatic_since)
            j.stage = "4" if j.metastatic_since == j.diagnosis else "2A"
            j.sites += [
                Event(s, j.metastatic_since) for s in rng.sample(["bone", "liver", "lung"], 2)
            ]
            s = j.metastatic_since + random_days(rng, 14, 30)
            plan = "endocrine-only" if j.hr_positive else "chemo-only"
            e = s + months(rng.uniform(4, 8))
            if e > as_of - timedelta(days=45):
                j.lines.append(Line(1, plan, s, None, courses_for(d, j, plan, s, None)))
            else:
                j.lines.append(Line(1, plan, s, e, courses_for(d, j, plan, s, e), e, "progression"))
                j.assessments.append((e, "worsened"))
                s2 = e + random_days(rng, 14, 30)
                if (
                    kind == "her2-low-tdxd"
                ):  # DESTINY-Breast04: T-DXd for HER2-low, out of scope here
                    j.lines.append(
                        Line(
                            2,
                            "her2-low-tdxd",
                            s2,
                            None,
                            [Course("fam-trastuzumab deruxtecan", s2, None)],
                        )
                    )
                else:
                    j.lines.append(
                        Line(2, "chemo-only", s2, None, courses_for(d, j, "chemo-only", s2, None))
                    )
        else:
            j.stage = rng.choice(["1A", "2A", "3A"])
        return
    # HER2-positive or unknown breast cancer that is not a full metastatic journey
    hormone_receptors(d, j, 0.55)
    if kind in ("early-only", "early-unstaged"):
        j.diagnosis = as_of - random_days(rng, 60, 900)
        her2_positive_tests(d, j, j.diagnosis)
        j.stage = "" if kind == "early-unstaged" else rng.choice(["1A", "2A", "2B", "3A"])
        early_therapy(d, j, j.diagnosis + random_days(rng, 14, 30), j.hr_positive)
        for c in j.early:  # courses after the snapshot are not yet given; the rest are as planned
            if c.end is not None and c.end > as_of - timedelta(days=3):
                c.end = None
        j.early = [c for c in j.early if c.start < as_of - timedelta(days=3)]
        return
    # equivocal without ISH, or HER2 missing: metastatic, possibly treated
    j.de_novo = rng.random() < 0.5
    j.metastatic_since = j.diagnosis if j.de_novo else j.diagnosis + random_days(rng, 400, 1500)
    if j.metastatic_since > as_of - timedelta(days=30):
        j.metastatic_since = as_of - random_days(rng, 30, 200)
        j.diagnosis = (
            j.metastatic_since if j.de_novo else j.metastatic_since - random_days(rng, 400, 1500)
        )
    j.stage = "4" if j.de_novo else "2A"
    j.sites += [
        Event(s, j.metastatic_since) for s in rng.sample(["bone", "liver", "lung", "lymph-node"], 2)
    ]
    if kind == "her2-equivocal-no-ish":
        j.her2_tests.append(Her2Test(j.diagnosis, "ihc", "2+", "primary"))
    s = j.metastatic_since + random_days(rng, 14, 30)
    if s < as_of - timedelta(days=10) and rng.random() < 0.6:
        plan = "thp" if kind == "her2-missing" and rng.random() < 0.5 else "chemo-only"
        j.lines.append(Line(1, plan, s, None, courses_for(d, j, plan, s, None)))
