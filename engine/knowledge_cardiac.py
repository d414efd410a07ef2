"""The cardiac label rules of engine/knowledge/cardiac.yaml as typed objects (CLINICAL.md section 4).

Parsed by engine.knowledge when the knowledge base loads; evaluated by engine.cardiac_rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Condition:
    """One alternative of a rule: every bound that is set must hold."""

    lvef_below: float | None = None
    lvef_from: float | None = None
    lvef_to: float | None = None
    below_lln: bool = False
    drop_at_least: float | None = None
    drop_over: float | None = None
    drop_at_most: float | None = None

    def holds(self, lvef: float, drop: float, lln: float) -> bool:
        checks = (
            self.lvef_below is None or lvef < self.lvef_below,
            self.lvef_from is None or lvef >= self.lvef_from,
            self.lvef_to is None or lvef <= self.lvef_to,
            not self.below_lln or lvef < lln,
            self.drop_at_least is None or drop >= self.drop_at_least,
            self.drop_over is None or drop > self.drop_over,
            self.drop_at_most is None or drop <= self.drop_at_most,
        )
        return all(checks)


@dataclass(frozen=True)
class LabelRule:
    """A hold / discontinue rule of one label: any of `when` meets it."""

    id: str
    action: str
    says: str
    when: tuple[Condition, ...]
    confirmed: str | None = None  # the action when the repeat LVEF meets it again

    def met(self, lvef: float, drop: float, lln: float) -> bool:
        return any(c.holds(lvef, drop, lln) for c in self.when)


@dataclass(frozen=True)
class Escalation:
    """A label's further step: persistent decline (days), repeated holds (more_than), heart failure."""

    action: str
    says: str
    days: int | None = None
    more_than: int | None = None


@dataclass(frozen=True)
class CardiacLabel:
    """The LVEF rules of one US label, with its recheck interval and quoted wording."""

    drug: str
    covers: tuple[str, ...]
    label: str
    evidence: str
    recheck: str
    recheck_days: int
    rules: tuple[LabelRule, ...]
    heart_failure: Escalation
    quote: str
    verified: bool
    verification: str
    persistent: Escalation | None = None
    max_holds: Escalation | None = None
    monitoring: str = ""  # what the label says about LVEF before and during treatment
    monitoring_verified: bool = False


@dataclass(frozen=True)
class NoLvefRule:
    """A HER2-directed drug whose label has no LVEF rule: the cards say so."""

    drug: str
    label: str
    says: str
    verified: bool


@dataclass(frozen=True)
class CardiacKnowledge:
    """cardiac.yaml: labels by drug id, the action words, the rule under the critical LVEF."""

    labels: dict[str, CardiacLabel]
    actions: dict[str, str]
    under_critical: Escalation
    actions_before_start: dict[str, str] = field(default_factory=dict)
    wording: dict[str, str] = field(default_factory=dict)
    no_lvef_rule: dict[str, NoLvefRule] = field(default_factory=dict)

    def say(self, key: str, **fields: object) -> str:
        return self.wording[key].format(**fields)

    def label_for(self, drug: str) -> CardiacLabel | None:
        return self.labels.get(drug)


def _escalation(d: dict[str, Any] | None) -> Escalation | None:
    if d is None:
        return None
    return Escalation(d["action"], d["says"], d.get("days"), d.get("more_than"))


def parse_cardiac(doc: dict[str, Any]) -> CardiacKnowledge:
    """cardiac.yaml (already schema-valid) as objects, keyed by every drug id a label covers."""
    labels: dict[str, CardiacLabel] = {}
    for entry in doc["labels"]:
        hf = entry["heart_failure"]
        label = CardiacLabel(
            drug=entry["drug"],
            covers=tuple(entry["covers"]),
            label=entry["label"],
            evidence=entry["evidence"],
            recheck=entry["recheck"],
            recheck_days=entry["recheck_days"],
            rules=tuple(
                LabelRule(
                    id=r["id"],
                    action=r["action"],
                    says=r["says"],
                    when=tuple(Condition(**c) for c in r["when"]),
                    confirmed=r.get("confirmed"),
                )
                for r in entry["rules"]
            ),
            heart_failure=Escalation(hf["action"], hf["says"]),
            quote=" ".join(entry["quote"].split()),
            verified=entry["verified"],
            verification=" ".join(entry["verification"].split()),
            persistent=_escalation(entry.get("persistent")),
            max_holds=_escalation(entry.get("max_holds")),
            monitoring=" ".join(entry["monitoring"].split()),
            monitoring_verified=not entry["monitoring_verification"].startswith("UNVERIFIED"),
        )
        for drug in label.covers:
            labels[drug] = label
    under = doc["under_critical"]
    return CardiacKnowledge(
        labels=labels,
        actions=dict(doc["actions"]),
        under_critical=Escalation(under["action"], under["says"]),
        wording=dict(doc["wording"]),
        actions_before_start=dict(doc["actions_before_start"]),
        no_lvef_rule={
            n["drug"]: NoLvefRule(n["drug"], n["label"], n["says"], n["verified"])
            for n in doc["no_lvef_rule"]
        },
    )
