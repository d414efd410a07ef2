"""Choosing the next line (CLINICAL.md section 3): the guideline sequence and its modifiers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.knowledge import Knowledge, RegimenRule
from engine.model import PatientRecord, Recommendation, RegimenOption, TherapyLine

PULMONARY_TOXIC = "fam-trastuzumab deruxtecan"
_EARLY_RELAPSE_AGENTS = ("trastuzumab", "pertuzumab")


def _months_between(a: date, b: date) -> float:
    return (b - a).days / 30.4375


@dataclass(frozen=True)
class History:
    """What the line table needs to know about the patient's treatment so far."""

    prior_her2_lines: int
    early_relapse: bool
    received: frozenset[str]
    failed: frozenset[str]
    last_line: TherapyLine | None
    continuing: bool  # the latest line is ongoing with no progression since it started
    reasons: tuple[str, ...]


def history(record: PatientRecord, kb: Knowledge) -> History:
    reasons: list[str] = []
    her2_lines = [ln for ln in record.lines if ln.her2_directed]
    prior = len(her2_lines)
    early_relapse = False
    adjuvant = [e for e in record.early_exposures if e.drug in _EARLY_RELAPSE_AGENTS and e.end]
    if adjuvant and record.metastatic_since is not None:
        last_end = max(e.end for e in adjuvant if e.end is not None)
        only_trastuzumab = {e.drug for e in adjuvant} == {"trastuzumab"}
        key = (
            "early_relapse_months_trastuzumab_only" if only_trastuzumab else "early_relapse_months"
        )
        threshold = float(kb.param("lines", key))
        months = _months_between(last_end, record.metastatic_since)
        if months <= threshold:
            early_relapse = True
            prior += 1
            reasons.append(
                f"Metastatic disease {months:.0f} months after the last (neo)adjuvant "
                f"anti-HER2 therapy (within the {threshold:g}-month threshold): counted as one "
                "prior line (trastuzumab-refractory)."
            )
        else:
            reasons.append(
                f"Metastatic disease {months:.0f} months after (neo)adjuvant anti-HER2 therapy "
                f"(more than {threshold:g} months): first-line rules apply."
            )
    received = frozenset(e.drug for e in record.exposures)
    failed = frozenset(
        d
        for ln in record.lines
        if ln.ended_in_progression
        for d in ln.drugs
        if kb.is_her2_directed(d)
    )
    last = record.lines[-1] if record.lines else None
    continuing = bool(last and last.ongoing and not last.ended_in_progression)
    return History(prior, early_relapse, received, failed, last, continuing, tuple(reasons))


def _has_ild(record: PatientRecord) -> bool:
    return bool(record.conditions_of("ild"))


def _cns_predominant(record: PatientRecord) -> bool:
    brain = [m for m in record.metastases if m.concept == "brain-metastasis" and m.active]
    extracranial = [
        m
        for m in record.metastases
        if m.concept == "metastasis" and m.site not in (None, "brain") and m.active
    ]
    return bool(brain) and not extracranial


