"""Assemble the PatientRecord: the clinical picture the engine decides on."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.knowledge import Knowledge, load_knowledge
from engine.model import (
    DataIssue,
    Exposure,
    PatientRecord,
    ReceptorResult,
    ReceptorStatus,
    UncertainFact,
)
from fhir_mappers.conditions import STAGED_NON_METASTATIC, condition_facts
from fhir_mappers.her2 import assess_her2, assess_receptor
from fhir_mappers.line_rules import LineRules, load_line_rules
from fhir_mappers.lines import settle_lines
from fhir_mappers.medications import exposures as build_exposures
from fhir_mappers.observations import observation_facts
from fhir_mappers.patient import death_issues, newest_data, patient_facts
from fhir_mappers.pregnancy import pregnancy_tests
from fhir_mappers.resources import ResourceSet, collect, now_date
from fhir_mappers.terminology import Terminology, load_terminology

_BREAST = ("breast-cancer",)
_METASTASIS = ("metastasis", "brain-metastasis")
_RISK = ("ild", "heart-failure", "brain-metastasis", "pregnancy")
_RECEPTOR_CONDITIONS = {
    "her2-positive-breast-cancer": ("her2", ReceptorStatus.POSITIVE),
    "her2-negative-breast-cancer": ("her2", ReceptorStatus.NEGATIVE),
    "er-positive": ("er", ReceptorStatus.POSITIVE),
    "pr-positive": ("pr", ReceptorStatus.POSITIVE),
}


def _patient_id(rs: ResourceSet) -> str:
    for p in rs.of("Patient"):
        if p.get("id"):
            return str(p["id"])
    return "unknown"


def _split_setting(
    exps: list[Exposure], metastatic_since: date | None
) -> tuple[list[Exposure], list[Exposure]]:
    """(early, metastatic): before the metastatic date, or with curative intent, is early."""
    if metastatic_since is None:
        return exps, []
    early: list[Exposure] = []
    metastatic: list[Exposure] = []
    for e in exps:  # one pass (`e not in early` compared every pair of exposures)
        (early if e.intent == "curative" or e.start < metastatic_since else metastatic).append(e)
    return early, metastatic


def _near_setting_boundary(
    early: list[Exposure], since: date | None, rules: LineRules
) -> list[DataIssue]:
    """Early-setting therapy that began just before the metastatic date: said, not guessed."""
    days = rules.setting_check_days
    if since is None or days <= 0:
        return []
    return [
        DataIssue(
            e.source_ids[0],
            f"{e.drug} started {(since - e.start).days} days before the metastatic date "
            f"({since.isoformat()}): counted as early setting; check the dates",
        )
        for e in early
        if e.intent != "curative" and 0 < (since - e.start).days <= days
    ]


def build_record(
    data: Any,
    *,
    patient_id: str | None = None,
    as_of: date | None = None,
    knowledge: Knowledge | None = None,
    terminology: Terminology | None = None,
    line_rules: LineRules | None = None,
) -> PatientRecord:
    """Build the picture from FHIR JSON: a Bundle, a list of resources, or a prefetch mapping.

    The service and the command line pass their knowledge set's parts; a part not given is the
    cached load of the installed files (so callers from before the knowledge set still work)."""
    kb = knowledge or load_knowledge()
    term = terminology or load_terminology()
    rules = line_rules or load_line_rules()
    rs = data if isinstance(data, ResourceSet) else collect(data)
    today = as_of or now_date()
    issues: list[DataIssue] = list(rs.issues)
    person = patient_facts(rs, patient_id, issues)
    newest, newest_id = newest_data(rs, today)
    issues.extend(death_issues(person, newest, newest_id))

    uncertain: list[UncertainFact] = []
    conds = condition_facts(rs.of("Condition"), term, issues, uncertain)
    obs = observation_facts(rs.of("Observation"), term, issues, rs.specimens)

    receptors = {"her2": list(obs.her2), "er": list(obs.er), "pr": list(obs.pr)}
    for c in conds:
        found = _RECEPTOR_CONDITIONS.get(c.concept)
        if found is not None:
            receptor, status = found
            receptors[receptor].append(
                ReceptorResult(
                    status=status,
                    date=c.onset,
                    method="condition",
                    source_id=c.source_id,
                    display=c.display,
                )
            )

    metastases = tuple(c for c in conds if c.concept in _METASTASIS)
    met_dates = [(c.onset, c.source_id) for c in metastases if c.concept == "metastasis"]
    met_dates += obs.metastatic
    dated = [d for d, _ in met_dates if d is not None]
    metastatic_since = min(dated) if dated else None
    metastatic_ids = tuple(sorted({sid for _, sid in met_dates}))
    if met_dates and metastatic_since is None:
        issues.append(DataIssue(metastatic_ids[0], "metastatic disease recorded without a date"))

    progressions = list(obs.progressions)
    exps = build_exposures(rs, term, kb, today, issues, progressions, metastatic_since)
    early, metastatic = _split_setting(exps, metastatic_since)
    issues.extend(_near_setting_boundary(early, metastatic_since, rules))
    settled, lines = settle_lines(metastatic, progressions, kb, rules)
    if settled != metastatic:  # courses a later line replaced now end at their last dose
        metastatic = settled
        exps = sorted([*early, *metastatic], key=lambda e: (e.start, e.drug))
    early_end = max((e.end for e in early if e.end is not None), default=None)
    if any(e.end is None for e in early):
        early_end = None

    return PatientRecord(
        patient_id=patient_id or _patient_id(rs),
        as_of=today,
        breast_cancer=tuple(c for c in conds if c.concept in _BREAST),
        her2=assess_her2(receptors["her2"], term.method_rank),
        er=assess_receptor(receptors["er"], term.method_rank),
        pr=assess_receptor(receptors["pr"], term.method_rank),
        metastatic_since=metastatic_since,
        metastatic_source_ids=metastatic_ids,
        non_metastatic_staging_ids=tuple(obs.non_metastatic)
        + tuple(c.source_id for c in conds if c.concept == STAGED_NON_METASTATIC),
        metastases=metastases,
        conditions=tuple(c for c in conds if c.concept in _RISK)
        + tuple(pregnancy_tests(rs.of("Observation"), term, issues)),
        lvef=tuple(sorted(obs.lvef, key=lambda m: (m.date, m.source_id))),
        progressions=tuple(sorted(progressions, key=lambda p: (p.date, p.source_id))),
        exposures=tuple(exps),
        early_exposures=tuple(early),
        lines=lines,
        data_issues=tuple(issues),
        uncertain=tuple(uncertain),
        early_setting_end=early_end,
        birth_date=person.birth_date,
        deceased=person.deceased,
        deceased_date=person.deceased_date,
        newest_data_date=newest,
        newest_data_source_id=newest_id,
        patient_source_id=person.source_id,
    )
