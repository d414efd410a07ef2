"""Order check: a new line ordered while the card asks why the last one stopped (fourth outside
review, N2: in 00010 and 00149 the patient view asks why HER2-directed therapy stopped and
offers no one-click order, while the order hooks said nothing and offered one-click fixes).

CLINICAL.md section 2 rule 5 and section 4 her2-blockade-stopped: the stop reason decides
between the next line (progression) and resuming (toxicity or a break); cards in one answer,
and across the hooks, agree.
"""

from __future__ import annotations

import dataclasses

from engine.lapse import NOT_RECORDED, Lapse, ask_why, line_lapse
from engine.model import DraftOrder, OrderFinding
from engine.order_context import OrderCtx
from engine.warning_text import make_finding

VARIANT = "line-stopped-order"


def unexplained_stop(ctx: OrderCtx) -> Lapse | None:
    """The whole latest line stopped, no progression and no reason recorded."""
    lapse = line_lapse(ctx.record, ctx.kb)
    if lapse is None or not lapse.whole_line or lapse.reason != NOT_RECORDED:
        return None
    return lapse


def _anticancer(ctx: OrderCtx, order: DraftOrder) -> bool:
    return order.drug is not None and ctx.kb.drug(order.drug) is not None


def stop_reason_check(order: DraftOrder, ctx: OrderCtx) -> OrderFinding | None:
    """One warning per order set, on its first anticancer order."""
    lapse = unexplained_stop(ctx)
    if lapse is None or not _anticancer(ctx, order):
        return None
    first = next(o for o in ctx.orders if _anticancer(ctx, o))
    if first.resource_id != order.resource_id:
        return None
    rec = ctx.rec
    regimen = ctx.kb.regimens[rec.preferred.regimen.id].short if rec is not None else None
    return make_finding(
        ctx.kb,
        "her2-blockade-stopped",
        VARIANT,
        order.resource_id,
        [sid for s in lapse.stopped for sid in s.source_ids],
        line=lapse.line.number,
        line_name=lapse.line.regimen_name,
        stopped=lapse.listed(),
        ask=ask_why(lapse, rec.line if rec is not None else None, regimen),
    )


def hold_fixes_until_the_reason_is_known(
    ctx: OrderCtx, found: list[OrderFinding]
) -> list[OrderFinding]:
    """No one-click fix while the reason is asked: the patient view's own policy
    (engine/one_click.py)."""
    if unexplained_stop(ctx) is None:
        return found
    note = (
        " No one-click fix is offered: the reason the last line stopped is not recorded; record"
        " why first (progression: the next line; toxicity or a break: resume)."
    )
    return [
        dataclasses.replace(f, replacement=None, detail=f.detail + note) if f.replacement else f
        for f in found
    ]