def recommend(record: PatientRecord, kb: Knowledge, jurisdiction: str = "FDA") -> Recommendation:
    """The next-line recommendation for a HER2-positive metastatic patient."""
    hist = history(record, kb)
    reasons = list(hist.reasons)
    prior = hist.prior_her2_lines
    line_number = len(record.lines) + 1
    timing = "now"
    if hist.continuing and hist.last_line is not None:
        timing = "on-progression"
        reasons.append(
            f"Line {hist.last_line.number} ({hist.last_line.regimen_name}) is ongoing with no "
            "progression recorded: continue it until progression or unacceptable toxicity; "
            "the regimen below is for the next line."
        )
    step = kb.step_for(prior)
    order = [step.preferred, *step.alternatives]
    excluded: list[tuple[str, str]] = []
    options: list[tuple[tuple[int, ...], RegimenOption]] = []
    ild = _has_ild(record)
    last_tki = bool(
        hist.last_line
        and any(kb.drugs[d].drug_class == "her2-tki" for d in hist.last_line.drugs if d in kb.drugs)
    )
    cns = _cns_predominant(record)
    for rank, rid in enumerate(order):
        rule = kb.regimens[rid]
        regimen = rule.regimen
        caveats: list[str] = []
        if ild and PULMONARY_TOXIC in regimen.drugs:
            excluded.append(
                (rid, "interstitial lung disease / pneumonitis on record: T-DXd is not recommended")
            )
            continue
        if rule.hr_positive_only and not record.hr_positive:
            excluded.append((rid, "for hormone-receptor-positive disease only"))
            continue
        if prior < rule.min_prior_her2_lines:
            excluded.append(
                (rid, f"needs {rule.min_prior_her2_lines} or more prior anti-HER2 regimens")
            )
            continue
        failed_keys = [a for a in rule.key_agents if a in hist.failed]
        received_keys = [a for a in rule.key_agents if a in hist.received]
        demote_failed = 0
        if failed_keys:
            demote_failed = 1
            caveats.append(f"disease progressed on {', '.join(failed_keys)}")
        demote_received = 1 if received_keys and not failed_keys else 0
        if demote_received:
            caveats.append(f"{', '.join(received_keys)} already given")
        demote_tki = 1 if (last_tki and rule.tki) else 0
        if demote_tki:
            caveats.append("no evidence supports a second TKI without intervening therapy")
        approved = jurisdiction in regimen.approvals
        if not approved:
            caveats.append(f"not approved for this use by the {jurisdiction}")
        cns_boost = 0 if (cns and rid == "tucatinib-trastuzumab-capecitabine") else 1
        reason = regimen.summary
        key = (demote_failed, 0 if approved else 1, demote_tki, demote_received, cns_boost, rank)
        options.append((key, RegimenOption(regimen, reason, tuple(caveats), approved)))
    options.sort(key=lambda kv: kv[0])
    viable = [o for k, o in options if k[0] == 0] or [o for _, o in options]
    if not viable:
        raise NoRegimenError("no regimen in the knowledge base fits this patient")
    preferred, *alternatives = viable
    reasons.insert(
        0,
        f"{prior} prior HER2-directed line(s) in the metastatic setting"
        + (" (including the early relapse)" if hist.early_relapse else "")
        + f": the guideline sequence offers {kb.regimens[step.preferred].short} next.",
    )
    if ild:
        reasons.append(
            "Interstitial lung disease / pneumonitis is on record: T-DXd is not offered "
            "(pre-existing ILD excluded patients from the T-DXd trials)."
        )
    if cns:
        reasons.append(
            "Active brain metastases without recorded extracranial disease: the tucatinib triplet "
            "is preferred (HER2CLIMB)."
        )
    if preferred.regimen.id != step.preferred and not ild and not cns:
        reasons.append(f"{kb.regimens[step.preferred].short} is not offered first: see caveats.")
    source_ids = tuple(
        sorted(
            {s for ln in record.lines for s in ln.source_ids}
            | set(record.her2.source_ids)
            | set(record.metastatic_source_ids)
            | {c.source_id for c in record.conditions_of("ild")}
        )
    )
    return Recommendation(
        line=line_number,
        timing=timing,
        preferred=preferred,
        alternatives=tuple(alternatives),
        reasons=tuple(reasons),
        prior_her2_lines=prior,
        early_relapse=hist.early_relapse,
        source_ids=source_ids,
        excluded=tuple(excluded),
        changes_advice=_what_would_change(record, preferred, kb),
    )


def _what_would_change(
    record: PatientRecord, preferred: RegimenOption, kb: Knowledge
) -> tuple[str, ...]:
    out = [
        "Documented progression on the current therapy moves the recommendation to the next line."
    ]
    if PULMONARY_TOXIC in preferred.regimen.drugs:
        out.append("Interstitial lung disease or pneumonitis would rule out T-DXd.")
    if not record.hr_positive:
        out.append("A hormone-receptor-positive result would add endocrine maintenance options.")
    return tuple(out)


class NoRegimenError(Exception):
    """The knowledge base has no regimen for this situation (a knowledge gap, said as such)."""


def regimen_rule(kb: Knowledge, regimen_id: str) -> RegimenRule:
    return kb.regimens[regimen_id]
