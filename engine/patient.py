"""What the mappers establish about a patient (the PatientRecord and its facts) and the draft
orders they read; part of the domain model, engine.model, which names these too.

Every fact keeps the ids ("ResourceType/id") of the FHIR resources it came from, so that a card
can say why. All classes are frozen: a record, once built, is not changed by the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class ReceptorStatus(StrEnum):
    """Result of a receptor test (HER2, ER, PR) or of all tests taken together."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    EQUIVOCAL = "equivocal"
    UNKNOWN = "unknown"


class Specimen(StrEnum):
    """Where the tested tissue came from, when the record says so."""

    PRIMARY = "primary"
    METASTATIC = "metastatic"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ReceptorResult:
    """One receptor result: a Condition (e.g. 'HER2-positive carcinoma') or an Observation."""

    status: ReceptorStatus
    date: date | None
    method: str  # "ihc", "ish", "interpretation", "condition"
    source_id: str
    display: str = ""
    specimen: Specimen = Specimen.UNKNOWN


@dataclass(frozen=True)
class ReceptorAssessment:
    """All results for one receptor and the status they establish, with the result that decided it."""

    status: ReceptorStatus = ReceptorStatus.UNKNOWN
    basis: ReceptorResult | None = None
    results: tuple[ReceptorResult, ...] = ()
    conflicts: tuple[ReceptorResult, ...] = ()
    # HER2 only (CLINICAL.md section 1, "HER2 discordance"): "loss" when a metastasis and another
    # specimen disagree and the status rests on the positive one (HER2-directed therapy is
    # considered when any specimen was positive), "conversion" when a positive metastasis
    # decides after a negative primary; "" otherwise. `discordant` is (positive, negative).
    discordance: str = ""
    discordant: tuple[ReceptorResult, ...] = ()

    @property
    def source_ids(self) -> tuple[str, ...]:
        """The deciding result first, then the results it disagrees with on another specimen."""
        ids = (self.basis.source_id,) if self.basis else ()
        return tuple(dict.fromkeys((*ids, *(r.source_id for r in self.discordant))))


@dataclass(frozen=True)
class ConditionFact:
    """A recognised Condition (or Observation-derived diagnosis) mapped to a clinical concept."""

    concept: str  # e.g. "breast-cancer", "metastasis", "brain-metastasis", "ild", "heart-failure"
    display: str
    onset: date | None
    active: bool
    source_id: str
    site: str | None = None  # metastatic site when known: "brain", "liver", "lung", "bone"
    # "" when confirmed or not stated; "unconfirmed", "provisional" or "differential" when the
    # record says so (a fact that restricts a drug still counts, and `display` says so).
    verification: str = ""


@dataclass(frozen=True)
class UncertainFact:
    """A fact the record names but does not establish: an uncertain mention in text ("?
    pneumonitis", "suspected brain metastases": not counted), or a coded Condition recorded
    unconfirmed, provisional or differential (counted where it restricts a drug). Which of
    them changes advice is the engine's knowledge (warnings.yaml `uncertain_facts`)."""

    concept: str  # "ild", "brain-metastasis", ...
    phrase: str  # the term as matched or coded ("pneumonitis")
    text: str  # the record's own words ("? pneumonitis")
    source_id: str
    status: str  # "uncertain" (text), or the coded "unconfirmed" / "provisional" / "differential"
    counted: bool = False  # also counted as the fact (a ConditionFact with `verification` set)


@dataclass(frozen=True)
class Measurement:
    """A numeric observation (LVEF in %)."""

    value: float
    unit: str
    date: date
    source_id: str


@dataclass(frozen=True)
class ProgressionEvent:
    """Documented disease progression (disease-status Observation or a stop for no response)."""

    date: date
    source_id: str
    basis: str = ""


@dataclass(frozen=True)
class Exposure:
    """One course of one drug, merged from statements, per-cycle orders or administrations."""

    drug: str  # lowercase generic name, e.g. "trastuzumab"
    drug_class: str  # e.g. "anti-her2-antibody", "chemotherapy", "endocrine"
    start: date
    end: date | None  # None while ongoing
    source_ids: tuple[str, ...]
    intent: str | None = None  # "curative", "palliative" (mCODE intent) when recorded
    stopped_for_progression: bool = False
    # The last recorded dose (administration, per-cycle order, dispense or the end of a stated
    # period), never after the record date; None when only an active claim says it is given.
    last_dose: date | None = None
    resource_count: int = 1  # distinct resources behind this one course (counted once)
    # Why it is ongoing (CLINICAL.md 2.5): "active" (an active statement or order with no end in
    # the past) or "recent dose" (last dose within its dosing interval plus grace); "" if ended.
    ongoing_basis: str = ""
    # (first day, last day or None while claimed active) of each resource: a line that a later
    # line replaced ends at its last dose before it, not on the day before the new line.
    spans: tuple[tuple[date, date | None], ...] = field(default=(), compare=False, repr=False)
    stop_reason: str = ""  # the words of another recorded stop reason ("adverse event"), if any
    # Ended when the supply of an order written that day ran out (`end`, CLINICAL.md 2.5).
    supply_from: date | None = None

    @property
    def ongoing(self) -> bool:
        return self.end is None


