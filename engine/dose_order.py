"""The dose-check order check (CLINICAL.md section 4): an order of a drug with a dose rule
(parameters.yaml `doses`: T-DXd, T-DM1) at another dose than its breast-cancer dose in mg/kg
(T-DM1: above it), at a dose-reduction step, in another unit, or with no readable dose.
Words from warnings.yaml; the fix is the regimen's own component (regimens.yaml).
"""

from __future__ import annotations

from engine.model import DraftOrder, OrderFinding
from engine.order_context import OrderCtx, own_regimen
from engine.warning_text import component_replacement, make_finding


def dose_check(order: DraftOrder, ctx: OrderCtx) -> OrderFinding | None:
    """CLINICAL.md section 4 dose-check, on a structured dose or one read from the order's text;
    a drug with a dose rule whose dose cannot be read in mg/kg is said, never passed."""
    doses = ctx.kb.parameters["doses"]
    if order.drug is None or order.drug not in doses:
        return None
    if order.drug in ctx.kb.agents("ild_excluded") and ctx.record.conditions_of("ild"):
        return None  # no T-DXd dose is right with ILD on record: the tdxd-ild finding says so
    expected = doses[order.drug]
    info = ctx.kb.drug(order.drug)
    words = {
        "drug": order.drug,
        "short": (info.short if info and info.short else order.drug),
        "expected": f"{expected['value']:g}",
        "note": expected.get("note", ""),
    }
    value = order.dose_value
    if value is None:
        why = order.dose_problem or "the order gives no dose (structured or in its text)"
        return make_finding(
            ctx.kb, "dose-check", "unreadable", order.resource_id, [], why=why, **words
        )
    unit = (order.dose_unit or "").replace(" ", "").lower()
    if unit not in ("mg/kg", "mg/kg{body_weight}", "mg/kg/dose"):
        return make_finding(
            ctx.kb,
            "dose-check",
            "other-unit",
            order.resource_id,
            [],
            value=f"{value:g}",
            unit=order.dose_unit or "(no unit)",
            **words,
        )
    steps = [float(v) for v in expected.get("reductions", ())]
    if any(abs(value - v) < 1e-9 for v in steps):
        step = next(i for i, v in enumerate(steps, 1) if abs(value - v) < 1e-9)
        return make_finding(
            ctx.kb,
            "dose-check",
            "reduced",
            order.resource_id,
            [],
            value=f"{value:g}",
            step=step,
            steps=" -> ".join(f"{v:g}" for v in (expected["value"], *steps)),
            **words,
        )
    # parameters.yaml doses `limit`: T-DM1 is flagged only above its dose, T-DXd at any other
    at_most = expected["limit"] == "maximum"
    wrong = value > expected["value"] if at_most else value != expected["value"]
    if not wrong:
        return None
    return make_finding(
        ctx.kb,
        "dose-check",
        "ordered",
        order.resource_id,
        [],
        component_replacement(ctx.kb, own_regimen(ctx.kb, order.drug), order.drug),
        value=f"{value:g}",
        **words,
    )
