"""Choosing the next line (CLINICAL.md section 3): the guideline sequence and its modifiers.

The sequence row comes from the number of prior HER2-directed lines (history.py); a never-skipped
regimen (regimens.yaml never_skip: T-DXd) not yet received leads the row. Each regimen of the row
is then excluded (ILD for the agents of parameters.yaml agents.ild_excluded, HR-positive-only,
minimum prior lines) or ranked by, in order: key agent already failed, not approved where the
service runs, TKI right after a TKI, already received, brain-metastasis preference, and the row's
own order. Summaries and evidence are those that fit the patient (regimens.yaml summaries,
evidence.yaml applies_when).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.history import History, history, tki_drugs
from engine.knowledge import Knowledge, RegimenRule, Situation
from engine.lapse import line_lapse, status_reason, what_would_change
from engine.maintenance import maintenance_advice
from engine.model import (
    PatientRecord,
    ReceptorStatus,
    Recommendation,
    Regimen,
    RegimenOption,
    Specimen,
)

TUCATINIB_TRIPLET = "tucatinib-trastuzumab-capecitabine"
JURISDICTIONS = ("FDA", "EMA")


class NoRegimenError(Exception):
    """The knowledge base has no regimen for this situation (a knowledge gap, said as such)."""


@dataclass(frozen=True)
class Brain:
    """Active brain metastases and whether the recorded disease is predominantly CNS."""

    active: bool
    predominant: bool
    source_ids: tuple[str, ...]
    recorded: bool = False  # any brain metastasis on record, active or not


def has_ild(record: PatientRecord) -> bool:
    return bool(record.conditions_of("ild"))


def brain_status(record: PatientRecord) -> Brain:
    brain = [m for m in record.metastases if m.concept == "brain-metastasis" and m.active]
    elsewhere = [
        m for m in record.metastases if m.concept == "metastasis" and m.active and m.site != "brain"
    ]
    recorded = any(m.concept == "brain-metastasis" for m in record.metastases)
    return Brain(
        bool(brain), bool(brain) and not elsewhere, tuple(m.source_id for m in brain), recorded
    )


def ild_excluded(kb: Knowledge, regimen: Regimen) -> bool:
    """The regimen contains an agent not offered with ILD on record (agents.ild_excluded)."""
    return not kb.agents("ild_excluded").isdisjoint(regimen.drugs)


@dataclass(frozen=True)
class _Ctx:
    record: PatientRecord
    kb: Knowledge
    hist: History
    jurisdiction: str
    ild: bool
    brain: Brain
    last_tki: tuple[str, ...]


def _option(
    ctx: _Ctx, rid: str, rank: float, excluded: list[tuple[str, str]], apply_ild: bool = True
) -> tuple[tuple[float, ...], RegimenOption] | None:
    rule: RegimenRule = ctx.kb.regimens[rid]
    regimen = rule.regimen
    if apply_ild and ctx.ild and ild_excluded(ctx.kb, regimen):
        excluded.append(
            (rid, "interstitial lung disease / pneumonitis on record: T-DXd is not recommended")
        )
        return None
    if rule.hr_positive_only and not ctx.record.hr_positive:
        excluded.append((rid, "for hormone-receptor-positive disease only"))
        return None
    # the label's "two or more prior anti-HER2 regimens in the metastatic setting": metastatic
    # lines only, an early relapse does not count here (outside clinical review, neratinib)
    metastatic_her2 = sum(1 for ln in ctx.record.lines if ln.her2_directed)
    if metastatic_her2 < rule.min_prior_her2_lines:
        excluded.append(
            (
                rid,
                f"needs {rule.min_prior_her2_lines} or more prior anti-HER2 regimens in the "
                f"metastatic setting ({metastatic_her2} recorded)",
            )
        )
        return None
    caveats: list[str] = []
    failed = [a for a in rule.key_agents if a in ctx.hist.failed]
    if failed:
        caveats.append(f"disease progressed on {', '.join(failed)}")
    received = [a for a in rule.key_agents if a in ctx.hist.received and a not in failed]
    if received:
        caveats.append(f"{', '.join(received)} already given")
    tki_demoted = bool(ctx.last_tki and rule.tki)
    if tki_demoted:
        caveats.append(
            f"follows a TKI ({', '.join(ctx.last_tki)}): no evidence supports a second TKI "
            "without intervening therapy"
        )
    approved = ctx.jurisdiction in regimen.approvals
    if not approved:
        where = ", ".join(regimen.approvals) or "no jurisdiction on record"
        caveats.append(f"not approved for this use by the {ctx.jurisdiction} (approved: {where})")
    cns_first = ctx.brain.predominant and rid == TUCATINIB_TRIPLET
    if ctx.brain.active and not ctx.brain.predominant and rid == TUCATINIB_TRIPLET:
        rank = min(rank, 0.5)  # first alternative when brain metastases sit beside other disease
    if cns_first:
        caveats.append("preferred for predominantly CNS disease (HER2CLIMB)")
    if ctx.ild and rule.ild_note:
        caveats.append(rule.ild_note)
    key = (
        1.0 if failed else 0.0,
        0.0 if approved else 1.0,
        1.0 if tki_demoted else 0.0,
        1.0 if received else 0.0,
        0.0 if cns_first else 1.0,
        rank,
    )
    situated = _situated(ctx, rule)
    return key, RegimenOption(situated, situated.summary, tuple(caveats), approved)


def _fits(ctx: _Ctx, when: Situation) -> bool:
    prior, received = ctx.hist.prior_her2_lines, ctx.hist.received
    return (
        (when.min_prior_her2_lines is None or prior >= when.min_prior_her2_lines)
        and (when.max_prior_her2_lines is None or prior <= when.max_prior_her2_lines)
        and all(a in received for a in when.received)
        and not any(a in received for a in when.not_received)
        and (when.brain != "active" or ctx.brain.active)
        and (when.brain != "cns-predominant" or ctx.brain.predominant)
    )


def _situated(ctx: _Ctx, rule: RegimenRule) -> Regimen:
    """The regimen with the summary and evidence that fit this patient."""
    regimen = rule.regimen
    summary = next((t for w, t in rule.summaries if _fits(ctx, w)), regimen.summary)
    applies = ctx.kb.evidence_applies
    evidence = tuple(
        ev
        for ev in regimen.evidence
        if applies.get(ev.id) != "brain-metastases" or ctx.brain.recorded
    )
    if summary == regimen.summary and evidence == regimen.evidence:
        return regimen
    return replace(regimen, summary=summary, evidence=evidence)


def _never_skip(ctx: _Ctx, row: list[str]) -> tuple[list[str], str | None]:
    """The row with a never-skipped regimen first, when its key agents were never received."""
    kb, prior = ctx.kb, ctx.hist.prior_her2_lines
    for rule in kb.never_skip:
        rows = [s.prior_her2_lines for s in kb.sequence if s.preferred == rule.regimen]
        if not rows or prior < min(rows) or (row and row[0] == rule.regimen):
            continue
        if any(a in ctx.hist.received for a in kb.regimens[rule.regimen].key_agents):
            continue
        return [rule.regimen, *(r for r in row if r != rule.regimen)], rule.regimen
    return row, None


def _rank(
    ctx: _Ctx, ids: list[str], apply_ild: bool = True
) -> tuple[list[RegimenOption], list[tuple[str, str]], bool]:
    """Viable options best first, exclusions, and whether failed agents had to be re-offered."""
    excluded: list[tuple[str, str]] = []
    scored = [
        opt
        for rank, rid in enumerate(ids)
        if (opt := _option(ctx, rid, float(rank), excluded, apply_ild)) is not None
    ]
    scored.sort(key=lambda kv: kv[0])
    untried = [o for k, o in scored if k[0] == 0.0]
    for k, o in scored:
        if k[0] != 0.0 and untried:
            excluded.append((o.regimen.id, f"not re-offered: {o.caveats[0]}"))
    if untried:
        return untried, excluded, False
    return [o for _, o in scored], excluded, bool(scored)


def _candidates(kb: Knowledge, prior: int) -> tuple[list[str], list[str]]:
    """The sequence row's regimens, and those of later rows (used only when the row runs out)."""
    step = kb.step_for(prior)
    row = [step.preferred, *step.alternatives]
    later = [
        rid
        for s in kb.sequence
        if s.prior_her2_lines > step.prior_her2_lines
        for rid in (s.preferred, *s.alternatives)
        if rid not in row
    ]
    return row, list(dict.fromkeys(later))


