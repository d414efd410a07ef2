"""Safety warnings on the patient picture and the recommendation (CLINICAL.md section 4).

Each function decides whether one rule applies; the words come from warnings.yaml.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.cardiac import (
    anthracycline_with_trastuzumab,
    cardiac_finding,
    due_months,
    lvef_overdue,
    monitored_exposures,
)
from engine.history import current_exposures, tki_drugs
from engine.knowledge import Knowledge
from engine.model import (
    Alert,
    Exposure,
    PatientRecord,
    ReceptorStatus,
    Recommendation,
    Specimen,
)
from engine.warning_text import make_alert, override

TDXD = "fam-trastuzumab deruxtecan"

__all__ = ["alerts", "override"]


def _tdxd_exposures(record: PatientRecord) -> list[Exposure]:
    return [e for e in current_exposures(record) if e.drug == TDXD]


def ild_alert(record: PatientRecord, kb: Knowledge, rec: Recommendation | None) -> Alert | None:
    ild = record.conditions_of("ild")
    if not ild:
        return None
    names = ", ".join(sorted({c.display or c.concept for c in ild}))
    on = _tdxd_exposures(record)
    ids = [c.source_id for c in ild]
    if on:
        since = min(e.start for e in on).isoformat()
        ids += [s for e in on for s in e.source_ids]
        return make_alert(kb, "tdxd-ild", "active", ids, conditions=names, since=since)
    if rec is not None and rec.ild_replaced is not None:
        return make_alert(kb, "tdxd-ild", "replaced", ids, conditions=names)
    return None


def ild_monitoring_alert(record: PatientRecord, kb: Knowledge) -> Alert | None:
    on = _tdxd_exposures(record)
    if not on or record.conditions_of("ild"):
        return None  # with ILD on record the critical tdxd-ild warning says it all
    since = min(e.start for e in on).isoformat()
    return make_alert(
        kb, "tdxd-ild-monitoring", "active", [s for e in on for s in e.source_ids], since=since
    )


def cardiac_alert(record: PatientRecord, kb: Knowledge, rec: Recommendation | None) -> Alert | None:
    on = monitored_exposures(record, kb)
    monitored = kb.agents("cardiac_monitored")
    planned = (
        sorted(set(rec.preferred.regimen.drugs) & monitored)
        if rec is not None and rec.timing == "now"
        else []
    )
    if not on and not planned:
        return None
    start = min(e.start for e in on) if on else None
    finding = cardiac_finding(record, kb, start)
    if finding is None:
        return None
    drugs = ", ".join(sorted({e.drug for e in on})) if on else ", ".join(planned)
    return make_alert(
        kb,
        "cardiac-lvef",
        "active" if on else "planned",
        [*finding.source_ids, *(s for e in on for s in e.source_ids)],
        severity=finding.severity,
        criteria="; ".join(finding.criteria),
        criteria_detail=finding.criteria_detail,
        series=finding.series,
        drugs=drugs,
    )


def lvef_due_alert(record: PatientRecord, kb: Knowledge) -> Alert | None:
    on = [e for e in current_exposures(record) if kb.is_her2_directed(e.drug)]
    if not on:
        return None
    overdue, last, ids = lvef_overdue(record, kb)
    if not overdue:
        return None
    return make_alert(
        kb,
        "lvef-due",
        "active",
        [*ids, *(s for e in on for s in e.source_ids)],
        months=due_months(kb),
        drugs=", ".join(sorted({e.drug for e in on})),
        last=last,
    )


def anthracycline_alert(record: PatientRecord, kb: Knowledge) -> Alert | None:
    found = anthracycline_with_trastuzumab(record, kb)
    if found is None:
        return None
    return make_alert(
        kb,
        "anthracycline-concurrent",
        "active",
        found.source_ids,
        how=found.how,
        facts=found.facts,
        washout=f"{float(kb.param('anthracycline', 'washout_months')):g}",
    )


def blockade_alert(record: PatientRecord, kb: Knowledge) -> Alert | None:
    if record.her2.status is not ReceptorStatus.POSITIVE or not record.metastatic:
        return None
    running = current_exposures(record)
    if not running or any(kb.is_her2_directed(e.drug) for e in running):
        return None
    return make_alert(
        kb,
        "her2-blockade-stopped",
        "active",
        [s for e in running for s in e.source_ids],
        drugs=", ".join(sorted({e.drug for e in running})),
    )


# How a HER2 result was obtained, in the words a card uses.
_METHOD_WORDS = {
    "ihc": "IHC",
    "ish": "ISH",
    "interpretation": "a HER2 test result",
    "condition": "a recorded HER2-positive diagnosis",
}


def _method(method: str) -> str:
    return _METHOD_WORDS.get(method, method)


def her2_status_alert(record: PatientRecord, kb: Knowledge) -> Alert | None:
    her2 = record.her2
    basis = her2.basis
    ids = [r.source_id for r in her2.results] or list(record.metastatic_source_ids)
    if her2.status is ReceptorStatus.UNKNOWN:
        return make_alert(kb, "her2-status", "missing", ids)
    if her2.status is ReceptorStatus.EQUIVOCAL:
        desc = f"{_method(basis.method)} on {basis.date}" if basis else "no detail"
        return make_alert(kb, "her2-status", "equivocal", ids, basis=desc)
    if her2.status is ReceptorStatus.POSITIVE and basis is not None:
        if basis.specimen is Specimen.METASTATIC:
            return None
        when = basis.date.isoformat() if basis.date else "an unknown date"
        return make_alert(
            kb,
            "her2-status",
            "primary-only",
            her2.source_ids,
            basis=f"{_method(basis.method)} on {when}",
        )
    return None


def tki_alert(record: PatientRecord, kb: Knowledge, rec: Recommendation | None) -> Alert | None:
    lines = record.lines
    if not lines:
        return None
    last = lines[-1]
    tkis = tki_drugs(last.drugs, kb)
    if not tkis:
        return None
    if last.ongoing and len(lines) > 1:
        previous = tki_drugs(lines[-2].drugs, kb)
        new = [d for d in tkis if d not in previous]
        if previous and new:
            return make_alert(
                kb,
                "tki-after-tki",
                "active",
                [*last.source_ids, *lines[-2].source_ids],
                tki=", ".join(new),
                previous=", ".join(previous),
            )
    if rec is None:
        return None
    options = (rec.preferred, *rec.alternatives)
    if not any(kb.regimens[o.regimen.id].tki for o in options):
        return None
    return make_alert(
        kb,
        "tki-after-tki",
        "recommendation",
        last.source_ids,
        line=last.number,
        tki=", ".join(tkis),
    )


def chemo_endocrine_alert(record: PatientRecord, kb: Knowledge) -> Alert | None:
    running = current_exposures(record)

    def of(cls: str) -> list[Exposure]:
        return [e for e in running if (i := kb.drug(e.drug)) and i.drug_class == cls]

    chemo, endo = of("chemotherapy"), of("endocrine")
    if not chemo or not endo:
        return None
    facts = (
        f"Running together: {', '.join(sorted({e.drug for e in chemo}))} (chemotherapy) and "
        f"{', '.join(sorted({e.drug for e in endo}))} (endocrine therapy)"
    )
    return make_alert(
        kb,
        "chemo-endocrine-concurrent",
        "active",
        [s for e in (*chemo, *endo) for s in e.source_ids],
        withhold=sorted({e.drug for e in endo}),  # endocrine therapy waits for chemotherapy to end
        facts=facts,
    )


_PLAIN: tuple[Callable[[PatientRecord, Knowledge], Alert | None], ...] = (
    ild_monitoring_alert,
    lvef_due_alert,
    anthracycline_alert,
    blockade_alert,
    her2_status_alert,
    chemo_endocrine_alert,
)
_WITH_REC: tuple[Callable[[PatientRecord, Knowledge, Recommendation | None], Alert | None], ...] = (
    ild_alert,
    cardiac_alert,
    tki_alert,
)


def alerts(record: PatientRecord, kb: Knowledge, rec: Recommendation | None) -> tuple[Alert, ...]:
    """Every warning that applies, most severe first."""
    found = [a for f in _WITH_REC if (a := f(record, kb, rec)) is not None]
    found += [a for g in _PLAIN if (a := g(record, kb)) is not None]
    order = {"critical": 0, "warning": 1, "info": 2}
    return tuple(sorted(found, key=lambda a: (order.get(a.severity, 3), a.rule)))
