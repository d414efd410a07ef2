"""Receptor status: HER2 tests at diagnosis, ER/PR, and the HER2 retest of a metastasis."""

from __future__ import annotations

from datetime import date, timedelta

from synthetic.drawer import Drawer, random_days
from synthetic.journey import Her2Test, Journey


def her2_positive_tests(dr: Drawer, j: Journey, when: date) -> None:
    rng = dr.rng
    if rng.random() < 0.7:
        j.her2_tests.append(Her2Test(when, "ihc", "3+", "primary"))
    else:  # IHC 2+ resolved by ISH (ASCO/CAP)
        j.her2_tests.append(Her2Test(when, "ihc", "2+", "primary"))
        j.her2_tests.append(Her2Test(when + random_days(rng, 3, 12), "ish", "positive", "primary"))
        j.tags.append("her2-equivocal-ish-positive")
    if rng.random() < 0.4:
        j.her2_tests.append(
            Her2Test(when + random_days(rng, 13, 20), "interpretation", "positive", "primary")
        )
    if rng.random() < float(dr.cat["coding"]["her2_condition"]):
        j.her2_condition = "positive"
        j.her2_condition_date = when


def hormone_receptors(dr: Drawer, j: Journey, share: float) -> None:
    j.er_positive = dr.rng.random() < share
    j.pr_positive = j.er_positive and dr.rng.random() < 0.7


def metastatic_rebiopsy(dr: Drawer, j: Journey, metastatic: date) -> None:
    """Sometimes a distant metastasis is biopsied and HER2 retested (rarely HER2 lost)."""
    rng = dr.rng
    if dr.chance("metastatic_rebiopsy"):
        # distant sites only: an axillary node can be regional disease, so a node biopsy
        # would not say "metastatic" unambiguously
        site = next((s.kind for s in j.sites if s.kind in ("liver", "bone", "lung")), "")
        if site:
            first_primary = min(t.when for t in j.her2_tests)
            # the metastatic biopsy is newer than the first primary result (and the HER2
            # diagnosis resting on it), so "metastatic outranks primary" is unambiguous
            when = max(metastatic - random_days(rng, 2, 10), first_primary + timedelta(days=1))
            result = "negative" if rng.random() < 0.06 else "positive"
            j.her2_tests.append(
                Her2Test(
                    when,
                    rng.choice(["ihc", "interpretation"]) if result == "positive" else "ihc",
                    "3+" if result == "positive" else "1+",
                    "metastatic",
                    site,
                )
            )
            if result == "negative":
                j.tags.append("her2-loss-on-metastasis")
            else:
                j.tags.append("her2-metastatic-biopsy")
