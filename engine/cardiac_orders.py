"""Order checks of the cardiac and monitoring rules (CLINICAL.md section 4).

cardiac-lvef by each ordered drug's own label, else lvef-due (a baseline before starting), and
tdxd-ild-monitoring on a T-DXd order. Each order is checked alone (the fix gate needs that);
`one_lvef_finding` then makes ONE LVEF finding of an answer, naming every drug concerned, and
none for an order the same answer says not to give (review 2, N13).
"""

from __future__ import annotations

import dataclasses

from engine.cardiac import due_months, label_monitoring, lvef_overdue, running_concerned
from engine.cardiac_rules import Concerned, judge
from engine.history import current_exposures
from engine.knowledge import Knowledge
from engine.model import DraftOrder, OrderFinding, PatientRecord
from engine.order_context import OrderCtx
from engine.warning_text import make_finding

LVEF_RULES = ("cardiac-lvef", "lvef-due")
MONITORING = (*LVEF_RULES, "tdxd-ild-monitoring")


def lvef_finding(
    record: PatientRecord,
    kb: Knowledge,
    drugs: list[str],
    order_id: str,
    beside: tuple[str, ...] = (),
) -> OrderFinding | None:
    """The LVEF finding for these ordered drugs: each judged by its own label (cardiac-lvef),
    with the lvef-due words when no LVEF is recent; lvef-due alone when no label rule is met.
    `beside`: other HER2-directed drugs ordered with them, whose label's LVEF rule (or its
    absence) is named too."""
    drugs = list(dict.fromkeys(drugs))
    running = running_concerned(record, kb)
    mine = {c.drug: c for c in running}
    monitored = [d for d in drugs if d in kb.agents("cardiac_monitored")]
    base_start = min((c.start for c in running if c.start), default=None)
    concerned = [mine.get(d) or Concerned(d, "ordered") for d in monitored]
    verdict = judge(record, kb, concerned, base_start) if concerned else None
    given = {e.drug for e in current_exposures(record)}
    continuing = [d for d in drugs if d in given and kb.is_her2_directed(d)]
    due = [d for d in drugs if d in continuing or d in kb.agents("lvef_baseline")]
    overdue, last, ids = lvef_overdue(record, kb)
    named = [d for d in (*drugs, *beside) if kb.is_her2_directed(d)]
    labels, evidence = label_monitoring(kb, named)
    if verdict is not None:
        words = ""
        if overdue and due:
            joined = make_finding(
                kb, "lvef-due", "joined", order_id, (), months=due_months(kb), last=last
            )
            words = joined.detail
        finding = make_finding(
            kb,
            "cardiac-lvef",
            "ordered",
            order_id,
            [*verdict.source_ids, *(ids if words else ())],
            severity=verdict.severity,
            drug=", ".join(monitored),
            due=words,
            **verdict.fields(kb),
        )
        cite = tuple(dict.fromkeys((*verdict.evidence(kb), *evidence)))
        return dataclasses.replace(finding, withhold=verdict.withhold, evidence=cite)
    if not overdue or not due:
        return None
    finding = make_finding(
        kb,
        "lvef-due",
        "continuing" if due == continuing else "ordered",
        order_id,
        ids,
        drug=", ".join(due),
        months=due_months(kb),
        last=last,
        labels=labels,
    )
    return dataclasses.replace(finding, evidence=evidence or finding.evidence)


def cardiac_check(order: DraftOrder, ctx: OrderCtx) -> OrderFinding | None:
    """cardiac-lvef / lvef-due for one order, by its drug's own label."""
    if order.drug is None:
        return None
    return lvef_finding(ctx.record, ctx.kb, [order.drug], order.resource_id)


def ild_monitoring_check(order: DraftOrder, ctx: OrderCtx) -> OrderFinding | None:
    """tdxd-ild-monitoring: T-DXd ordered with no ILD on record (with ILD, tdxd-ild says it)."""
    concerned = ctx.kb.agents("ild_excluded")  # the agents of the tdxd-ild rules
    if order.drug not in concerned or ctx.record.conditions_of("ild"):
        return None
    first = next(o for o in ctx.orders if o.drug in concerned)
    if first.resource_id != order.resource_id:
        return None  # one card per answer, on the first T-DXd order
    return make_finding(ctx.kb, "tdxd-ild-monitoring", "ordered", order.resource_id, ())


def one_lvef_finding(
    record: PatientRecord,
    kb: Knowledge,
    orders: tuple[DraftOrder, ...],
    found: list[OrderFinding],
) -> list[OrderFinding]:
    """The answer's LVEF findings as one, naming all the drugs concerned; an order that another
    finding of the same answer marks critical (do not give it) gets no LVEF or ILD-monitoring
    advice (nor ILD monitoring when its own LVEF finding says not to start it); nor one that a
    warning says not to give (its variant `withholds_order`: progressed on it, review 3 C7)."""
    lvef = [f for f in found if f.rule in LVEF_RULES]
    drug_of = {o.resource_id: o.drug for o in orders}
    stopped = {
        f.order_id
        for f in found
        if f.rule not in MONITORING
        and (f.severity == "critical" or drug_of.get(f.order_id) in f.withhold)
    }
    critical_lvef = {f.order_id for f in lvef if f.severity == "critical"}
    found = [
        f
        for f in found
        if f.rule != "tdxd-ild-monitoring" or not ({f.order_id} & (stopped | critical_lvef))
    ]
    if not lvef:
        return found
    concerned = {f.order_id for f in lvef} - stopped
    drugs = [str(o.drug) for o in orders if o.resource_id in concerned and o.drug]
    beside = tuple(str(o.drug) for o in orders if o.drug and o.resource_id not in stopped)
    keep = [f for f in found if f.rule not in LVEF_RULES]
    first = next((f.order_id for f in lvef if f.order_id in concerned), None)
    one = lvef_finding(record, kb, drugs, first, beside) if first is not None and drugs else None
    if one is None:
        return keep
    at = found.index(next(f for f in lvef if f.order_id == first))
    keep.insert(min(at, len(keep)), one)
    return keep
