"""Warnings in words: fill the templates of engine/knowledge/warnings.yaml into Alerts/OrderFindings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from engine.code_systems import OVERRIDE_SYSTEM
from engine.knowledge import Knowledge
from engine.model import Alert, Coding, Evidence, OrderFinding, Replacement


def override(code: str, display: str) -> Coding:
    return Coding(OVERRIDE_SYSTEM, code, display)


class _Words(TypedDict):
    rule: str
    severity: str
    summary: str
    detail: str
    source_ids: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    override_reasons: tuple[Coding, ...]


def _worded(
    kb: Knowledge,
    rule: str,
    variant: str,
    source_ids: Iterable[str],
    severity: str | None,
    fields: dict[str, object],
) -> _Words:
    """What an Alert and an OrderFinding share, from warnings.yaml: the rule's variant filled
    with `fields`, its severity (unless given), evidence and override reasons."""
    w = kb.warning(rule)
    v = w.variants[variant]
    text = {k: ("" if val is None else str(val)) for k, val in fields.items()}
    return {
        "rule": rule,
        "severity": severity or v.severity,
        "summary": v.summary.format(**text),
        "detail": " ".join(v.detail.format(**text).split()),
        "source_ids": tuple(dict.fromkeys(source_ids)),
        "evidence": w.evidence,
        "override_reasons": tuple(override(c, d) for c, d in w.override_reasons),
    }


def make_alert(
    kb: Knowledge,
    rule: str,
    variant: str,
    source_ids: Iterable[str],
    severity: str | None = None,
    withhold: Iterable[str] = (),
    **fields: object,
) -> Alert:
    """An Alert with the words, evidence and override reasons warnings.yaml gives this rule."""
    words = _worded(kb, rule, variant, source_ids, severity, fields)
    return Alert(**words, withhold=tuple(withhold), variant=variant)


def make_finding(
    kb: Knowledge,
    rule: str,
    variant: str,
    order_id: str,
    source_ids: Iterable[str],
    replacement: Replacement | None = None,
    severity: str | None = None,
    **fields: object,
) -> OrderFinding:
    """An OrderFinding worded from warnings.yaml, with the replacement that fixes it if any."""
    words = _worded(kb, rule, variant, source_ids, severity, fields)
    return OrderFinding(**words, order_id=order_id, replacement=replacement)


def component_replacement(
    kb: Knowledge, regimen_id: str, drug: str, action: str = "replace"
) -> Replacement | None:
    """The regimen component for `drug` as an order that would fix a finding."""
    rule = kb.regimens.get(regimen_id)
    if rule is None:
        return None
    comp = next((c for c in rule.regimen.components if c.drug == drug), None)
    if comp is None:
        return None
    label = f"{drug} {comp.dose} {comp.route} {comp.schedule}"
    return Replacement(drug=drug, label=label, component=comp, action=action)
