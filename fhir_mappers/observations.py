"""Observations to facts: receptor results, LVEF series, distant metastasis, progression."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine.model import (
    DataIssue,
    Measurement,
    ProgressionEvent,
    ReceptorResult,
    ReceptorStatus,
    Specimen,
)
from fhir_mappers.codings import CodeSets, CodingKey, coding_key
from fhir_mappers.receptor_values import read_receptor
from fhir_mappers.resources import (
    as_list,
    concept_text,
    parse_date,
    ref_id,
    validate,
)
from fhir_mappers.staging import says_metastatic
from fhir_mappers.terminology import MEMO_SIZE, Terminology
from fhir_mappers.text_match import AFFIRMED, NEGATED, NegationRules, affirmed_substring

_EXCLUDED_STATUS = frozenset({"entered-in-error", "cancelled", "registered"})
_NON_TOKEN = re.compile(r"[^a-z0-9+.?]+")
_END_DOT = re.compile(r"\.(?=\s|$)")
_RATIO_UNITS = frozenset({"1", "{ratio}", "ratio", "fraction"})
_PERCENT_UNITS = frozenset({"%", "percent", "pct"})


@dataclass
class ObservationFacts:
    her2: list[ReceptorResult] = field(default_factory=list)
    er: list[ReceptorResult] = field(default_factory=list)
    pr: list[ReceptorResult] = field(default_factory=list)
    lvef: list[Measurement] = field(default_factory=list)
    metastatic: list[tuple[date | None, str]] = field(default_factory=list)
    non_metastatic: list[str] = field(default_factory=list)
    progressions: list[ProgressionEvent] = field(default_factory=list)


def effective_date(obs: dict[str, Any]) -> date | None:
    """When an Observation was made: effective[x], else when it was issued."""
    period = obs.get("effectivePeriod")
    return (
        parse_date(obs.get("effectiveDateTime"))
        or parse_date(period.get("start") if isinstance(period, dict) else None)
        or parse_date(obs.get("effectiveInstant"))
        or parse_date(obs.get("issued"))
    )


def _answer(value: Any, term: Terminology, k: _Codes) -> ReceptorStatus:
    """Read a coded (or string) receptor answer as positive / negative / equivocal / unknown."""
    if isinstance(value, dict):
        sets = term.code_sets(value)
        for status, snomed, loinc in k.answer_codes:
            if sets.snomed & snomed or sets.loinc & loinc:
                return status
        text = concept_text(value)
    elif isinstance(value, str):
        text = value
    else:
        return ReceptorStatus.UNKNOWN
    return _answer_text(text, k.answer_phrases, term.negation)


def _words(text: str) -> str:
    t = _NON_TOKEN.sub(" ", text.lower().replace("?", " ? "))
    return " " + _END_DOT.sub(" ", t).strip() + " "


def _answer_text(
    text: str, phrases: tuple[tuple[str, tuple[str, ...]], ...], rules: NegationRules
) -> ReceptorStatus:
    """A free-text answer ("Positive (3+)", "not amplified"), read as whole words.

    Negative phrases are consumed first, so "not amplified" is not also read as "amplified".
    A text naming two different statuses ("2+ equivocal, ISH positive") is not guessed, nor
    one whose status is negated or doubted ("not positive", "positive?", "possibly positive").
    `phrases`: per status, its phrases as words, longest first (`_Codes.answer_phrases`).
    """
    norm = _words(text)
    found: set[str] = set()
    for status, words in phrases:
        for p in words:
            at = norm.find(p)
            if at < 0:
                continue
            how = rules.assertion(norm, at + 1, at + len(p) - 1)
            # A doubted status is not read; a negated one neither ("not positive"), except a
            # negative status, which a negation word only repeats ("no amplification: negative").
            if how == AFFIRMED or (how == NEGATED and status == "negative"):
                found.add(status)
            else:
                found.add("unread")
            norm = norm.replace(p, " ")
    return (
        ReceptorStatus(found.pop())
        if found and len(found) == 1 and "unread" not in found
        else ReceptorStatus.UNKNOWN
    )


def _specimen(
    obs: dict[str, Any],
    specimens: dict[str, dict[str, Any]],
    sites: dict[str, Any],
    rules: NegationRules,
) -> Specimen:
    """Metastatic when the specimen or body site names a metastatic site (not negated or
    doubted: "breast, no evidence of metastasis" is the primary); primary for breast."""
    texts: list[str] = [concept_text(b) for b in as_list(obs.get("bodySite"))]
    ref = obs.get("specimen")
    if isinstance(ref, dict):
        texts.append(str(ref.get("display", "")))
        target = specimens.get(str(ref.get("reference", "")))
        if target is not None:
            texts.append(concept_text(target.get("type")))
            collection = target.get("collection")
            if isinstance(collection, dict):
                texts.append(concept_text(collection.get("bodySite")))
            texts.extend(
                str(n.get("text", "")) for n in as_list(target.get("note")) if isinstance(n, dict)
            )
    joined = " ".join(texts).lower()
    if not joined.strip():
        return Specimen.UNKNOWN
    if affirmed_substring(joined, sites["metastatic_text"], rules):
        return Specimen.METASTATIC
    if any(word in joined for word in sites["primary_text"]):
        return Specimen.PRIMARY
    return Specimen.UNKNOWN


@dataclass(frozen=True)
class _Kind:
    """What an Observation's code says it is (one per distinct coding, not per resource)."""

    receptor: str | None
    method: str
    lvef: bool
    metastasis: bool
    stage: bool
    status: bool
    history: bool
    relevant: bool


