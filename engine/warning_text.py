"""Warnings in words: fill the templates of engine/knowledge/warnings.yaml into Alerts/OrderFindings."""

from __future__ import annotations

from collections.abc import Iterable

from engine.knowledge import Knowledge
from engine.model import Alert, Coding, OrderFinding, Replacement

OVERRIDE_SYSTEM = "http://her2cds.org/CodeSystem/override-reason"


def override(code: str, display: str) -> Coding:
    return Coding(OVERRIDE_SYSTEM, code, display)


def _fill(
    kb: Knowledge, rule: str, variant: str, fields: dict[str, object]
) -> tuple[str, str, str]:
    v = kb.warning(rule).variants[variant]
    text = {k: ("" if val is None else str(val)) for k, val in fields.items()}
    return v.summary.format(**text), " ".join(v.detail.format(**text).split()), v.severity


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
    summary, detail, sev = _fill(kb, rule, variant, fields)
    w = kb.warning(rule)
    return Alert(
        rule=rule,
        severity=severity or sev,
        summary=summary,
        detail=detail,
        source_ids=tuple(dict.fromkeys(source_ids)),
        evidence=w.evidence,
        override_reasons=tuple(override(c, d) for c, d in w.override_reasons),
        withhold=tuple(withhold),
        variant=variant,
    )


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
    summary, detail, sev = _fill(kb, rule, variant, fields)
    w = kb.warning(rule)
    return OrderFinding(
        rule=rule,
        severity=severity or sev,
        order_id=order_id,
        summary=summary,
        detail=detail,
        replacement=replacement,
        source_ids=tuple(dict.fromkeys(source_ids)),
        evidence=w.evidence,
        override_reasons=tuple(override(c, d) for c, d in w.override_reasons),
    )


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
