"""The one LVEF card of a patient-view answer (CLINICAL.md section 4 cardiac-lvef and lvef-due).

cardiac-lvef judges each monitored drug running or recommended now by its own label
(engine.cardiac_rules); lvef-due asks for an LVEF when none is recent. When both apply, the
cardiac card carries the lvef-due words (review 2, N13: one LVEF card per answer).
"""

from __future__ import annotations

from dataclasses import replace

from engine.cardiac import (
    due_months,
    label_monitoring,
    lvef_overdue,
    monitored_exposures,
    running_concerned,
)
from engine.cardiac_rules import Concerned, judge
from engine.history import current_exposures
from engine.knowledge import Knowledge
from engine.model import Alert, PatientRecord, Recommendation
from engine.warning_text import make_alert


def _planned(
    record: PatientRecord, kb: Knowledge, rec: Recommendation | None, agents: str, now: bool
) -> list[str]:
    """Drugs of the `agents` list the recommendation starts (now only, or on progression too)."""
    if rec is None or (now and rec.timing != "now"):
        return []
    running = {e.drug for e in current_exposures(record)}
    return sorted((set(rec.preferred.regimen.drugs) & kb.agents(agents)) - running)


def cardiac_alert(record: PatientRecord, kb: Knowledge, rec: Recommendation | None) -> Alert | None:
    """cardiac-lvef: each monitored drug running or recommended now, judged by its own label."""
    on = running_concerned(record, kb)
    planned = [
        Concerned(d, "planned") for d in _planned(record, kb, rec, "cardiac_monitored", True)
    ]
    if not on and not planned:
        return None
    verdict = judge(record, kb, [*on, *planned])
    if verdict is None:
        return None
    ids = [s for e in monitored_exposures(record, kb) for s in e.source_ids]
    alert = make_alert(
        kb,
        "cardiac-lvef",
        "active" if on else "planned",
        [*verdict.source_ids, *ids],
        severity=verdict.severity,
        drugs=", ".join(c.drug for c in (on or planned)),
        due="",
        **verdict.fields(kb),
    )
    return replace(alert, withhold=verdict.withhold, evidence=verdict.evidence(kb))


def lvef_due_alert(
    record: PatientRecord, kb: Knowledge, rec: Recommendation | None
) -> Alert | None:
    """lvef-due: on HER2-directed therapy, or an antibody/ADC recommended (now or as the next
    line), with no LVEF in the last 3 months; each drug's own label says how it is monitored."""
    on = sorted({e.drug for e in current_exposures(record) if kb.is_her2_directed(e.drug)})
    planned = _planned(record, kb, rec, "lvef_baseline", False)
    if not on and not planned:
        return None
    overdue, last, ids = lvef_overdue(record, kb)
    if not overdue:
        return None
    regimen = [d for d in rec.preferred.regimen.drugs if kb.is_her2_directed(d)] if rec else []
    labels, evidence = label_monitoring(kb, [*on, *(planned and regimen)])
    if on and planned:
        labels = kb.cardiac.say("due_next", drugs=", ".join(planned)) + " " + labels
    running_ids = [s for e in current_exposures(record) if e.drug in on for s in e.source_ids]
    alert = make_alert(
        kb,
        "lvef-due",
        "active" if on else "planned",
        [*ids, *running_ids],
        months=due_months(kb),
        drugs=", ".join(on or planned),
        last=last,
        labels=labels,
    )
    return replace(alert, evidence=evidence or alert.evidence)


def lvef_alert(record: PatientRecord, kb: Knowledge, rec: Recommendation | None) -> Alert | None:
    """The one LVEF card: cardiac-lvef (with the lvef-due words when due too), else lvef-due."""
    cardiac = cardiac_alert(record, kb, rec)
    due = lvef_due_alert(record, kb, rec)
    if cardiac is None or due is None:
        return cardiac or due
    _, last, _ = lvef_overdue(record, kb)
    last = last[:1].lower() + last[1:]
    words = make_alert(kb, "lvef-due", "joined", (), months=due_months(kb), last=last).detail
    return replace(
        cardiac,
        detail=f"{cardiac.detail} {words}",
        source_ids=tuple(dict.fromkeys((*cardiac.source_ids, *due.source_ids))),
        evidence=tuple(dict.fromkeys((*cardiac.evidence, *due.evidence))),
        also=("lvef-due",),
    )
