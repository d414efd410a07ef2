"""Metastatic sites: where the disease spread, brain metastases and their activity."""

from __future__ import annotations

from datetime import date

from synthetic.drawer import Drawer
from synthetic.journey import Event, Journey


def metastatic_sites(dr: Drawer, j: Journey, metastatic: date, brain: bool, cns_only: bool) -> None:
    """Sites at the metastatic date: CNS-only, or extracranial with brain at a progression."""
    rng = dr.rng
    if cns_only:
        j.sites.append(Event("brain", metastatic))
        j.tags.append("cns-only")
    else:
        pool = ["bone", "liver", "lung", "lymph-node"]
        chosen = [s for s in pool if rng.random() < 0.45] or [rng.choice(pool)]
        j.sites += [Event(s, metastatic) for s in chosen]
        if brain:
            when = metastatic
            if j.lines and rng.random() < 0.6:
                prog_dates = [ln.progression for ln in j.lines if ln.progression]
                if prog_dates:
                    when = rng.choice(prog_dates)
            j.sites.append(Event("brain", when))
            j.tags.append("brain-and-extracranial")
    if brain and dr.chance("brain_inactive_given_brain"):
        for s in j.sites:
            if s.kind == "brain":
                s.status = rng.choice(["remission", "inactive"])
        j.tags.append("brain-inactive")
