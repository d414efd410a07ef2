"""The clinical knowledge base: data files under engine/knowledge/, each validated by its schema.

Clinicians review and change the YAML files; the code only reads them. `load_knowledge()` is
cached and validates every file on first use (the service calls it at start-up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from engine.datafiles import DataFileError, digest, read_data_file, yaml_files
from engine.knowledge_cardiac import CardiacKnowledge, Escalation, parse_cardiac
from engine.knowledge_next_line import NextLineKnowledge, parse_next_line
from engine.knowledge_uncertain import UncertainRule, parse_uncertain
from engine.model import Component, Evidence, Regimen

KNOWLEDGE_DIR = Path(__file__).parent / "knowledge"


class KnowledgeError(DataFileError):
    """A knowledge file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class DrugInfo:
    """What a drug is: its class and the properties the rules ask about."""

    id: str
    name: str
    drug_class: str
    short: str = ""
    family: str = ""
    her2_directed: bool = False
    cardiotoxic: bool = False
    trastuzumab_containing: bool = False
    pulmonary_toxicity: bool = False
    dosing_interval_days: int | None = None  # drugs.yaml `dosing`: one dose every N days


@dataclass(frozen=True)
class Situation:
    """When a situational text applies (regimens.yaml `when`); empty fields always fit."""

    min_prior_her2_lines: int | None = None
    max_prior_her2_lines: int | None = None
    received: tuple[str, ...] = ()  # every one of these was received
    not_received: tuple[str, ...] = ()  # none of these was received
    brain: str | None = None  # "active" or "cns-predominant"


@dataclass(frozen=True)
class RegimenRule:
    """How a regimen takes part in the choice: key agents, TKI flag, restrictions."""

    regimen: Regimen
    key_agents: tuple[str, ...]
    tki: bool = False
    hr_positive_only: bool = False
    min_prior_her2_lines: int = 0
    short: str = ""
    # drugs an order set may give instead of one of the regimen's drugs (still this regimen)
    drug_alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)
    summaries: tuple[tuple[Situation, str], ...] = ()  # situational summaries, first fit wins
    ild_note: str = ""  # said beside the regimen when offered with ILD on record
    ild_evidence: tuple[Evidence, ...] = ()  # cited with its ild_note (tdxd-ild cards)


@dataclass(frozen=True)
class NeverSkip:
    """A regimen preferred at every row from its own while its key agents were never received."""

    regimen: str
    reason: str


@dataclass(frozen=True)
class SequenceStep:
    """A row of the guideline sequence: what is offered after N HER2-directed lines."""

    prior_her2_lines: int
    preferred: str
    alternatives: tuple[str, ...]


@dataclass(frozen=True)
class WarningVariant:
    """The words of one variant of a warning (patient view, order check, ...)."""

    summary: str
    detail: str
    severity: str
    withholds_order: bool = False  # the card says not to give the ordered drug


@dataclass(frozen=True)
class WarningRule:
    """A warning of CLINICAL.md section 4 as warnings.yaml gives it."""

    id: str
    severity: str
    evidence: tuple[Evidence, ...]
    override_reasons: tuple[tuple[str, str], ...]
    variants: dict[str, WarningVariant]
    short: str = ""  # how other cards name this one ("the cardiac card")


@dataclass(frozen=True)
class Knowledge:
    """The loaded knowledge base."""

    version: str
    drugs: dict[str, DrugInfo]
    evidence: dict[str, Evidence]
    regimens: dict[str, RegimenRule]
    sequence: tuple[SequenceStep, ...]
    parameters: dict[str, Any]
    warnings: dict[str, WarningRule] = field(default_factory=dict)
    never_skip: tuple[NeverSkip, ...] = ()
    evidence_applies: dict[str, str] = field(default_factory=dict)  # evidence id -> situation
    reload: dict[str, dict[str, Any]] = field(default_factory=dict)  # drugs.yaml `reload`
    cardiac: CardiacKnowledge = field(
        default_factory=lambda: CardiacKnowledge({}, {}, Escalation("hold", ""))
    )
    uncertain_facts: dict[str, UncertainRule] = field(default_factory=dict)  # warnings.yaml
    next_line: NextLineKnowledge = field(default_factory=NextLineKnowledge)  # next_line.yaml

    def drug(self, drug_id: str) -> DrugInfo | None:
        return self.drugs.get(drug_id)

    def family(self, drug_id: str) -> str:
        """The drug's family (drugs.yaml: taxanes are interchangeable), else the drug itself."""
        info = self.drugs.get(drug_id)
        return info.family if info and info.family else drug_id

    @cached_property
    def regimen_families(self) -> dict[str, frozenset[str]]:
        """The families of the drugs each named regimen needs, in regimens.yaml order
        (computed once: a record's lines are matched against every regimen)."""
        return {
            rid: frozenset(self.family(d) for d in rule.regimen.drugs)
            for rid, rule in self.regimens.items()
        }

    def is_her2_directed(self, drug_id: str) -> bool:
        info = self.drugs.get(drug_id)
        return bool(info and info.her2_directed)

    def step_for(self, prior_her2_lines: int) -> SequenceStep:
        """The sequence row for this many prior lines (the last row covers 'that many or more')."""
        eligible = [s for s in self.sequence if s.prior_her2_lines <= prior_her2_lines]
        return max(eligible, key=lambda s: s.prior_her2_lines) if eligible else self.sequence[0]

    def ongoing_window_days(self, drug_id: str) -> int:
        """How many days after its last dose a course of this drug is still ongoing: its dosing
        interval plus the grace of one interval, at least the minimum (CLINICAL.md 2.5)."""
        info = self.drugs.get(drug_id)
        interval = (info.dosing_interval_days if info else None) or int(
            self.param("lines", "default_dosing_interval_days")
        )
        grace = float(self.param("lines", "ongoing_grace_intervals"))
        return max(int(interval * (1 + grace)), int(self.param("lines", "ongoing_min_days")))

    def param(self, section: str, name: str) -> Any:
        return self.parameters[section][name]

    def agents(self, name: str) -> frozenset[str]:
        """A named list of drug ids from parameters.yaml `agents`."""
        return frozenset(self.parameters["agents"][name])

    def warning(self, rule: str) -> WarningRule:
        return self.warnings[rule]


