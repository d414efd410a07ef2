"""Which uncertain facts change advice (warnings.yaml `uncertain_facts`), read and checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.model import Evidence


@dataclass(frozen=True)
class UncertainRule:
    """One concept whose doubt is said on a card: the drugs it concerns and the words."""

    concept: str
    name: str
    drugs: tuple[str, ...]
    history_counts: bool  # an established fact at any clinicalStatus settles it (ILD ever)
    order_severity: str  # of the card on an order of one of `drugs` (warning holds one-clicks)
    confirm: str
    consequence: str
    if_confirmed: str
    meanwhile: str
    evidence: tuple[Evidence, ...]
    while_on: str = ""  # what to do when one of `drugs` is running ("" : the plain card)


def parse_uncertain(
    doc: dict[str, Any], drugs: set[str], evidence: dict[str, Evidence]
) -> tuple[dict[str, UncertainRule], list[str]]:
    """The table, and what in it names an unknown drug or evidence entry."""
    out: dict[str, UncertainRule] = {}
    errors: list[str] = []
    for concept, e in (doc.get("uncertain_facts") or {}).items():
        errors += [f"{concept}: unknown drug {d!r}" for d in e["drugs"] if d not in drugs]
        errors += [f"{concept}: unknown evidence {x!r}" for x in e["evidence"] if x not in evidence]

        def words(key: str, entry: dict[str, Any] = e) -> str:
            return " ".join(str(entry[key]).split())

        out[concept] = UncertainRule(
            concept=concept,
            name=words("name"),
            drugs=tuple(e["drugs"]),
            history_counts=bool(e["history_counts"]),
            order_severity=str(e["order_severity"]),
            confirm=words("confirm"),
            consequence=words("consequence"),
            if_confirmed=words("if_confirmed"),
            meanwhile=words("meanwhile"),
            evidence=tuple(evidence[x] for x in e["evidence"] if x in evidence),
            while_on=words("while_on") if "while_on" in e else "",
        )
    return out, errors
