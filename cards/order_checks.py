"""Order-check cards: one per finding, with a one-click fix (delete the draft, create the fix)."""

from __future__ import annotations

from typing import Any

from cards.common import (
    UuidFactory,
    compact,
    evidence_links,
    evidence_markdown,
    extension,
    override_reasons,
    shorten,
    source,
    sources_markdown,
)
from cards.orders_fhir import medication_request
from engine.model import OrderFinding


def order_card(
    finding: OrderFinding,
    version: str,
    patient_id: str,
    uuids: UuidFactory,
    *,
    signing: bool = False,
) -> dict[str, Any]:
    """One card per finding; a finding with a fix gets a suggestion that deletes the draft and
    creates the replacement. Critical findings stay critical on order-sign."""
    severity = finding.severity
    detail = finding.detail
    if finding.evidence:
        detail += "\n\n### Evidence\n" + evidence_markdown(finding.evidence)
    card: dict[str, Any] = {
        "uuid": uuids(f"order:{finding.rule}:{finding.order_id}"),
        "summary": shorten(finding.summary),
        "detail": detail + sources_markdown(finding.source_ids),
        "indicator": severity,
        "source": source(version, finding.rule, "Order check"),
        "extension": extension(
            "order-check",
            version,
            rule=finding.rule,
            order=finding.order_id,
            signing=signing or None,
        ),
    }
    if finding.replacement is not None:
        rep = finding.replacement
        card["suggestions"] = [
            {
                "label": shorten(f"Replace with {rep.label}", 100),
                "uuid": uuids(f"fix:{finding.rule}:{finding.order_id}"),
                "isRecommended": True,
                "actions": [
                    {
                        "type": "delete",
                        "description": f"Remove the draft order {finding.order_id}",
                        "resourceId": finding.order_id,
                    },
                    {
                        "type": "create",
                        "description": f"Order {rep.label}",
                        "resource": medication_request(rep.component, patient_id),
                    },
                ],
            }
        ]
        card["selectionBehavior"] = "at-most-one"
    if finding.override_reasons:
        card["overrideReasons"] = override_reasons(finding.override_reasons)
    card["links"] = evidence_links(finding.evidence)
    result: dict[str, Any] = compact(card)
    return result