def _read(name: str) -> dict[str, Any]:
    return read_data_file(KNOWLEDGE_DIR, name, KnowledgeError)


def _build(index: dict[str, Any]) -> Knowledge:
    drugs_doc = _read("drugs.yaml")
    dosing: dict[str, dict[str, Any]] = drugs_doc.get("dosing") or {}
    unknown = sorted(set(dosing) - {d["id"] for d in drugs_doc["drugs"]})
    if unknown:
        raise KnowledgeError(f"drugs.yaml dosing names unknown drugs: {unknown}")
    drugs = {
        d["id"]: DrugInfo(
            id=d["id"],
            name=d["name"],
            drug_class=d["class"],
            short=d.get("short", ""),
            family=d.get("family", ""),
            her2_directed=d.get("her2_directed", False),
            cardiotoxic=d.get("cardiotoxic", False),
            trastuzumab_containing=d.get("trastuzumab_containing", False),
            pulmonary_toxicity=d.get("pulmonary_toxicity", False),
            dosing_interval_days=dosing.get(d["id"], {}).get("interval_days"),
        )
        for d in drugs_doc["drugs"]
    }
    evidence_doc = _read("evidence.yaml")["evidence"]
    evidence = {
        e["id"]: Evidence(
            id=e["id"],
            title=e["title"],
            summary=e["summary"],
            citation=e["citation"],
            url=e["url"],
            verified=e["verified"],
        )
        for e in evidence_doc
    }
    reg_doc = _read("regimens.yaml")
    regimens: dict[str, RegimenRule] = {}
    for r in reg_doc["regimens"]:
        alts = r.get("drug_alternatives", {})
        named = [d for k, v in alts.items() for d in (k, *v)]
        for drug in (*r["drugs"], *r["key_agents"], *(c["drug"] for c in r["components"]), *named):
            if drug not in drugs:
                raise KnowledgeError(f"regimens.yaml: {r['id']}: unknown drug {drug!r}")
        for ev in r["evidence"]:
            if ev not in evidence:
                raise KnowledgeError(f"regimens.yaml: {r['id']}: unknown evidence {ev!r}")
        regimen = Regimen(
            id=r["id"],
            name=r["name"],
            drugs=tuple(r["drugs"]),
            components=tuple(
                Component(
                    drug=c["drug"],
                    dose=c["dose"],
                    route=c["route"],
                    schedule=c["schedule"],
                    rxnorm=c.get("rxnorm"),
                    dose_value=c.get("dose_value"),
                    dose_unit=c.get("dose_unit"),
                    dose_source=c["dose_source"],
                    loading_dose_value=c.get("loading_dose_value"),
                    rxnorm_note=c.get("rxnorm_note", ""),
                    frequency=c.get("frequency"),
                    period=c.get("period"),
                    period_unit=c.get("period_unit"),
                    cycle_days=c.get("cycle_days"),
                    days_on=c.get("days_on"),
                )
                for c in r["components"]
            ),
            evidence=tuple(evidence[e] for e in r["evidence"]),
            approvals=tuple(r["approvals"]),
            summary=r.get("summary", ""),
            course=r.get("course", ""),
        )
        regimens[r["id"]] = RegimenRule(
            regimen=regimen,
            key_agents=tuple(r["key_agents"]),
            tki=r.get("tki", False),
            hr_positive_only=r.get("hr_positive_only", False),
            min_prior_her2_lines=r.get("min_prior_her2_lines", 0),
            short=r.get("short", r["name"]),
            summaries=tuple((_situation(x["when"]), x["text"]) for x in r.get("summaries", [])),
            ild_note=r.get("ild_note", ""),
            ild_evidence=tuple(evidence[e] for e in r.get("ild_evidence", [])),
            drug_alternatives={k: tuple(v) for k, v in alts.items()},
        )
    sequence = tuple(
        SequenceStep(s["prior_her2_lines"], s["preferred"], tuple(s["alternatives"]))
        for s in sorted(reg_doc["sequence"], key=lambda s: s["prior_her2_lines"])
    )
    for step in sequence:
        for rid in (step.preferred, *step.alternatives):
            if rid not in regimens:
                raise KnowledgeError(f"regimens.yaml: sequence names unknown regimen {rid!r}")
    never_skip = tuple(NeverSkip(n["regimen"], n["reason"]) for n in reg_doc.get("never_skip", []))
    for n in never_skip:
        if n.regimen not in regimens:
            raise KnowledgeError(f"regimens.yaml: never_skip names unknown regimen {n.regimen!r}")
    params = _read("parameters.yaml")
    for name, ids in params["agents"].items():
        for drug in ids.values() if isinstance(ids, dict) else ids:
            if drug not in drugs and drug not in regimens:
                raise KnowledgeError(f"parameters.yaml: agents.{name}: unknown drug {drug!r}")
    return Knowledge(
        version=f"{index['version']}+{advice_digest(index)}",
        drugs=drugs,
        evidence=evidence,
        regimens=regimens,
        sequence=sequence,
        parameters={k: v for k, v in params.items() if k != "version"},
        warnings=_warnings(evidence),
        never_skip=never_skip,
        evidence_applies={e["id"]: e["applies_when"] for e in evidence_doc if "applies_when" in e},
        cardiac=_cardiac(drugs, evidence, params["agents"]["cardiac_monitored"]),
        reload=dict(drugs_doc.get("reload") or {}),
        uncertain_facts=_uncertain(set(drugs), evidence),
        next_line=_checked(
            "next_line.yaml", *parse_next_line(_read("next_line.yaml"), set(regimens))
        ),
    )


