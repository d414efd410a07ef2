"""The domain model: what the mappers establish about a patient (engine.patient, named here
too) and what the engine decides (below).

Every fact keeps the ids ("ResourceType/id") of the FHIR resources it came from, so that a card
can say why. All classes are frozen: a record, once built, is not changed by the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.patient import (
    ConditionFact,
    DataIssue,
    DraftOrder,
    Exposure,
    Measurement,
    PatientRecord,
    ProgressionEvent,
    ReceptorAssessment,
    ReceptorResult,
    ReceptorStatus,
    Specimen,
    TherapyLine,
    UncertainFact,
)

__all__ = [
    "Alert",
    "Assessment",
    "Coding",
    "Component",
    "ConditionFact",
    "DataIssue",
    "DataNeed",
    "DraftOrder",
    "Evidence",
    "Exposure",
    "Measurement",
    "OrderFinding",
    "PatientRecord",
    "ProgressionEvent",
    "ReceptorAssessment",
    "ReceptorResult",
    "ReceptorStatus",
    "Recommendation",
    "Regimen",
    "RegimenOption",
    "Replacement",
    "Specimen",
    "TherapyLine",
    "UncertainFact",
]


# ---------------------------------------------------------------------------------------------
# What the engine decides
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """A cited source: trial or guideline, its headline figures, and a checked link."""

    id: str
    title: str
    summary: str
    citation: str
    url: str
    verified: bool = False  # the citation was checked against a stored copy (see evidence.yaml)


@dataclass(frozen=True)
class Component:
    """One drug of a regimen with its dose and schedule as the knowledge base gives them."""

    drug: str
    dose: str
    route: str
    schedule: str
    rxnorm: str | None = None
    dose_value: float | None = None
    dose_unit: str | None = None
    dose_source: str = ""  # where the dose comes from ("UNVERIFIED: ..." when not checked)
    loading_dose_value: float | None = None  # first dose (cycle 1), when it differs
    rxnorm_note: str = ""  # what the code is ("UNVERIFIED: product code ...") when not verified
    frequency: int | None = None  # FHIR Timing.repeat: `frequency` doses per `period` `period_unit`
    period: float | None = None
    period_unit: str | None = None  # UCUM: "d", "wk"
    cycle_days: int | None = None  # a cycle of this many days (e.g. 21) ...
    days_on: int | None = None  # ... of which the drug is given on days 1 to days_on


@dataclass(frozen=True)
class Regimen:
    """A named regimen from the knowledge base."""

    id: str
    name: str
    drugs: tuple[str, ...]
    components: tuple[Component, ...]
    evidence: tuple[Evidence, ...]
    approvals: tuple[str, ...]  # jurisdictions where approved for this use, e.g. ("FDA", "EMA")
    summary: str = ""
    course: str = ""  # how the regimen runs beyond its orders (said in the card, not in an order)


@dataclass(frozen=True)
class RegimenOption:
    """A regimen offered for the next line, with why it is offered and any caveats."""

    regimen: Regimen
    reason: str
    caveats: tuple[str, ...] = ()
    approved: bool = True
    not_orderable: str = ""  # why no one-click order can carry it (e.g. its endocrine agent)
    dose_notes: tuple[str, ...] = ()  # how its orders fit this patient (re-load after a gap)


@dataclass(frozen=True)
class Recommendation:
    """The next line: the preferred regimen, ranked alternatives, and the reasoning."""

    line: int
    timing: str  # "now" or "on-progression"
    preferred: RegimenOption
    alternatives: tuple[RegimenOption, ...]
    reasons: tuple[str, ...]
    prior_her2_lines: int
    early_relapse: bool
    source_ids: tuple[str, ...]
    excluded: tuple[tuple[str, str], ...] = ()  # (regimen id, why it is not offered)
    regimen_names: tuple[tuple[str, str], ...] = ()  # (regimen id, name) of the excluded ones
    changes_advice: tuple[str, ...] = ()  # what would change this advice
    ild_replaced: str | None = None  # regimen id ILD kept from being preferred (e.g. "tdxd")
    early_relapse_threshold_months: float | None = None  # the threshold used, when judged
    maintenance: tuple[str, ...] = ()  # HR-positive maintenance advice for the current line
    override_reasons: tuple[Coding, ...] = ()  # why another regimen may be chosen (next_line.yaml)


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str


@dataclass(frozen=True)
class Alert:
    """A safety warning (CLINICAL.md section 4)."""

    rule: str
    severity: str  # "info", "warning", "critical"
    summary: str
    detail: str
    source_ids: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    override_reasons: tuple[Coding, ...] = ()
    withhold: tuple[str, ...] = ()  # drug ids this alert says to withhold or discontinue
    variant: str = ""  # the warnings.yaml variant it was worded from ("lapsed", "active")
    also: tuple[str, ...] = ()  # other rules this one card says too (lvef-due on the cardiac card)


@dataclass(frozen=True)
class DataNeed:
    """Data the engine needs and could not find; shown instead of a guess."""

    what: str  # "her2-status", "metastatic-status"
    summary: str
    detail: str
    source_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Replacement:
    """An order that would fix a finding: the regimen component to order instead."""

    drug: str
    label: str
    component: Component
    action: str = "replace"  # "replace": delete the draft and order this; "add": keep it, add this
    # A whole regimen to order instead (off-sequence): every component, `component` first.
    components: tuple[Component, ...] = ()
    also_delete: tuple[str, ...] = ()  # other drafts the fix replaces (the rest of the order set)


@dataclass(frozen=True)
class OrderFinding:
    """A problem with a draft order, and the replacement that fixes it when one exists."""

    rule: str
    severity: str
    order_id: str
    summary: str
    detail: str
    replacement: Replacement | None = None
    source_ids: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    override_reasons: tuple[Coding, ...] = ()
    withhold: tuple[str, ...] = ()  # drug ids this finding says to withhold or discontinue


@dataclass(frozen=True)
class Assessment:
    """Everything the engine concluded about one patient."""

    record: PatientRecord
    in_scope: bool  # breast cancer that is (or may be) HER2-positive metastatic
    knowledge_version: str
    recommendation: Recommendation | None = None
    alerts: tuple[Alert, ...] = ()
    data_needs: tuple[DataNeed, ...] = ()
    out_of_scope_reason: str = ""  # why no (or only a data-needed) card: deceased, age, stale
    reason_code: str = ""  # why no regimen, as a stable code (engine.scope.REASON_CODES)
    stale_record: bool = False  # in scope, but the record is not current: data-needed card only
    orders_blocked: str = ""  # why no one-click order may be offered (e.g. pregnancy recorded)
    # Regimen ids whose orders pass our own order checks (None: not judged, every option offered),
    # (regimen id, why not) for the others, and (drugs held, card) for "continue, holding ...".
    offered: tuple[str, ...] | None = None
    not_offered: tuple[tuple[str, str], ...] = ()
    holding: tuple[tuple[str, str], ...] = ()
