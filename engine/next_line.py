"""Choosing the next line (CLINICAL.md section 3): the guideline sequence and its modifiers.

The sequence row comes from the number of prior HER2-directed lines (history.py); a never-skipped
regimen (regimens.yaml never_skip: T-DXd) not yet received leads the row. Each regimen of the row
is then excluded (ILD for the agents of parameters.yaml agents.ild_excluded, HR-positive-only,
minimum prior lines) or ranked by, in order: key agent already failed (or still given by the
ongoing line the next one follows), not approved where the service runs, TKI right after a TKI,
already received, brain-metastasis preference, and the row's own order. Summaries and evidence
are those that fit the patient (regimens.yaml summaries, evidence.yaml applies_when), and the
orders are fitted to her (regimen_doses.py: re-loads after a gap, no failed endocrine agent).
"""

from __future__ import annotations

from dataclasses import replace

from engine.history import history, tki_drugs
from engine.knowledge import Knowledge, RegimenRule, Situation
from engine.maintenance import maintenance_advice
from engine.model import PatientRecord, Recommendation, Regimen, RegimenOption
from engine.next_line_ctx import Brain, Ctx, brain_status, has_ild, ild_excluded
from engine.next_line_reasons import ild_agents, reasons, what_would_change
from engine.regimen_doses import dosed
from engine.warning_text import override

__all__ = ["Brain", "NoRegimenError", "brain_status", "has_ild", "ild_excluded", "recommend"]


class NoRegimenError(Exception):
    """The knowledge base has no regimen for this situation (a knowledge gap, said as such)."""


def _option(
    ctx: Ctx, rid: str, rank: float, excluded: list[tuple[str, str]], apply_ild: bool = True
) -> tuple[tuple[float, ...], RegimenOption, str] | None:
    rule: RegimenRule = ctx.kb.regimens[rid]
    regimen = rule.regimen
    words = ctx.kb.next_line
    if apply_ild and ctx.ild and ild_excluded(ctx.kb, regimen):
        excluded.append((rid, words.ild_text("excluded", agents=ild_agents(ctx))))
        return None
    if rule.hr_positive_only and not ctx.record.hr_positive:
        excluded.append((rid, words.exclusion("hr_positive_only")))
        return None
    # the label's "two or more prior anti-HER2 regimens in the metastatic setting": metastatic
    # lines only, an early relapse does not count here (outside clinical review, neratinib)
    metastatic_her2 = sum(1 for ln in ctx.record.lines if ln.her2_directed)
    if metastatic_her2 < rule.min_prior_her2_lines:
        needed, recorded = rule.min_prior_her2_lines, metastatic_her2
        excluded.append((rid, words.exclusion("min_prior_lines", needed=needed, recorded=recorded)))
        return None
    caveats: list[str] = []
    failed = [a for a in rule.key_agents if a in ctx.hist.failed]
    # the key agents of the ongoing line: the next line is for progression on it
    current = [a for a in rule.key_agents if a in ctx.current and a not in failed]
    failure = "; ".join(ctx.failure(a) for a in failed)
    out = f"not re-offered: {failure}" if failed else ""
    if failed:
        caveats.append(failure)
    if current:
        caveats.append(ctx.current_words(current))
        out = "; ".join(w for w in (out, ctx.current_words(current)) if w)
    received = [
        a
        for a in rule.key_agents
        if a in ctx.hist.received and a not in failed and a not in current
    ]
    if received:
        caveats.append(f"{', '.join(received)} already given")
    tki_demoted = bool(ctx.last_tki and rule.tki)
    if tki_demoted:
        caveats.append(words.exclusion("tki_caveat", tkis=", ".join(ctx.last_tki)))
    approved = ctx.jurisdiction in regimen.approvals
    if not approved:
        where = ", ".join(regimen.approvals) or "no jurisdiction on record"
        caveats.append(words.exclusion("not_approved", jurisdiction=ctx.jurisdiction, where=where))
    brain = words.brain
    cns_first = ctx.brain.predominant and rid == brain.cns_preferred
    if ctx.brain.active and not ctx.brain.predominant and rid == brain.cns_preferred:
        # first alternative when brain metastases sit beside other disease
        rank = min(rank, brain.extracranial_rank)
    if cns_first:
        caveats.append(brain.caveat)
    if ctx.ild and rule.ild_note:
        caveats.append(rule.ild_note)
    key = (
        1.0 if failed or current else 0.0,
        0.0 if approved else 1.0,
        1.0 if tki_demoted else 0.0,
        1.0 if received else 0.0,
        0.0 if cns_first else 1.0,
        rank,
    )
    situated = _situated(ctx, rule)
    # the orders as this patient needs them: re-loads after a gap, no failed endocrine agent
    fitted = dosed(ctx.record, ctx.kb, situated, not ctx.hist.continuing, ctx.current)
    option = RegimenOption(
        fitted.regimen,
        situated.summary,
        tuple(caveats),
        approved,
        fitted.not_orderable,
        fitted.notes,
    )
    return key, option, out