@dataclass(frozen=True)
class TherapyLine:
    """A metastatic line of therapy as the line rules reconstruct it."""

    number: int
    start: date
    end: date | None
    drugs: tuple[str, ...]
    regimen_id: str | None
    regimen_name: str
    ended_in_progression: bool
    stop_reason: str | None
    source_ids: tuple[str, ...]
    her2_directed: bool
    progression_ids: tuple[str, ...] = ()
    start_reason: str = ""  # why a line starts here (first therapy, new agent, progression, gap)
    last_dose: date | None = None  # its last recorded dose (equals `end` once it has ended)
    current_drugs: tuple[str, ...] = ()  # of an ongoing line: the drugs still given

    @property
    def ongoing(self) -> bool:
        return self.end is None


@dataclass(frozen=True)
class DataIssue:
    """Something in the data that could not be used, said rather than silently dropped."""

    source_id: str
    message: str


@dataclass(frozen=True)
class PatientRecord:
    """The clinical picture of one patient, as the mappers build it from FHIR."""

    patient_id: str
    as_of: date
    breast_cancer: tuple[ConditionFact, ...] = ()
    her2: ReceptorAssessment = field(default_factory=ReceptorAssessment)
    er: ReceptorAssessment = field(default_factory=ReceptorAssessment)
    pr: ReceptorAssessment = field(default_factory=ReceptorAssessment)
    metastatic_since: date | None = None
    metastatic_source_ids: tuple[str, ...] = ()
    non_metastatic_staging_ids: tuple[str, ...] = ()  # stage I-III / M0 observations
    metastases: tuple[ConditionFact, ...] = ()
    conditions: tuple[ConditionFact, ...] = ()  # ILD, cardiac and other risk conditions
    lvef: tuple[Measurement, ...] = ()
    progressions: tuple[ProgressionEvent, ...] = ()
    exposures: tuple[Exposure, ...] = ()  # every anticancer exposure, early and metastatic
    early_exposures: tuple[Exposure, ...] = ()  # the (neo)adjuvant / curative ones
    lines: tuple[TherapyLine, ...] = ()
    data_issues: tuple[DataIssue, ...] = ()
    uncertain: tuple[UncertainFact, ...] = ()  # named but not established (see UncertainFact)
    early_setting_end: date | None = None  # when the last (neo)adjuvant drug ended
    # The Patient resource and the record's currency (CLINICAL.md section 1, "in scope at all")
    birth_date: date | None = None  # the latest day the (possibly partial) birthDate allows
    deceased: bool = False  # deceasedBoolean true or any deceasedDateTime
    deceased_date: date | None = None
    newest_data_date: date | None = None  # newest Condition, medication or Observation date
    newest_data_source_id: str = ""  # the resource that date is on
    patient_source_id: str = ""

    @property
    def has_breast_cancer(self) -> bool:
        return bool(self.breast_cancer)

    @property
    def metastatic(self) -> bool:
        return self.metastatic_since is not None or bool(self.metastatic_source_ids)

    @property
    def hr_positive(self) -> bool:
        return ReceptorStatus.POSITIVE in (self.er.status, self.pr.status)

    @property
    def active_brain_metastases(self) -> bool:
        return any(m.concept == "brain-metastasis" and m.active for m in self.metastases)

    def conditions_of(self, *concepts: str) -> tuple[ConditionFact, ...]:
        return tuple(c for c in self.conditions if c.concept in concepts)


@dataclass(frozen=True)
class DraftOrder:
    """A medication order under review (order-select / order-sign), as the mappers read it."""

    resource_id: str  # "MedicationRequest/abc"
    drug: str | None  # the drug the order's code names (None: unknown or no medication yet)
    drug_class: str | None
    text: str
    text_drug: str | None = None  # the drug its free text names, when that differs from the code
    dose_value: float | None = None
    dose_unit: str | None = None
    # where the dose was read ("doseQuantity", "the dosage text", "the medication text"), and
    # why none was when the text names several ("" otherwise)
    dose_from: str = ""
    dose_problem: str = ""
    status: str = "draft"
    selected: bool = True
    resource: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    # Why the order's drug could not be identified when it names one we cannot read (e.g. a
    # Medication reference the request does not carry); "" otherwise, including empty drafts.
    unidentified: str = ""