def recommend(record: PatientRecord, kb: Knowledge, jurisdiction: str = "FDA") -> Recommendation:
    """The next-line recommendation for a HER2-positive metastatic patient."""
    if jurisdiction not in JURISDICTIONS:
        raise ValueError(f"jurisdiction must be one of {JURISDICTIONS}, not {jurisdiction!r}")
    hist = history(record, kb)
    last_tki = tuple(tki_drugs(hist.last_line.drugs, kb)) if hist.last_line else ()
    ctx = _Ctx(record, kb, hist, jurisdiction, has_ild(record), brain_status(record), last_tki)
    prior = hist.prior_her2_lines
    row, later = _candidates(kb, prior)
    row, promoted = _never_skip(ctx, row)
    options, excluded, reoffered = _rank(ctx, row)
    widened = False
    if reoffered or not options:
        wider, wider_excluded, wider_reoffered = _rank(ctx, row + later)
        if wider and not wider_reoffered:
            options, excluded, reoffered, widened = wider, wider_excluded, False, True
    if not options:
        raise NoRegimenError("no regimen in the knowledge base fits this patient")
    preferred, *alternatives = options
    reasons = _reasons(ctx, row[0], options, widened, reoffered)
    if promoted is not None and preferred.regimen.id == promoted:
        reasons.insert(1, next(n.reason for n in kb.never_skip if n.regimen == promoted))
    ild_replaced = None
    if ctx.ild:
        counterfactual, _, _ = _rank(ctx, row + (later if widened else []), apply_ild=False)
        if counterfactual and ild_excluded(kb, counterfactual[0].regimen):
            ild_replaced = counterfactual[0].regimen.id
            reasons.append(
                f"{kb.regimens[ild_replaced].short} would otherwise be preferred; interstitial lung "
                f"disease / pneumonitis is on record, so {preferred.regimen.name} takes its place "
                "(patients with pre-existing ILD were excluded from the T-DXd trials; the label "
                "lists no formal contraindication: not recommended)."
            )
        else:
            reasons.append(
                "Interstitial lung disease / pneumonitis is on record: T-DXd (alone or with "
                "pertuzumab) is not offered."
            )
    source_ids = tuple(
        sorted(
            {s for ln in record.lines for s in ln.source_ids}
            | set(record.her2.source_ids)
            | set(record.metastatic_source_ids)
            | set(hist.source_ids)
            | {c.source_id for c in record.conditions_of("ild")}
            | set(ctx.brain.source_ids)
        )
    )
    maintenance = maintenance_advice(record, kb, hist, preferred)
    reasons.extend(maintenance)
    return Recommendation(
        line=len(record.lines) + 1,
        timing="on-progression" if hist.continuing else "now",
        preferred=preferred,
        alternatives=tuple(alternatives),
        reasons=tuple(reasons),
        prior_her2_lines=prior,
        early_relapse=hist.early_relapse,
        source_ids=source_ids,
        excluded=tuple(excluded),
        regimen_names=tuple(
            (rid, kb.regimens[rid].regimen.name) for rid in dict.fromkeys(r for r, _ in excluded)
        ),
        changes_advice=_what_would_change(ctx, preferred),
        ild_replaced=ild_replaced,
        early_relapse_threshold_months=hist.relapse_threshold,
        maintenance=maintenance,
    )


