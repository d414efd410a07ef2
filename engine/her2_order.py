"""The her2-status order check: a HER2-directed order while HER2 is not confirmed positive.

CLINICAL.md section 3: "unknown HER2 status gives no regimen, only a card asking for it"; at
order time the same is said on the order (an outside review found a T-DXd order on an
equivocal IHC 2+ with only a baseline-LVEF info card, which reads as a go-ahead).
"""

from __future__ import annotations

from engine.model import DraftOrder, OrderFinding, ReceptorStatus
from engine.order_context import OrderCtx, drug_label
from engine.warning_text import make_finding

_METHOD = {"ihc": "IHC", "ish": "ISH", "interpretation": "a HER2 test result"}


def her2_unconfirmed(order: DraftOrder, ctx: OrderCtx) -> OrderFinding | None:
    """One warning per order set, on its first HER2-directed order."""
    kb, her2 = ctx.kb, ctx.record.her2
    if her2.status not in (ReceptorStatus.UNKNOWN, ReceptorStatus.EQUIVOCAL):
        return None
    directed = [o for o in ctx.orders if o.drug and kb.is_her2_directed(o.drug)]
    if not directed or directed[0].resource_id != order.resource_id:
        return None
    drugs = ", ".join(dict.fromkeys(drug_label(kb, str(o.drug)) for o in directed))
    ids = [r.source_id for r in her2.results] or list(ctx.record.metastatic_source_ids)
    if her2.status is ReceptorStatus.UNKNOWN:
        return make_finding(
            kb, "her2-status", "ordered-missing", order.resource_id, ids, drugs=drugs
        )
    basis = her2.basis
    when = basis.date.isoformat() if basis and basis.date else "an unknown date"
    desc = f"{_METHOD.get(basis.method, basis.method)} on {when}" if basis else "no detail"
    return make_finding(
        kb, "her2-status", "ordered-equivocal", order.resource_id, ids, drugs=drugs, basis=desc
    )