def _checked(name: str, value: NextLineKnowledge, errors: list[str]) -> NextLineKnowledge:
    if errors:
        raise KnowledgeError(f"{name}: {'; '.join(errors)}")
    return value


def _situation(when: dict[str, Any]) -> Situation:
    return Situation(
        min_prior_her2_lines=when.get("min_prior_her2_lines"),
        max_prior_her2_lines=when.get("max_prior_her2_lines"),
        received=tuple(when.get("received", ())),
        not_received=tuple(when.get("not_received", ())),
        brain=when.get("brain"),
    )


def advice_files(index: dict[str, Any]) -> list[Path]:
    """Every data file that changes advice: this knowledge base and the folders `index.yaml`
    names under `versioned_with` (terminology and line rules), read as bytes only. The same
    list, in the same order, as fhir_mappers.knowledge_set versions the whole set over."""
    folders = [KNOWLEDGE_DIR]
    folders += [(KNOWLEDGE_DIR / f).resolve() for f in index.get("versioned_with", [])]
    return yaml_files(folders)


def advice_digest(index: dict[str, Any]) -> str:
    """The digest of the advice files (engine.datafiles.digest), so the version on every card
    changes whenever any file that changes advice changes."""
    return digest(advice_files(index), KnowledgeError)


def _cardiac(
    drugs: dict[str, DrugInfo], evidence: dict[str, Evidence], monitored: list[str]
) -> CardiacKnowledge:
    cardiac = parse_cardiac(_read("cardiac.yaml"))
    for drug in monitored:
        if drug not in cardiac.labels:
            raise KnowledgeError(f"cardiac.yaml: no label rule for monitored drug {drug!r}")
    for drug, label in cardiac.labels.items():
        if drug not in drugs:
            raise KnowledgeError(f"cardiac.yaml: {label.drug}: unknown drug {drug!r}")
        if label.evidence not in evidence:
            raise KnowledgeError(f"cardiac.yaml: {label.drug}: unknown evidence {label.evidence!r}")
    return cardiac


def _uncertain(drugs: set[str], evidence: dict[str, Evidence]) -> dict[str, UncertainRule]:
    table, errors = parse_uncertain(_read("warnings.yaml"), drugs, evidence)
    if errors:
        raise KnowledgeError(f"warnings.yaml: uncertain_facts: {'; '.join(errors)}")
    return table


def _warnings(evidence: dict[str, Evidence]) -> dict[str, WarningRule]:
    out: dict[str, WarningRule] = {}
    for rid, r in _read("warnings.yaml")["rules"].items():
        for ev in r["evidence"]:
            if ev not in evidence:
                raise KnowledgeError(f"warnings.yaml: {rid}: unknown evidence {ev!r}")
        out[rid] = WarningRule(
            id=rid,
            severity=r["severity"],
            evidence=tuple(evidence[e] for e in r["evidence"]),
            override_reasons=tuple(
                (o["code"], o["display"]) for o in r.get("override_reasons", [])
            ),
            variants={
                name: WarningVariant(
                    v["summary"],
                    v["detail"],
                    v.get("severity", r["severity"]),
                    v.get("withholds_order", False),
                )
                for name, v in r["variants"].items()
            },
            short=r.get("short", ""),
        )
    return out


@lru_cache(maxsize=1)
def load_knowledge() -> Knowledge:
    """Load and validate the whole knowledge base (cached; raises KnowledgeError when invalid)."""
    return _build(_read("index.yaml"))
