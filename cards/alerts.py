"""Warning and data-needed cards."""

from __future__ import annotations

from collections.abc import Mapping
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
from engine.model import Alert, DataNeed, PatientRecord


def alert_card(
    alert: Alert,
    version: str,
    uuids: UuidFactory,
    timeline: dict[str, Any] | None = None,
    record: PatientRecord | None = None,
) -> dict[str, Any]:
    """One card per warning, rendered from the Alert's fields only (new rules need no code);
    `record` words its "Based on" (the ids grouped by the fact each establishes)."""
    sources = group_sources(alert.source_ids, record)
    detail = alert.detail + evidence_section(alert.evidence)
    card: dict[str, Any] = {
        "uuid": uuids(f"alert:{alert.rule}"),
        "summary": shorten(alert.summary),
        "detail": detail + based_on_markdown(sources),
        "indicator": alert.severity,
        # an info card (re-biopsy, monitoring due) is advice, not a safety warning
        "source": source(
            version, alert.rule, "Clinical advice" if alert.severity == "info" else "Safety warning"
        ),
        "extension": extension(
            "warning",
            version,
            rule=alert.rule,
            basedOn=based_on_extension(sources),
            withhold=list(alert.withhold) or None,
            alsoRules=list(alert.also) or None,
        ),
    }
    if alert.override_reasons:
        card["overrideReasons"] = override_reasons(alert.override_reasons)
    links = evidence_links(alert.evidence)
    if timeline:
        links.append(timeline)
    card["links"] = links
    result: dict[str, Any] = compact(card)
    return result


def data_needed_card(
    need: DataNeed,
    version: str,
    uuids: UuidFactory,
    same_problem: Alert | None = None,
    record: PatientRecord | None = None,
    what_to_record: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Says what is missing and what to record; never a regimen guessed without it.

    `same_problem` is the warning about the same missing fact (e.g. the her2-status rule when
    HER2 is unknown): its advice joins this card instead of showing a second card.
    `what_to_record`: per missing fact, what to record, with the codes the mappers read
    (fhir_mappers.what_to_record, from the terminology), so the card says what unblocks advice.
    """
    sources = group_sources(need.source_ids, record)
    detail = need.detail
    hint = (what_to_record or {}).get(need.what)
    if hint:
        detail += "\n\n### What is missing\n- " + hint
    if same_problem is not None:
        detail += "\n\n### Advice\n" + same_problem.detail
    card = {
        "uuid": uuids(f"data-needed:{need.what}"),
        "summary": shorten(need.summary),
        "detail": detail + based_on_markdown(sources),
        "indicator": "warning" if need.what == "knowledge-gap" else "info",
        "source": source(version, "data-needed", "Data needed"),
        "extension": extension(
            "data-needed",
            version,
            missing=need.what,
            rule=same_problem.rule if same_problem is not None else None,
            basedOn=based_on_extension(sources),
        ),
    }
    result: dict[str, Any] = compact(card)
    return result