def _fits(ctx: Ctx, when: Situation) -> bool:
    prior, received = ctx.hist.prior_her2_lines, ctx.hist.received
    return (
        (when.min_prior_her2_lines is None or prior >= when.min_prior_her2_lines)
        and (when.max_prior_her2_lines is None or prior <= when.max_prior_her2_lines)
        and all(a in received for a in when.received)
        and not any(a in received for a in when.not_received)
        and (when.brain != "active" or ctx.brain.active)
        and (when.brain != "cns-predominant" or ctx.brain.predominant)
    )


def _evidence_fits(ctx: Ctx, situation: str | None) -> bool:
    """evidence.yaml applies_when: any brain metastasis, or an active one (a stable, treated
    brain metastasis does not bring the active-brain-metastasis figures)."""
    if situation == "brain-metastases":
        return ctx.brain.recorded
    if situation == "active-brain-metastases":
        return ctx.brain.active
    return True


def _situated(ctx: Ctx, rule: RegimenRule) -> Regimen:
    """The regimen with the summary and evidence that fit this patient."""
    regimen = rule.regimen
    summary = next((t for w, t in rule.summaries if _fits(ctx, w)), regimen.summary)
    applies = ctx.kb.evidence_applies
    evidence = tuple(ev for ev in regimen.evidence if _evidence_fits(ctx, applies.get(ev.id)))
    if summary == regimen.summary and evidence == regimen.evidence:
        return regimen
    return replace(regimen, summary=summary, evidence=evidence)


def _never_skip(ctx: Ctx, row: list[str]) -> tuple[list[str], str | None]:
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
    ctx: Ctx, ids: list[str], apply_ild: bool = True
) -> tuple[list[RegimenOption], list[tuple[str, str]], bool]:
    """Viable options best first, exclusions, and whether failed agents had to be re-offered."""
    excluded: list[tuple[str, str]] = []
    scored = [
        opt
        for rank, rid in enumerate(ids)
        if (opt := _option(ctx, rid, float(rank), excluded, apply_ild)) is not None
    ]
    scored.sort(key=lambda kv: kv[0])
    untried = [o for k, o, _ in scored if k[0] == 0.0]
    for k, o, out in scored:
        if k[0] != 0.0 and untried:
            excluded.append((o.regimen.id, out))
    if untried:
        return untried, excluded, False
    return [o for _, o, _ in scored], excluded, bool(scored)


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
    if jurisdiction not in kb.next_line.jurisdictions:
        known = kb.next_line.jurisdictions
        raise ValueError(f"jurisdiction must be one of {known}, not {jurisdiction!r}")
    hist = history(record, kb)
    last_tki = tuple(tki_drugs(hist.last_line.drugs, kb)) if hist.last_line else ()
    last = hist.last_line
    # what the ongoing line still gives (a drug of it that stopped is not "given now")
    current = (
        frozenset(last.current_drugs or last.drugs) if hist.continuing and last else frozenset()
    )
    ctx = Ctx(
        record, kb, hist, jurisdiction, has_ild(record), brain_status(record), last_tki, current
    )
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
    step_first = kb.step_for(prior).preferred
    why = reasons(ctx, step_first, options, excluded, widened, reoffered, promoted)
    if promoted is not None and preferred.regimen.id == promoted:
        at = 2 if preferred.regimen.id != step_first else 1
        why.insert(at, next(n.reason for n in kb.never_skip if n.regimen == promoted))
    ild_replaced = None
    if ctx.ild:
        counterfactual, _, _ = _rank(ctx, row + (later if widened else []), apply_ild=False)
        if counterfactual and ild_excluded(kb, counterfactual[0].regimen):
            ild_replaced = counterfactual[0].regimen.id
            why.append(
                kb.next_line.ild_text(
                    "replaced",
                    replaced=kb.regimens[ild_replaced].short,
                    preferred=preferred.regimen.name,
                    agents=ild_agents(ctx),
                )
            )
        else:
            why.append(kb.next_line.ild_text("not_offered", agents=ild_agents(ctx)))
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
    why.extend(maintenance)
    return Recommendation(
        line=len(record.lines) + 1,
        timing="on-progression" if hist.continuing else "now",
        preferred=preferred,
        alternatives=tuple(alternatives),
        reasons=tuple(why),
        prior_her2_lines=prior,
        early_relapse=hist.early_relapse,
        source_ids=source_ids,
        excluded=tuple(excluded),
        regimen_names=tuple(
            (rid, kb.regimens[rid].regimen.name) for rid in dict.fromkeys(r for r, _ in excluded)
        ),
        changes_advice=what_would_change(ctx, preferred),
        ild_replaced=ild_replaced,
        early_relapse_threshold_months=hist.relapse_threshold,
        maintenance=maintenance,
        override_reasons=tuple(override(c, d) for c, d in kb.next_line.override_reasons),
    )


def regimen_rule(kb: Knowledge, regimen_id: str) -> RegimenRule:
    return kb.regimens[regimen_id]
