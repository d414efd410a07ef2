"""A card's "Based on": its source ids grouped by the fact each establishes, in words.

Groups come in the order a clinician checks them (HER2 result, progression, metastatic disease,
ILD and other risk conditions, LVEF, then the lines of therapy and early therapy, ...), the
deciding resource first in each (the HER2 result that decides the status, the latest
progression). The resources of one
course (one MedicationAdministration per cycle) are collapsed into a count with the first and
last id, never cut: every id stays in the card's extension (`basedOn`), machine-readable.
The words of each group: cards.source_groups.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cards.source_groups import (
    SourceGroup,
    SourceIndex,
    build_index,
    collapsed,
    condition_entry,
    condition_groups,
    day_text,
    early_group,
    her2_group,
    line_groups,
    lvef_group,
    metastasis_group,
    progression_group,
    quoted,
    simple_group,
)
from engine.model import PatientRecord

__all__ = ["SourceGroup", "based_on_extension", "based_on_markdown", "group_sources"]


def group_sources(
    source_ids: Iterable[str], record: PatientRecord | None = None
) -> tuple[SourceGroup, ...]:
    """The ids grouped by fact, deciding groups and resources first; no id is dropped."""
    ix = build_index(record) if record is not None else SourceIndex()
    wanted = sorted(dict.fromkeys(source_ids), key=ix.key)
    if not wanted:
        return ()
    if record is None:
        return (SourceGroup("records", "Records", (collapsed(wanted, ix.key),), tuple(wanted)),)
    groups: list[SourceGroup | None] = [
        her2_group(wanted, record, ix),
        progression_group(wanted, record, ix),
        metastasis_group(wanted, record, ix),
    ]
    # the short deciding facts (ILD, heart failure, LVEF) before the long therapy history
    used = {s for g in groups if g is not None for s in g.ids}
    groups += condition_groups(wanted, ix, used)
    groups.append(lvef_group(wanted, ix))
    groups += line_groups(wanted, record, ix)
    groups.append(early_group(wanted, record, ix))
    used = {s for g in groups if g is not None for s in g.ids}
    breast = [ix.breast[s] for s in wanted if s in ix.breast and s not in used]
    groups.append(
        simple_group(
            "breast-cancer",
            "Breast cancer diagnosis",
            [condition_entry(c) for c in breast],
            [c.source_id for c in breast],
        )
    )
    hr = [ix.receptors[s] for s in wanted if s in ix.receptors and s not in used]
    groups.append(
        simple_group(
            "hormone-receptors",
            "Hormone receptors",
            [f"{n} {r.status.value} ({day_text(r.date)}) {quoted(r.source_id)}" for n, r in hr],
            [r.source_id for _, r in hr],
        )
    )
    staging = [s for s in wanted if s in ix.staging and s not in used]
    groups.append(
        simple_group("staging", "Non-metastatic staging", [collapsed(staging, ix.key)], staging)
    )
    used = {s for g in groups if g is not None for s in g.ids}
    rest = [s for s in wanted if s not in used]
    groups.append(simple_group("other", "Other records", [collapsed(rest, ix.key)], rest))
    return tuple(g for g in groups if g is not None)


def based_on_markdown(groups: tuple[SourceGroup, ...]) -> str:
    """'### Based on' as a list, one item per fact (its entries nested when more than one)."""
    if not groups:
        return ""
    lines = ["", "", "### Based on"]
    for g in groups:
        if len(g.entries) == 1:
            lines.append(f"- **{g.label}:** {g.entries[0]}")
        else:
            lines.append(f"- **{g.label}:**")
            lines += [f"  - {e}" for e in g.entries]
    return "\n".join(lines)


def based_on_extension(groups: tuple[SourceGroup, ...]) -> list[dict[str, Any]]:
    """Every id of every group, for machines: [{"fact", "label", "ids"}]."""
    return [{"fact": g.fact, "label": g.label, "ids": list(g.ids)} for g in groups]


def sources_markdown(source_ids: Iterable[str], record: PatientRecord | None = None) -> str:
    """The rendered 'Based on' section of a card (empty without ids)."""
    return based_on_markdown(group_sources(source_ids, record))
