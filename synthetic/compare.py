"""Scoring the service against the answer files: what the cards say, and where they disagree.

Compared fields (issue 10): the outcome (recommendation, data-needed, nothing), the line number
(= metastatic line count + 1), the timing, the next regimen id, and the warning rules. The
tolerances are in the answer file (acceptable regimens, optional warnings, acceptable outcomes),
each explained there; nothing else is tolerant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

EXT = "org.her2cds"


def observe(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """What a CDS client sees in the cards: the next line, warnings and data needs."""
    obs: dict[str, Any] = {
        "line": None,
        "timing": None,
        "regimen": None,
        "warnings": [],
        "data_needed": [],
        "cards": len(cards),
    }
    for card in cards:
        ext = (card.get("extension") or {}).get(EXT) or {}
        kind = ext.get("kind")
        if kind == "next-line":
            obs["line"] = ext.get("line")
            obs["timing"] = ext.get("timing")
            obs["regimen"] = (ext.get("regimen") or {}).get("id")
        elif kind == "warning" and ext.get("rule"):
            obs["warnings"].append(str(ext["rule"]))
            obs["warnings"] += [str(r) for r in ext.get("alsoRules") or ()]  # one card, two rules
        elif kind == "data-needed":
            obs["data_needed"].append(str(ext.get("missing", "")))
    obs["warnings"] = sorted(set(obs["warnings"]))
    obs["data_needed"] = sorted(set(obs["data_needed"]))
    if obs["regimen"] is not None:
        obs["outcome"] = "recommendation"
    elif obs["data_needed"]:
        obs["outcome"] = "data-needed:" + obs["data_needed"][0]
    elif cards:
        obs["outcome"] = "cards-without-regimen"
    else:
        obs["outcome"] = "none"
    return obs


def _outcome_ok(got: str, accepted: set[str]) -> bool:
    """An accepted outcome may end in "*" ("data-needed:*": any data-needed card)."""
    return any(got == a or (a.endswith("*") and got.startswith(a[:-1])) for a in accepted)


@dataclass(frozen=True)
class Disagreement:
    field: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected}, got {self.got}"


def compare(truth: dict[str, Any], obs: dict[str, Any]) -> list[Disagreement]:
    out: list[Disagreement] = []
    outcome = truth["outcome"]
    ok_outcomes = {outcome, *truth.get("acceptable_outcomes", [])}
    if not _outcome_ok(obs["outcome"], ok_outcomes):
        out.append(Disagreement("outcome", outcome, obs["outcome"]))
        if outcome == "none" or obs["outcome"] == "none":
            return out
    if outcome == "none" and obs["cards"]:
        out.append(Disagreement("cards", "no cards", f"{obs['cards']} card(s)"))
        return out
    exp = truth.get("expected")
    if exp and obs["outcome"] == "recommendation":
        if obs["line"] != exp["line"]:
            out.append(Disagreement("line", str(exp["line"]), str(obs["line"])))
        if obs["timing"] != exp["timing"]:
            out.append(Disagreement("timing", exp["timing"], str(obs["timing"])))
        acceptable = exp.get("acceptable_regimens") or [exp["regimen"]]
        if obs["regimen"] not in acceptable:
            want = exp["regimen"] if len(acceptable) == 1 else "one of " + "|".join(acceptable)
            out.append(Disagreement("regimen", str(want), str(obs["regimen"])))
    required = set(truth["warnings"]["required"])
    optional = set(truth["warnings"]["optional"])
    got = set(obs["warnings"])
    for rule in sorted(required - got):
        out.append(Disagreement(f"warning:{rule}", "shown", "missing"))
    for rule in sorted(got - required - optional):
        out.append(Disagreement(f"warning:{rule}", "not shown", "shown"))
    return out


@dataclass
class ShapeScore:
    """Agreement of the patients of one issue-18 shape (or of the shape-less rest)."""

    shape: str
    rule: str = ""
    patients: int = 0
    agree: int = 0
    fields: dict[str, int] = dc_field(default_factory=dict)
    examples: dict[str, str] = dc_field(default_factory=dict)  # field -> "patient: disagreement"


def by_shape(
    rows: Iterable[tuple[dict[str, Any], list[Disagreement]]],
    rules: dict[str, str] | None = None,
) -> dict[str, ShapeScore]:
    """Disagreements per shape: `rows` are (answer file, its disagreements) per patient;
    `rules` names the CLINICAL.md rule each shape is about (catalogue `shapes`)."""
    rules = rules or {}
    out: dict[str, ShapeScore] = {}
    for truth, found in rows:
        shape = str(truth.get("shape") or "") or "(no shape)"
        score = out.setdefault(shape, ShapeScore(shape, rules.get(shape, "")))
        score.patients += 1
        score.agree += int(not found)
        for d in found:
            score.fields[d.field] = score.fields.get(d.field, 0) + 1
            score.examples.setdefault(d.field, f"{truth.get('patient_id')}: {d}")
    return dict(sorted(out.items()))


def shape_table(scores: dict[str, ShapeScore]) -> str:
    """The per-shape disagreements as a Markdown table (for DISAGREEMENTS.md and reports)."""
    rows = [
        "| shape | CLINICAL.md rule | agree | disagreements (field: count) | example |",
        "|---|---|---|---|---|",
    ]
    for s in scores.values():
        fields = ", ".join(f"{f}: {n}" for f, n in sorted(s.fields.items(), key=lambda kv: -kv[1]))
        example = next(iter(s.examples.values()), "")
        rows.append(
            f"| {s.shape} | {s.rule} | {s.agree}/{s.patients} | {fields or '-'} | {example} |"
        )
    return "\n".join(rows) + "\n"
