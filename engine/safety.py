"""Safety warnings on the patient picture and the recommendation (CLINICAL.md section 4).

Each function decides whether one rule applies; the words come from warnings.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from engine.cardiac import anthracycline_with_trastuzumab
from engine.cardiac_alerts import lvef_alert
from engine.discordance import her2_discordance_alert
from engine.history import current_exposures, tki_drugs
from engine.knowledge import Knowledge
from engine.lapse import Lapse, ask_why, line_lapse, next_words
from engine.model import (
    Alert,
    Exposure,
    PatientRecord,
    ReceptorStatus,
    Recommendation,
    Specimen,
)
from engine.order_context import ild_replacement
from engine.pregnancy import current_pregnancy, embryo_fetal_toxic, pregnancy_words
from engine.uncertain import uncertain_alerts
from engine.warning_text import make_alert, override

__all__ = ["alerts", "override"]


def _tdxd_exposures(record: PatientRecord, kb: Knowledge) -> list[Exposure]:
    """Current exposures to the agents not offered with ILD (parameters.yaml agents.ild_excluded)."""
    excluded = kb.agents("ild_excluded")
    return [e for e in current_exposures(record) if e.drug in excluded]


def _given(kb: Knowledge, exposures: list[Exposure], early: set[Exposure]) -> str:
    def name(drug: str) -> str:
        info = kb.drug(drug)
        return info.short or info.name if info else drug

    return "; ".join(
        f"{name(e.drug)} from {e.start.isoformat()}"
        + (f" to {e.end.isoformat()}" if e.end else "")
        + (" (early setting)" if e in early else "")
        for e in sorted(exposures, key=lambda e: e.start)
    )


def ild_alert(record: PatientRecord, kb: Knowledge, rec: Recommendation | None) -> Alert | None:
    """tdxd-ild (CLINICAL.md section 4): ILD on record and T-DXd active, given before, or kept
    from being preferred. Given before: never re-challenge. The recommended regimen's own ILD
    note (T-DM1's pneumonitis warning) is added when there is one."""
    ild = record.conditions_of("ild")
    if not ild:
        return None
    names = ", ".join(sorted({c.display or c.concept for c in ild}))
    on = _tdxd_exposures(record, kb)
    ids = [c.source_id for c in ild]
    if on:
        since = min(e.start for e in on).isoformat()
        ids += [s for e in on for s in e.source_ids]
        alert = make_alert(kb, "tdxd-ild", "active", ids, conditions=names, since=since)
        # its text names T-DM1 as the alternative, with T-DM1's own pneumonitis warning
        replacement = kb.regimens[ild_replacement(kb)[0]]  # agents.ild_replacement
        return replace(alert, evidence=(*alert.evidence, *replacement.ild_evidence))
    rule = kb.regimens[rec.preferred.regimen.id] if rec is not None else None
    note = rule.ild_note if rule is not None else ""
    # the recommended regimen's own ILD evidence (T-DM1: KADCYLA pulmonary warning), only then
    extra = rule.ild_evidence if rule is not None else ()
    excluded = kb.agents("ild_excluded")
    early = set(record.early_exposures)
    given = [e for e in (*record.exposures, *early) if e.drug in excluded]
    given = list(dict.fromkeys(given))
    if given:
        ids += [s for e in given for s in e.source_ids]
        alert = make_alert(
            kb,
            "tdxd-ild",
            "previous",
            ids,
            conditions=names,
            given=_given(kb, given, early),
            replacement_note=note,
        )
        return replace(alert, evidence=(*alert.evidence, *extra))
    if rec is not None and rec.ild_replaced is not None and rule is not None:
        alert = make_alert(
            kb,
            "tdxd-ild",
            "replaced",
            ids,
            conditions=names,
            replacement=rule.short or rule.regimen.name,
            replacement_note=note,
        )
        return replace(alert, evidence=(*alert.evidence, *extra))
    return None


def ild_monitoring_alert(record: PatientRecord, kb: Knowledge) -> Alert | None:
    on = _tdxd_exposures(record, kb)
    if not on or record.conditions_of("ild"):
        return None  # with ILD on record the critical tdxd-ild warning says it all
    since = min(e.start for e in on).isoformat()
    return make_alert(
        kb, "tdxd-ild-monitoring", "active", [s for e in on for s in e.source_ids], since=since
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


def blockade_alert(
    record: PatientRecord, kb: Knowledge, rec: Recommendation | None
) -> Alert | None:
    """her2-blockade-stopped: therapy without a HER2-directed agent, or (the lapse variants) the
    latest line's HER2-directed drugs stopped with no progression recorded (engine/lapse.py)."""
    if record.her2.status is not ReceptorStatus.POSITIVE or not record.metastatic:
        return None
    running = current_exposures(record)
    lapse = line_lapse(record, kb)
    if lapse is not None:
        return _lapse_alert(record, kb, rec, lapse)
    if not running or any(kb.is_her2_directed(e.drug) for e in running):
        return None
    return make_alert(
        kb,
        "her2-blockade-stopped",
        "active",
        [s for e in running for s in e.source_ids],
        drugs=", ".join(sorted({e.drug for e in running})),
    )


def _lapse_alert(
    record: PatientRecord, kb: Knowledge, rec: Recommendation | None, lapse: Lapse
) -> Alert:
    line = lapse.line
    regimen = kb.regimens[rec.preferred.regimen.id].short if rec is not None else None
    nxt = rec.line if rec is not None else None
    variant = "line-stopped" if lapse.whole_line else "drug-stopped"
    if not lapse.whole_line and not lapse.blockade_left:
        variant = "lapsed"
    if lapse.partner is not None:
        variant = "partner-stopped"
    ild = record.conditions_of("ild")
    note = ""
    if ild and any(kb.is_her2_directed(s.drug) for s in lapse.stopped):
        names = ", ".join(sorted({c.display or c.concept for c in ild}))
        text = kb.warning("her2-blockade-stopped").variants["ild-note"].detail
        note = " " + " ".join(text.format(conditions=names).split())
    return make_alert(
        kb,
        "her2-blockade-stopped",
        variant,
        [*lapse.source_ids, *line.source_ids],
        line=line.number,
        line_name=line.regimen_name,
        start=line.start.isoformat(),
        began=", ".join(line.drugs),
        names=lapse.names,
        reason=lapse.reason,
        action=lapse.action,
        verb=lapse.verb,
        since=lapse.since.isoformat(),
        needs=lapse.partner[0] if lapse.partner else "",
        trial=lapse.partner[1] if lapse.partner else "",
        stopped=lapse.listed(),
        still=", ".join(lapse.still) or "nothing",
        last=lapse.last.isoformat(),
        next=next_words(nxt, None),
        ask=ask_why(lapse, nxt, regimen),
        ild=note,
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
        if basis.specimen is not Specimen.PRIMARY:
            return None  # unknown specimen: said once in the next-line card, not as its own card
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


def pregnancy_alert(
    record: PatientRecord, kb: Knowledge, rec: Recommendation | None
) -> Alert | None:
    """pregnancy-her2: pregnancy on record with a HER2 antibody/ADC active or recommended."""
    pregnancy = current_pregnancy(record, kb)
    if not pregnancy:
        return None
    on = [e for e in current_exposures(record) if embryo_fetal_toxic([e.drug], kb)]
    offered = (
        embryo_fetal_toxic(
            [d for o in (rec.preferred, *rec.alternatives) for d in o.regimen.drugs], kb
        )
        if rec is not None
        else []
    )
    if not on and not offered:
        return None
    ids = [c.source_id for c in pregnancy] + [s for e in on for s in e.source_ids]
    drugs = ", ".join(embryo_fetal_toxic([e.drug for e in on], kb) if on else offered)
    return make_alert(
        kb,
        "pregnancy-her2",
        "active" if on else "recommended",
        ids,
        pregnancy=pregnancy_words(pregnancy),
        drugs=drugs,
    )


_PLAIN: tuple[Callable[[PatientRecord, Knowledge], Alert | None], ...] = (
    ild_monitoring_alert,
    anthracycline_alert,
    her2_status_alert,
    chemo_endocrine_alert,
    her2_discordance_alert,
)
_WITH_REC: tuple[Callable[[PatientRecord, Knowledge, Recommendation | None], Alert | None], ...] = (
    ild_alert,
    lvef_alert,
    blockade_alert,
    tki_alert,
    pregnancy_alert,
)


def alerts(record: PatientRecord, kb: Knowledge, rec: Recommendation | None) -> tuple[Alert, ...]:
    """Every warning that applies, most severe first."""
    found = [a for f in _WITH_REC if (a := f(record, kb, rec)) is not None]
    found += [a for g in _PLAIN if (a := g(record, kb)) is not None]
    found += uncertain_alerts(record, kb)  # facts named but unconfirmed that change advice
    if record.her2.discordance:  # a metastasis was tested: the discordance card says it all
        found = [a for a in found if a.rule != "her2-status"]
    order = {"critical": 0, "warning": 1, "info": 2}
    return tuple(sorted(found, key=lambda a: (order.get(a.severity, 3), a.rule)))
