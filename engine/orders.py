"""Order checks: which warnings apply to draft orders, and what replacement fixes each.

Each check looks at one draft order against the patient's picture (and, for a few, the other
orders signed with it). Words come from warnings.yaml; replacement orders from regimens.yaml.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from engine.cardiac import (
    anthracycline_with_trastuzumab,
    is_anthracycline,
    is_trastuzumab_containing,
)
from engine.cardiac_orders import cardiac_check, ild_monitoring_check, one_lvef_finding
from engine.dose_order import dose_check
from engine.her2_order import her2_unconfirmed
from engine.history import current_exposures, tki_drugs
from engine.ild_restart import ild_restart_check
from engine.knowledge import Knowledge, load_knowledge
from engine.model import (
    Component,
    DraftOrder,
    OrderFinding,
    PatientRecord,
    ReceptorStatus,
    Recommendation,
    Replacement,
)
from engine.next_line import NoRegimenError, recommend
from engine.off_sequence import off_sequence, regimen_replacement
from engine.order_context import OrderCtx as _Ctx
from engine.order_context import ild_replacement, short_name
from engine.order_fixes import flagged, gate_fixes, one_fix_per_order, proposed_orders
from engine.pregnancy import no_antibody_fix_in_pregnancy, pregnancy_finding
from engine.progressed_on import progressed_finding
from engine.stop_reason_order import (
    hold_fixes_until_the_reason_is_known,
    stop_reason_check,
    unexplained_stop,
)
from engine.uncertain import uncertain_order_check
from engine.warning_text import component_replacement, make_finding
from engine.wrong_product import wrong_product as _wrong_product


def _unidentified(order: DraftOrder, ctx: _Ctx) -> OrderFinding | None:
    """An order whose drug we cannot read is said to be unchecked, never passed in silence."""
    if not order.unidentified:
        return None
    return make_finding(
        ctx.kb,
        "order-not-checked",
        "unresolved",
        order.resource_id,
        [],
        order=order.resource_id,
        reason=order.unidentified,
    )


def _ild(order: DraftOrder, ctx: _Ctx) -> OrderFinding | None:
    ild = ctx.record.conditions_of("ild")
    excluded = ctx.kb.agents("ild_excluded")
    if order.drug not in excluded or not ild:
        return None
    rec = ctx.rec
    fix: Replacement | None
    if rec is not None and excluded.isdisjoint(rec.preferred.regimen.drugs):
        # the regimen this patient's next-line card recommends (T-DM1 may have failed already)
        fix = regimen_replacement(ctx.kb, rec, ())
        instead = rec.preferred.regimen.name
        rule = ctx.kb.regimens[rec.preferred.regimen.id]
    else:
        # agents.ild_replacement: T-DM1 takes its place (CLINICAL.md section 3 ILD modifier)
        regimen_id, drug = ild_replacement(ctx.kb)
        fix = component_replacement(ctx.kb, regimen_id, drug)
        rule = ctx.kb.regimens[regimen_id]
        comp = next(c for c in rule.regimen.components if c.drug == drug)
        instead = f"{rule.short} {comp.dose} {comp.route} {comp.schedule}"
    stopped = unexplained_stop(ctx)
    if stopped is not None:  # what replaces T-DXd depends on why the last line stopped
        return make_finding(
            ctx.kb,
            "tdxd-ild",
            "ordered-reason-asked",
            order.resource_id,
            [c.source_id for c in ild],
            conditions=", ".join(sorted({c.display or c.concept for c in ild})),
            instead=instead,
            line=stopped.line.number,
        )
    # the replacement's own ILD note and evidence (T-DM1's pneumonitis warning), only for it
    finding = make_finding(
        ctx.kb,
        "tdxd-ild",
        "ordered",
        order.resource_id,
        [c.source_id for c in ild],
        fix,
        conditions=", ".join(sorted({c.display or c.concept for c in ild})),
        instead=instead,
        replacement_note=rule.ild_note,
    )
    return dataclasses.replace(finding, evidence=(*finding.evidence, *rule.ild_evidence))


def _anthracycline(order: DraftOrder, ctx: _Ctx) -> OrderFinding | None:
    kb, record = ctx.kb, ctx.record
    washout = f"{float(kb.param('anthracycline', 'washout_months')):g}"
    if is_anthracycline(kb, order.drug):
        together = [o for o in ctx.others(order) if is_trastuzumab_containing(kb, o.drug)]
        if together:
            how = "ordered together with trastuzumab-containing therapy"
            facts = f"{order.drug} is ordered with {together[0].drug}"
            ids: tuple[str, ...] = ()
        else:
            found = anthracycline_with_trastuzumab(record, kb, record.as_of)
            if found is None:
                return None
            how, facts, ids = found.how, found.facts, found.source_ids
        return make_finding(
            kb,
            "anthracycline-concurrent",
            "ordered",
            order.resource_id,
            ids,
            drug=order.drug,
            how=how,
            facts=facts,
            washout=washout,
        )
    if is_trastuzumab_containing(kb, order.drug):
        running = [e for e in current_exposures(record) if is_anthracycline(kb, e.drug)]
        if running:
            return make_finding(
                kb,
                "anthracycline-concurrent",
                "ordered",
                order.resource_id,
                [s for e in running for s in e.source_ids],
                drug=order.drug,
                how=f"{running[0].drug} is running",
                facts=f"{order.drug} ordered while {running[0].drug} is being given",
                washout=washout,
            )
    return None


def _non_tki_replacement(ctx: _Ctx) -> tuple[str, str] | None:
    """(regimen id, drug) of the best non-TKI option the recommendation offers."""
    if ctx.rec is None:
        return None
    for option in (ctx.rec.preferred, *ctx.rec.alternatives):
        rule = ctx.kb.regimens[option.regimen.id]
        if not rule.tki and option.approved:
            drug = rule.key_agents[0] if rule.key_agents else option.regimen.drugs[0]
            return option.regimen.id, drug
    return None


def _tki(order: DraftOrder, ctx: _Ctx) -> OrderFinding | None:
    kb, lines = ctx.kb, ctx.record.lines
    if ctx.cls(order.drug) != "her2-tki" or not lines or order.drug is None:
        return None
    last = lines[-1]
    previous = tki_drugs(last.drugs, kb)
    still = last.current_drugs or last.drugs  # the drugs the ongoing line still gives
    if last.ongoing and order.drug in still:
        if len(lines) < 2 or not tki_drugs(lines[-2].drugs, kb):
            return None  # continuing the current TKI, not a new one
        previous = tki_drugs(lines[-2].drugs, kb)
    if not previous:
        return None
    waiting = ctx.rec is not None and ctx.rec.timing == "on-progression"
    fix = None if waiting else _non_tki_replacement(ctx)
    rep = component_replacement(kb, fix[0], fix[1]) if fix else None
    # the card says the fix when it offers it (a fix our checks would flag is not offered); while
    # the current line goes on no next-line order is offered (first outside review, finding 7)
    note = (
        "The current line goes on with no progression recorded: no replacement is offered."
        if waiting
        else ("" if rep else "No non-TKI option is available to suggest.")
    )
    return make_finding(
        kb,
        "tki-after-tki",
        "ordered",
        order.resource_id,
        last.source_ids,
        rep,
        drug=order.drug,
        previous=", ".join(previous),
        replacement_note=note,
    )


def _chemo_endocrine(order: DraftOrder, ctx: _Ctx) -> OrderFinding | None:
    mine = ctx.cls(order.drug)
    if mine not in ("chemotherapy", "endocrine"):
        return None
    other_cls = "endocrine" if mine == "chemotherapy" else "chemotherapy"
    running = [e for e in current_exposures(ctx.record) if ctx.cls(e.drug) == other_cls]
    ordered = [o for o in ctx.others(order) if ctx.cls(o.drug) == other_cls]
    if mine == "chemotherapy" and not running:
        return None  # report once, on the endocrine order, when both are ordered together
    if not running and not ordered:
        return None
    other = running[0].drug if running else str(ordered[0].drug)
    when = "is being given" if running else "is ordered with it"
    return make_finding(
        ctx.kb,
        "chemo-endocrine-concurrent",
        "ordered",
        order.resource_id,
        [s for e in running for s in e.source_ids],
        drug=order.drug,
        other=other,
        facts=f"{order.drug} ({mine}) ordered while {other} ({other_cls}) {when}",
    )


def _blockade(order: DraftOrder, ctx: _Ctx) -> OrderFinding | None:
    kb, record = ctx.kb, ctx.record
    if record.her2.status is not ReceptorStatus.POSITIVE or not record.metastatic:
        return None
    anticancer = [o for o in ctx.orders if o.drug and kb.drug(o.drug)]
    if not anticancer or anticancer[0].resource_id != order.resource_id:
        return None  # one finding per order set, on its first anticancer order
    if any(kb.is_her2_directed(str(o.drug)) for o in anticancer):
        return None
    if any(kb.is_her2_directed(e.drug) for e in current_exposures(record)):
        return None
    add = kb.parameters["agents"]["blockade_addition"]
    return make_finding(
        kb,
        "her2-blockade-stopped",
        "ordered",
        order.resource_id,
        record.her2.source_ids,
        component_replacement(kb, add["regimen"], add["drug"], action="add"),
        drugs=", ".join(sorted({str(o.drug) for o in anticancer})),
    )


def _pregnancy(order: DraftOrder, ctx: _Ctx) -> OrderFinding | None:
    return pregnancy_finding(order, ctx.record, ctx.kb)


def _progressed(order: DraftOrder, ctx: _Ctx) -> OrderFinding | None:
    return progressed_finding(ctx.record, ctx.kb, order, ctx.rec)


_CHECKS: tuple[Callable[[DraftOrder, _Ctx], OrderFinding | None], ...] = (
    _unidentified,
    her2_unconfirmed,
    _ild,
    _progressed,
    _wrong_product,
    _anthracycline,
    cardiac_check,
    ild_monitoring_check,
    _tki,
    _blockade,
    _chemo_endocrine,
    dose_check,
    _pregnancy,
    uncertain_order_check,
    ild_restart_check,
)


# findings whose card already names the regimen recommended in the order's place
_NAME_THE_REGIMEN = ("off-sequence", "tdxd-ild")  # off-sequence here: progressed on it


def _recommendation(
    record: PatientRecord, kb: Knowledge, jurisdiction: str
) -> Recommendation | None:
    if record.her2.status is not ReceptorStatus.POSITIVE or not record.metastatic:
        return None
    try:
        return recommend(record, kb, jurisdiction)
    except NoRegimenError:
        return None


def _run(
    record: PatientRecord,
    kb: Knowledge,
    orders: tuple[DraftOrder, ...],
    rec: Recommendation | None,
    complete: bool = True,
) -> list[OrderFinding]:
    """Every check on every order; off-sequence whatever else is flagged (an outside review
    found a cardiac warning hiding it), except where a finding on the order already names the
    recommended regimen (progressed on it, tdxd-ild); it says what the blockade warning would."""
    ctx = _Ctx(record, kb, orders, rec)
    found = [f for order in orders for check in _CHECKS if (f := check(order, ctx)) is not None]
    found = [_never_tdxd_with_ild(f, record, kb) for f in found]
    found = [no_antibody_fix_in_pregnancy(f, record, kb) for f in found]
    others = {f.order_id for f in found if f.rule in _NAME_THE_REGIMEN}  # said on the order
    off = [
        f
        for o in orders
        if o.resource_id not in others
        and (f := off_sequence(record, kb, orders, o, rec, complete)) is not None
    ]
    if off:
        found = [f for f in found if f.rule != "her2-blockade-stopped"]
    # the last line stopped with no reason: said first, on every order set (engine/lapse.py)
    asked = [f for o in orders if (f := stop_reason_check(o, ctx)) is not None]
    return asked + found + off


def check_orders(
    record: PatientRecord,
    orders: list[DraftOrder],
    kb: Knowledge | None = None,
    jurisdiction: str = "FDA",
    *,
    complete: bool = True,
) -> list[OrderFinding]:
    """All findings on the given orders (each order checked against the patient's picture).

    `complete`: the orders are the whole set being signed (order-sign); at order-select a set
    still being entered is flagged too, its card naming the offered regimen it may become.
    A finding's fix is offered only when the orders it leaves would not be flagged themselves."""
    knowledge = kb or load_knowledge()
    rec = _recommendation(record, knowledge, jurisdiction)
    drafts = tuple(orders)
    found = _run(record, knowledge, drafts, rec, complete)
    gated = gate_fixes(
        knowledge, drafts, found, lambda os: _run(record, knowledge, os, rec, complete)
    )
    gated = hold_fixes_until_the_reason_is_known(_Ctx(record, knowledge, drafts, rec), gated)
    return one_lvef_finding(record, knowledge, drafts, one_fix_per_order(gated, "off-sequence"))


def proposal_findings(
    record: PatientRecord,
    components: tuple[Component, ...],
    kb: Knowledge,
    rec: Recommendation | None,
) -> list[OrderFinding]:
    """The warning and critical findings the orders of these components would raise if signed
    for this patient (the same checks as order-sign; `rec` is the recommendation offering them)."""
    return flagged(_run(record, kb, proposed_orders(kb, components), rec))


def _never_tdxd_with_ild(
    finding: OrderFinding, record: PatientRecord, kb: Knowledge
) -> OrderFinding:
    """A fix must never order T-DXd (agents.ild_excluded) for a patient with ILD on record."""
    rep = finding.replacement
    if rep is None or rep.drug not in kb.agents("ild_excluded"):
        return finding
    if not record.conditions_of("ild"):
        return finding
    note = (
        f" No {short_name(kb, rep.drug)} replacement is offered: interstitial lung disease is on "
        "record."
    )
    return dataclasses.replace(finding, replacement=None, detail=finding.detail + note)
