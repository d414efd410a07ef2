"""Warning and data-needed cards."""

from __future__ import annotations

from typing import Any

from cards.common import (
    UuidFactory,
    evidence_links,
    evidence_markdown,
    extension,
    override_reasons,
    shorten,
    source,
    sources_markdown,
)
from engine.model import Alert, DataNeed


def alert_card(alert: Alert, version: str, uuids: UuidFactory) -> dict[str, Any]:
    detail = alert.detail
    if alert.evidence:
        detail += "\n\n### Evidence\n" + evidence_markdown(alert.evidence)
    card: dict[str, Any] = {
        "uuid": uuids(f"alert:{alert.rule}"),
        "summary": shorten(alert.summary),
        "detail": detail + sources_markdown(alert.source_ids),
        "indicator": alert.severity,
        "source": source(version, alert.rule, "Safety warning"),
        "extension": extension("warning", version, rule=alert.rule),
    }
    if alert.override_reasons:
        card["overrideReasons"] = override_reasons(alert.override_reasons)
    links = evidence_links(alert.evidence)
    if links:
        card["links"] = links
    return card


def data_needed_card(need: DataNeed, version: str, uuids: UuidFactory) -> dict[str, Any]:
    return {
        "uuid": uuids(f"data-needed:{need.what}"),
        "summary": shorten(need.summary),
        "detail": need.detail + sources_markdown(need.source_ids),
        "indicator": "warning" if need.what == "knowledge-gap" else "info",
        "source": source(version, "data-needed", "Data needed"),
        "extension": extension("data-needed", version, missing=need.what),
    }
