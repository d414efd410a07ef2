"""Order check: restarting T-DM1 with ILD on record after a course that stopped with no reason
(third outside review, M4; CLINICAL.md section 3 ILD modifier; KADCYLA label: permanently
discontinue T-DM1 once ILD or pneumonitis is diagnosed). T-DXd with ILD is tdxd-ild's.
"""

from __future__ import annotations

from engine.model import DraftOrder, OrderFinding
from engine.order_context import OrderCtx, short_name
from engine.warning_text import make_finding


def ild_restart_check(order: DraftOrder, ctx: OrderCtx) -> OrderFinding | None:
    """ild-restart: T-DM1 ordered, ILD on record, and its last course ended with no recorded
    reason (not progression, no stop reason): pneumonitis from it must be excluded first."""
    ild = ctx.record.conditions_of("ild")
    if order.drug is None or order.drug not in ctx.kb.agents("ild_restart") or not ild:
        return None
    courses = [e for e in ctx.record.exposures if e.drug == order.drug]
    last = max(courses, key=lambda e: e.start, default=None)
    if last is None or last.end is None or last.stopped_for_progression or last.stop_reason:
        return None
    if any(p.date >= last.start for p in ctx.record.progressions):
        return None  # a progression after it started explains the stop
    names = ", ".join(sorted({c.display or c.concept for c in ild}))
    return make_finding(
        ctx.kb,
        "ild-restart",
        "unexplained-stop",
        order.resource_id,
        [*last.source_ids, *(c.source_id for c in ild)],
        drug=short_name(ctx.kb, order.drug),
        last=last.end.isoformat(),
        conditions=names,
    )
