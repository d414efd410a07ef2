"""The HER2-positive metastatic journey: the kind the service is for, drawn step by step.

The order of the steps is the order of the draws from the patient's stream: changing it changes
every journey of a seed.
"""

from __future__ import annotations

from typing import Any

from synthetic.comorbidities import chronic_conditions, ild_entered_in_error, ild_history
from synthetic.drawer import Drawer, random_days
from synthetic.early_therapy import relapse_after_early_disease
from synthetic.journey import Course, Journey
from synthetic.lines import place_lines, plan_lines, restaging
from synthetic.receptors import her2_positive_tests, hormone_receptors, metastatic_rebiopsy
from synthetic.sites import metastatic_sites
from synthetic.toxicity import cardiac, pneumonitis_on_tdxd


def her2_metastatic(dr: Drawer, j: Journey, fixed: dict[str, Any] | None = None) -> None:
    """`fixed`: what a shape fixes in the story (synthetic.shapes.story_constraints); the draws
    are made all the same, so the stream stays in step."""
    rng, p = dr.rng, dr.p
    fixed = fixed or {}
    hormone_receptors(dr, j, float(p["hr_positive"]))
    weights = [float(w) for w in p["lines_weights"]]
    n = rng.choices(range(len(weights)), weights)[0]
    n = int(fixed.get("lines", max(n, int(fixed.get("min_lines", 0)))))
    ongoing = n > 0 and dr.chance("last_line_ongoing")
    ongoing = bool(fixed.get("ongoing", ongoing))
    j.de_novo = bool(fixed.get("de_novo", dr.chance("de_novo")))
    early_relapse = not j.de_novo and dr.chance("early_relapse_share")
    early_relapse = bool(fixed.get("early_relapse", early_relapse))
    brain = dr.chance("brain_metastases")
    cns_only = brain and dr.chance("cns_only_given_brain")
    ild_before = dr.chance("ild_history")
    plans = plan_lines(
        dr, n, 1 if early_relapse else 0, j.hr_positive, cns_only, ild_before, ongoing
    )
    metastatic = place_lines(dr, j, plans, ongoing)
    j.metastatic_since = metastatic
    if j.de_novo:
        j.diagnosis = metastatic
        j.stage = "4"
        her2_positive_tests(dr, j, metastatic - random_days(rng, 3, 10))
    else:
        relapse_after_early_disease(
            dr, j, metastatic, early_relapse, bool(fixed.get("katherine", False))
        )
    if early_relapse:
        j.tags.append("counts-as-prior-line")
    metastatic_sites(dr, j, metastatic, brain, cns_only)
    if fixed.get("rebiopsy", True):
        metastatic_rebiopsy(dr, j, metastatic)
    # toxicities and comorbidities
    if ild_before:
        ild_history(dr, j, metastatic)
    pneumonitis_on_tdxd(dr, j)
    ild_entered_in_error(dr, j, metastatic)
    cardiac(dr, j)
    restaging(dr, j)
    if any(s.kind == "bone" for s in j.sites) and rng.random() < 0.5:
        j.early.append(
            Course("denosumab", metastatic + random_days(rng, 10, 40), None, "supportive")
        )
    chronic_conditions(dr, j, metastatic)
