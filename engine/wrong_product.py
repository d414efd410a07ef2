"""The wrong-product order check: trastuzumab products are not interchangeable (seed 002)."""

from __future__ import annotations

from engine.history import current_drugs, current_exposures
from engine.model import DraftOrder, OrderFinding
from engine.off_sequence import offered_in
from engine.order_context import OrderCtx, own_regimen
from engine.warning_text import component_replacement, make_finding


def _planned_conjugate(order: DraftOrder, ctx: OrderCtx) -> tuple[str, str] | None:
    """(conjugate, how it is planned) when a plain trastuzumab order may be the wrong product."""
    conj = ctx.kb.agents("conjugates")
    plain = ctx.kb.agents("plain_trastuzumab")
    # trastuzumab ordered with a new partner is a new regimen (beyond progression), not a mix-up
    partners = [o for o in ctx.others(order) if o.drug and o.drug not in plain]
    running = current_drugs(ctx.record) & conj
    if running and not partners and not current_drugs(ctx.record) & plain:
        return sorted(running)[0], "ongoing"
    if order.dose_unit and order.dose_value is not None:
        for drug in sorted(conj):
            dose = ctx.kb.parameters["doses"].get(drug)
            if dose and order.dose_value == dose["value"] and "kg" in order.dose_unit:
                return drug, f"dosed as ({order.dose_value:g} mg/kg)"
    rec = ctx.rec
    if rec is not None and rec.timing == "now":
        planned = set(rec.preferred.regimen.drugs) & conj
        if planned and not partners:
            return sorted(planned)[0], "the recommended next regimen"
    return None


def wrong_product(order: DraftOrder, ctx: OrderCtx) -> OrderFinding | None:
    kb = ctx.kb
    family = kb.agents("conjugates") | kb.agents("plain_trastuzumab")
    if (
        order.drug in family
        and order.text_drug in family
        and order.text_drug != order.drug
        and order.text_drug is not None
    ):
        planned = _planned_conjugate(order, ctx)
        target = planned[0] if planned and planned[0] in (order.drug, order.text_drug) else None
        rep = component_replacement(kb, own_regimen(kb, target), target) if target else None
        note = (
            f"The plan points to {target}."
            if rep
            else "Clarify which product is meant before signing; no replacement is suggested."
        )
        return make_finding(
            kb,
            "wrong-product",
            "mismatch",
            order.resource_id,
            [],
            rep,
            code_drug=order.drug,
            text_drug=order.text_drug,
            text=order.text,
            replacement_note=note,
        )
    if order.drug not in kb.agents("plain_trastuzumab"):
        return None
    families = {kb.family(o.drug) for o in ctx.orders if o.drug}
    if ctx.rec is not None and offered_in(families, ctx.rec, kb):
        return None  # the order set is a regimen the recommendation offers, not a mix-up
    planned = _planned_conjugate(order, ctx)
    if planned is None:
        return None
    drug, how = planned
    ids = [s for e in current_exposures(ctx.record) if e.drug == drug for s in e.source_ids]
    return make_finding(
        kb,
        "wrong-product",
        "plain",
        order.resource_id,
        ids,
        component_replacement(kb, own_regimen(kb, drug), drug),
        planned=drug,
        how=how,
        facts=f"Plain trastuzumab is ordered while {drug} is {how}",
    )