def _reasons(
    ctx: _Ctx, row_first: str, options: list[RegimenOption], widened: bool, reoffered: bool
) -> list[str]:
    kb, hist = ctx.kb, ctx.hist
    preferred = options[0]
    reasons = [
        f"{hist.prior_her2_lines} prior HER2-directed line(s) in the metastatic setting"
        + (" (including the early relapse)" if hist.early_relapse else "")
        + f": the guideline sequence offers {kb.regimens[row_first].short} next.",
        *hist.reasons,
    ]
    last = hist.last_line
    if hist.continuing and last is not None:
        # HER2-directed drugs of the line stopped: "review", never "continue" (engine/lapse.py)
        lapse = line_lapse(ctx.record, kb)
        nxt = len(ctx.record.lines) + 1
        reasons.append(status_reason(lapse, last, nxt, kb.regimens[preferred.regimen.id].short))
    offers_triplet = TUCATINIB_TRIPLET in [o.regimen.id for o in options]
    if ctx.brain.active and not offers_triplet:
        reasons.append(
            "Active brain metastases are recorded; the tucatinib triplet is a later-line option "
            "(HER2CLIMB enrolled patients previously treated with trastuzumab, pertuzumab and "
            "T-DM1)."
        )
    elif ctx.brain.predominant:
        reasons.append(
            "Active brain metastases with no active extracranial metastasis recorded "
            "(predominantly CNS disease): the tucatinib triplet is preferred (HER2CLIMB: 48% of "
            "patients had brain metastases)."
        )
    elif ctx.brain.active:
        reasons.append(
            "Active brain metastases with extracranial disease: T-DXd stays preferred where it "
            "fits (DESTINY-Breast12: 12-month OS 86.1% with active brain metastases); the "
            "tucatinib triplet is the first alternative."
        )
    if ctx.last_tki:
        reasons.append(
            f"The last line contained a TKI ({', '.join(ctx.last_tki)}): TKI regimens are "
            "demoted; no evidence supports a second TKI without intervening therapy."
        )
    if widened:
        reasons.append(
            "Every regimen of this row had already failed: later-line options are offered instead."
        )
    if reoffered:
        reasons.append(
            "Every regimen in the knowledge base had already failed: regimens whose key agent "
            "failed are shown because nothing else is left."
        )
    if not preferred.approved:
        reasons.append(f"No option approved by the {ctx.jurisdiction} is left.")
    if any(not o.approved for o in options):
        reasons.append(
            f"Approvals are judged for the {ctx.jurisdiction}: regimens not approved there are "
            "marked and never preferred while an approved option exists."
        )
    if preferred.regimen.id != row_first and not (ctx.ild or ctx.brain.predominant or widened):
        reasons.append(f"{kb.regimens[row_first].short} is not offered first: see caveats.")
    return reasons