@dataclass(frozen=True)
class _Codes:
    """The observation code sets, built once per call (not once per resource)."""

    receptors: dict[str, dict[str, str]]
    lvef: frozenset[str]
    distant_metastasis: frozenset[str]
    stage_group: frozenset[str]
    stage_group_snomed: frozenset[str]
    history_snomed: frozenset[str]
    disease_status: frozenset[str]
    progression_snomed: frozenset[str]
    metastatic_status_snomed: frozenset[str]
    relevant: frozenset[str]
    distant_metastasis_snomed: frozenset[str]
    answer_codes: tuple[tuple[ReceptorStatus, frozenset[str], frozenset[str]], ...]
    answer_phrases: tuple[tuple[str, tuple[str, ...]], ...]
    method_rank: dict[str, int] = field(default_factory=dict)  # observations.yaml method_rank
    kinds: dict[CodingKey, _Kind] = field(default_factory=dict, compare=False, hash=False)

    def kind(self, concept: Any, term: Terminology) -> _Kind:
        """What an Observation.code says, memoized on its codings (bounded)."""
        key = coding_key(concept)
        found = self.kinds.get(key)
        if found is None:
            found = self._classify(term.code_sets(concept))
            if len(self.kinds) < MEMO_SIZE:
                self.kinds[key] = found
        return found

    def _classify(self, sets: CodeSets) -> _Kind:
        codes = sets.loinc
        # isdisjoint, not `codes & keys`: that expression is a set at run time, though typed as
        # the frozenset on its left (mypyc, which checks such types, rejected it).
        receptor = next(
            (r for r in ("her2", "er", "pr") if not codes.isdisjoint(self.receptors[r])), None
        )
        method = ""
        if receptor is not None:
            # An Observation coded as two methods (Synthea: HER2 interpretation 48676-1 and IHC
            # 85319-2) is read as the most specific of them, by the rank that orders one day's
            # results (ish > interpretation > ihc), not as whichever code a set yields first.
            method = max(
                (m for c, m in self.receptors[receptor].items() if c in codes),
                key=lambda m: self.method_rank.get(m, 0),
            )
        snomed_m = bool(sets.snomed & self.distant_metastasis_snomed)
        snomed_stage = bool(sets.snomed & self.stage_group_snomed)
        history = bool(sets.snomed & self.history_snomed)
        return _Kind(
            receptor=receptor,
            method=method,
            lvef=bool(codes & self.lvef),
            metastasis=bool(codes & self.distant_metastasis) or snomed_m,
            stage=bool(codes & self.stage_group) or snomed_stage,
            status=bool(codes & self.disease_status),
            history=history,
            relevant=bool(codes & self.relevant) or snomed_m or snomed_stage or history,
        )

    @classmethod
    def of(cls, term: Terminology) -> _Codes:
        spec = term.observations["observations"]
        statuses = term.observations["disease_status_values"]
        receptors = {r: dict(spec[r]) for r in ("her2", "er", "pr")}
        groups = {
            k: frozenset(spec[k])
            for k in ("lvef", "distant_metastasis", "stage_group", "disease_status")
        }
        m_snomed = frozenset(spec.get("distant_metastasis_snomed", []))
        relevant = frozenset().union(*groups.values(), *(set(v) for v in receptors.values()))
        answers = term.observations["answers"]
        return cls(
            answer_codes=tuple(
                (
                    ReceptorStatus(status),
                    frozenset(answers[status].get("snomed", [])),
                    frozenset(answers[status].get("loinc", [])),
                )
                for status in ("positive", "equivocal", "negative")
            ),
            answer_phrases=tuple(
                (
                    status,
                    tuple(
                        _words(phrase)
                        for phrase in sorted(answers[status].get("text", []), key=len, reverse=True)
                    ),
                )
                for status in ("negative", "equivocal", "positive")
            ),
            receptors=receptors,
            method_rank=term.method_rank,
            progression_snomed=frozenset(statuses["progression_snomed"]),
            metastatic_status_snomed=frozenset(statuses.get("metastatic_snomed", [])),
            stage_group_snomed=frozenset(spec.get("stage_group_snomed", [])),
            history_snomed=frozenset(spec.get("history_of_metastasis_snomed", [])),
            relevant=relevant,
            distant_metastasis_snomed=m_snomed,
            lvef=groups["lvef"],
            distant_metastasis=groups["distant_metastasis"],
            stage_group=groups["stage_group"],
            disease_status=groups["disease_status"],
        )


