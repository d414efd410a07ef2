"""Order-check cards: one per finding, with a one-click fix (create the fix, delete the draft)."""

from __future__ import annotations

import re
from typing import Any

from cards.based_on import based_on_extension, based_on_markdown, group_sources
from cards.common import (
    UuidFactory,
    compact,
    evidence_links,
    evidence_section,
    extension,
    override_reasons,
    shorten,
    source,
)
from cards.orders_fhir import create_actions
from engine.model import OrderFinding, PatientRecord

# A FHIR relative reference "Type/id" (FHIR ids: 1-64 of A-Z a-z 0-9 - .): only such a draft can
# be deleted by a suggestion.
_REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")


def order_card(
    finding: OrderFinding,
    version: str,
    patient_id: str,
    uuids: UuidFactory,
    *,
    signing: bool = False,
    record: PatientRecord | None = None,
) -> dict[str, Any]:
    """One card per finding; a finding with a fix gets a suggestion that creates the replacement
    and then deletes the draft. Critical findings stay critical on order-sign."""
    severity = finding.severity
    sources = group_sources(finding.source_ids, record)
    detail = finding.detail + evidence_section(finding.evidence)
    card: dict[str, Any] = {
        "uuid": uuids(f"order:{finding.rule}:{finding.order_id}"),
        "summary": shorten(finding.summary),
        "detail": detail + based_on_markdown(sources),
        "indicator": severity,
        "source": source(version, finding.rule, "Order check"),
        "extension": extension(
            "order-check",
            version,
            rule=finding.rule,
            order=finding.order_id,
            signing=signing or None,
            basedOn=based_on_extension(sources),
            withhold=list(finding.withhold) or None,
        ),
    }
    rep = finding.replacement
    adds = rep is not None and rep.action == "add"
    if rep is not None and not adds and not _REFERENCE.fullmatch(finding.order_id):
        # Without an id the draft cannot be deleted: creating the fix alone would leave both
        # orders, so say the fix instead of offering half of it.
        card["detail"] += (
            f"\n\n**Fix:** remove this draft and order {rep.label} instead (the draft has no id, "
            "so it cannot be replaced in one click)."
        )
    elif rep is not None:
        creates = [
            a
            for comp in rep.components or (rep.component,)
            for a in create_actions(comp, patient_id, intent="order", verb="Order")
        ]
        # "add" keeps the draft (e.g. chemotherapy) and adds the missing drug beside it;
        # "replace" creates the fix FIRST, then deletes the draft: a client that applies only a
        # suggestion's first action still ends with the right order, never with none.
        deletes = [
            {
                "type": "delete",
                "description": f"Remove the draft order {rid}",
                "resourceId": rid,
            }
            for rid in (finding.order_id, *rep.also_delete)
            if _REFERENCE.fullmatch(rid)
        ]
        actions = creates if adds else creates + deletes
        card["detail"] += (
            f"\n\n**Suggested:** {'add' if adds else 'order instead'} {rep.label} (one click: "
            + ("adds it beside the draft)." if adds else "orders it, then removes the draft).")
        )
        card["suggestions"] = [
            {
                "label": shorten(f"{'Add' if adds else 'Replace with'} {rep.label}", 100),
                "uuid": uuids(f"fix:{finding.rule}:{finding.order_id}"),
                "isRecommended": True,
                "actions": actions,
            }
        ]
        card["selectionBehavior"] = "at-most-one"
    if finding.override_reasons:
        card["overrideReasons"] = override_reasons(finding.override_reasons)
    card["links"] = evidence_links(finding.evidence)
    result: dict[str, Any] = compact(card)
    return result