def _what_would_change(ctx: _Ctx, preferred: RegimenOption) -> tuple[str, ...]:
    out: list[str] = []
    last = ctx.hist.last_line
    lapse = line_lapse(ctx.record, ctx.kb) if last is not None else None
    if last is not None and (ctx.hist.continuing or lapse is not None):
        short = ctx.kb.regimens[preferred.regimen.id].short or preferred.regimen.name
        out.append(what_would_change(lapse, last, len(ctx.record.lines) + 1, short))
    out.append(
        "Treatment missing from this record (another metastatic line, or (neo)adjuvant "
        "HER2-directed therapy and its dates) would change the line count and so the regimen."
    )
    if ild_excluded(ctx.kb, preferred.regimen):
        out.append("Interstitial lung disease or pneumonitis would rule out T-DXd.")
    if ctx.record.er.status.value == "unknown" and ctx.record.pr.status.value == "unknown":
        out.append(
            "Hormone-receptor status is not recorded: a positive result adds endocrine options."
        )
    elif not ctx.record.hr_positive:
        out.append("A hormone-receptor-positive result would add endocrine maintenance options.")
    basis = ctx.record.her2.basis
    if (
        ctx.record.her2.status is ReceptorStatus.POSITIVE
        and basis is not None
        and basis.specimen is Specimen.UNKNOWN
    ):
        text = ctx.kb.warning("her2-status").variants["specimen-unknown"].detail
        out.append(" ".join(text.split()))
    return tuple(out)


def regimen_rule(kb: Knowledge, regimen_id: str) -> RegimenRule:
    return kb.regimens[regimen_id]
