"""One piece of advice: a fix or suggestion never creates what our own order checks would flag.

Each suggested order is checked, before it is offered, with the same order checks a signed
order gets (for this patient, beside the orders it would stay with); a flagged one is not
offered, and the card says why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from engine.knowledge import Knowledge
from engine.model import Component, DraftOrder, OrderFinding

FLAGGED = ("warning", "critical")
PROPOSED = "MedicationRequest/proposed-"

Run = Callable[[tuple[DraftOrder, ...]], list[OrderFinding]]


def proposed_orders(kb: Knowledge, components: Iterable[Component]) -> tuple[DraftOrder, ...]:
    """Draft orders as the mappers would read the orders these components create."""
    out = []
    for i, c in enumerate(components):
        info = kb.drug(c.drug)
        out.append(
            DraftOrder(
                resource_id=f"{PROPOSED}{i}",
                drug=c.drug,
                drug_class=info.drug_class if info else None,
                text=f"{c.drug} {c.dose} {c.route} {c.schedule}",
                dose_value=c.dose_value,
                dose_unit=c.dose_unit,
            )
        )
    return tuple(out)


def flagged(findings: Iterable[OrderFinding]) -> list[OrderFinding]:
    return [f for f in findings if f.severity in FLAGGED]


def why_not(findings: list[OrderFinding]) -> str:
    """The findings that keep an order from being offered, in words."""
    return "; ".join(dict.fromkeys(f.summary for f in findings))


def _created(finding: OrderFinding) -> tuple[Component, ...]:
    rep = finding.replacement
    if rep is None:
        return ()
    return rep.components or (rep.component,)


def gate_fixes(
    kb: Knowledge, orders: tuple[DraftOrder, ...], found: list[OrderFinding], run: Run
) -> list[OrderFinding]:
    """Drop each fix that, applied to the order set, would itself be flagged (on the orders it
    creates, or as a new or changed finding on the orders it keeps); the finding says why."""
    before = {(f.rule, f.order_id, f.summary) for f in flagged(found)}
    out = []
    for finding in found:
        rep = finding.replacement
        if rep is None:
            out.append(finding)
            continue
        removed = set() if rep.action == "add" else {finding.order_id, *rep.also_delete}
        kept = tuple(o for o in orders if o.resource_id not in removed)
        created = proposed_orders(kb, _created(finding))
        ids = {o.resource_id for o in created}
        after = flagged(run(kept + created))
        new = [
            f for f in after if f.order_id in ids or (f.rule, f.order_id, f.summary) not in before
        ]
        if not new:
            out.append(finding)
            continue
        note = (
            f" No one-click fix is offered: ordering {rep.label} here would be flagged too "
            f"({why_not(new)})."
        )
        out.append(dataclasses.replace(finding, replacement=None, detail=finding.detail + note))
    return out


_RANK = {"critical": 0, "warning": 1, "info": 2}


def one_fix_per_order(found: list[OrderFinding], prefer: str) -> list[OrderFinding]:
    """Two cards on one order never offer the same orders: the most severe card keeps the
    one-click (on a tie, the `prefer` rule's card, which names the recommended regimen); the
    other says where it is."""
    best: dict[tuple[str, frozenset[str]], OrderFinding] = {}
    for f in found:
        if f.replacement is None:
            continue
        key = (f.order_id, frozenset(c.drug for c in _created(f)))
        old = best.get(key)
        rank = (_RANK.get(f.severity, 3), f.rule != prefer)
        if old is None or rank < (_RANK.get(old.severity, 3), old.rule != prefer):
            best[key] = f
    out = []
    for f in found:
        key = (f.order_id, frozenset(c.drug for c in _created(f)))
        if f.replacement is not None and best[key] is not f:
            note = f" The replacement is offered on the {best[key].rule} card."
            f = dataclasses.replace(f, replacement=None, detail=f.detail + note)
        out.append(f)
    return out