def observation_facts(
    observations: list[dict[str, Any]],
    term: Terminology,
    issues: list[DataIssue],
    specimens: dict[str, dict[str, Any]] | None = None,
) -> ObservationFacts:
    """Read every relevant Observation; a malformed one is reported, never raised."""
    out = ObservationFacts()
    codes = term.derived("observations.codes", _Codes.of)
    specimens = specimens or {}
    for obs in observations:
        try:
            _one(obs, term, codes, issues, out, specimens)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            issues.append(DataIssue(ref_id(obs), f"observation could not be read: {exc}"))
    return out


def _lvef_components(
    obs: dict[str, Any], lvef_codes: frozenset[str], term: Terminology
) -> list[dict[str, Any]]:
    """LVEF reported as a component of an echo panel (e.g. 18043-0 inside 34552-0)."""
    return [
        c
        for c in as_list(obs.get("component"))
        if isinstance(c, dict) and term.code_sets(c.get("code")).loinc & lvef_codes
    ]


def _one(
    obs: dict[str, Any],
    term: Terminology,
    k: _Codes,
    issues: list[DataIssue],
    out: ObservationFacts,
    specimens: dict[str, dict[str, Any]],
) -> None:
    if obs.get("status") in _EXCLUDED_STATUS:
        return
    kind = k.kind(obs.get("code"), term)
    components = _lvef_components(obs, k.lvef, term) if "component" in obs and not kind.lvef else []
    if not kind.relevant and not components:
        return
    receptor = kind.receptor
    validate(obs, issues)
    when = effective_date(obs)
    sid = ref_id(obs)
    if receptor:
        reading = read_receptor(obs, kind.method, term, lambda v: _answer(v, term, k))
        if reading.issue:
            issues.append(DataIssue(sid, f"{receptor.upper()} {reading.issue}"))
        if reading.status is ReceptorStatus.UNKNOWN:
            if not reading.issue:
                issues.append(DataIssue(sid, f"{receptor.upper()} result has no readable value"))
            return
        if when is None:
            issues.append(DataIssue(sid, f"{receptor.upper()} result has no date"))
        getattr(out, receptor).append(
            ReceptorResult(
                status=reading.status,
                date=when,
                method=reading.method,
                source_id=sid,
                display=reading.display,
                specimen=_specimen(
                    obs, specimens, term.observations["specimen_sites"], term.negation
                ),
            )
        )
    elif kind.lvef or components:
        for holder in [obs] if kind.lvef else components:
            q = holder.get("valueQuantity")
            val = q.get("value") if isinstance(q, dict) else None
            if not isinstance(val, (int, float)) or isinstance(val, bool) or when is None:
                issues.append(DataIssue(sid, "LVEF has no numeric value or no date"))
                continue
            value = float(val)
            raw_unit = q.get("code") or q.get("unit") if isinstance(q, dict) else None
            unit = str(raw_unit).strip().lower() if raw_unit else ("1" if value <= 1 else "%")
            unit = "%" if unit in _PERCENT_UNITS else unit
            if unit in _RATIO_UNITS and 0 < value <= 1:
                value, unit = round(value * 100, 1), "%"  # a fraction (0.55) read as 55%
            if unit != "%" or not 5 <= value <= 95:
                issues.append(DataIssue(sid, f"LVEF {val} {unit} is not a plausible percentage"))
                continue
            out.lvef.append(Measurement(value, "%", when, sid))
    elif kind.metastasis or kind.stage:
        found = says_metastatic(obs.get("valueCodeableConcept"), term, category=kind.metastasis)
        if found:
            _metastatic(out, when, sid, issues, "distant metastasis / stage IV")
        elif found is False:
            out.non_metastatic.append(sid)
    elif kind.history:
        _history(obs, when, sid, issues, out)
    elif kind.status:
        snomed = term.code_sets(obs.get("valueCodeableConcept")).snomed
        if snomed & k.metastatic_status_snomed:
            _metastatic(out, when, sid, issues, "disease status: distant metastasis present")
        if snomed & k.progression_snomed:
            if when is None:
                issues.append(DataIssue(sid, "progression has no date"))
                return
            out.progressions.append(ProgressionEvent(when, sid, "disease status: worsened"))


def _metastatic(
    out: ObservationFacts, when: date | None, sid: str, issues: list[DataIssue], what: str
) -> None:
    if when is None:
        issues.append(DataIssue(sid, f"{what} has no date"))
    out.metastatic.append((when, sid))


def _history(
    obs: dict[str, Any],
    when: date | None,
    sid: str,
    issues: list[DataIssue],
    out: ObservationFacts,
) -> None:
    """mCODE HistoryOfMetastaticCancer: valueBoolean false asserts NO history (the IG's
    modifier); true or absent is a history of metastatic cancer, known by its date."""
    value = obs.get("valueBoolean")
    if value is False:
        out.non_metastatic.append(sid)
    elif value is True or not any(k.startswith("value") for k in obs):
        _metastatic(out, when, sid, issues, "history of metastatic cancer")
    else:
        issues.append(
            DataIssue(
                sid, "history of metastatic cancer with a value that is not a boolean: not read"
            )
        )
