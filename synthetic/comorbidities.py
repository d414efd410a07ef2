"""Comorbidities: an ILD history (before any T-DXd), an ILD entered in error, chronic conditions."""

from __future__ import annotations

from datetime import date, timedelta

from synthetic.drawer import Drawer, random_days
from synthetic.journey import Event, Journey


def ild_history(dr: Drawer, j: Journey, metastatic: date) -> None:
    """Interstitial lung disease before the metastatic lines (radiation, idiopathic or drug)."""
    rng = dr.rng
    onset = (j.diagnosis or metastatic) + random_days(rng, 60, 400)
    onset = min(onset, dr.as_of - timedelta(days=20))
    kind = (
        rng.choice(["ild-radiation", "ild-idiopathic", "ild-drug"])
        if not j.de_novo
        else "ild-idiopathic"
    )
    j.events.append(Event(kind, onset, rng.choice(["active", "resolved"])))
    j.tags.append("ild-history")


def ild_entered_in_error(dr: Drawer, j: Journey, metastatic: date) -> None:
    """Now and then an ILD entry that was entered in error: it must be ignored."""
    if dr.rng.random() < 0.01:  # an ILD entry that was entered in error: must be ignored
        j.events.append(Event("ild-idiopathic", metastatic, "active", "entered-in-error"))
        j.tags.append("ild-entered-in-error")


def chronic_conditions(dr: Drawer, j: Journey, metastatic: date) -> None:
    """Up to two common chronic conditions, diagnosed before the cancer."""
    rng = dr.rng
    for kind in rng.sample(
        ["hypertension", "diabetes", "osteoporosis", "hypothyroidism"], rng.randint(0, 2)
    ):
        j.events.append(Event(kind, (j.diagnosis or metastatic) - random_days(rng, 200, 3000)))
