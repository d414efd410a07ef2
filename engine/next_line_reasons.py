"""Why the next-line card recommends what it does, and what would change it (CLINICAL.md
section 3): the sequence row used, and plainly why its first choice is not first when it is not."""

from __future__ import annotations

from engine.lapse import line_lapse, status_reason
from engine.lapse import what_would_change as lapse_change
from engine.model import ReceptorStatus, RegimenOption, Specimen
from engine.next_line_ctx import Ctx, ild_excluded


def ild_agents(ctx: Ctx) -> str:
    """The agents ILD rules out, as cards name them ("T-DXd"; parameters.yaml agents.ild_excluded)."""
    return " / ".join(sorted(ctx.name(a) for a in ctx.kb.agents("ild_excluded")))


def _row_words(ctx: Ctx) -> str:
    kb, prior = ctx.kb, ctx.hist.prior_her2_lines
    step = kb.step_for(prior)
    last = max(s.prior_her2_lines for s in kb.sequence)
    if step.prior_her2_lines == last:
        return (
            f"the sequence row for {last} or more prior lines (the regimens not yet given "
            "come first)"
        )
    return f"the sequence row for {step.prior_her2_lines} prior line(s)"


def _why_not_first(
    ctx: Ctx,
    row_first: str,
    options: list[RegimenOption],
    excluded: list[tuple[str, str]],
    promoted: str | None,
) -> str | None:
    """Why the row's first choice is not the recommendation, in one plain sentence (None when a
    reason of its own says it: ILD, predominantly CNS disease, a never-skipped regimen)."""
    kb = ctx.kb
    first, preferred = kb.regimens[row_first].short, options[0].regimen.id
    if preferred == row_first:
        return None
    if promoted is not None and preferred == promoted:
        return (
            f"{first} is not first here: {kb.regimens[promoted].short} has never been given "
            "and comes first."
        )
    if ctx.brain.predominant and preferred == kb.next_line.brain.cns_preferred:
        return None
    why = dict(excluded).get(row_first)
    if why is not None:
        if ctx.ild and ild_excluded(kb, kb.regimens[row_first].regimen):
            return None  # the ILD reason says it
        return f"{first} is not recommended here: {why.removeprefix('not re-offered: ')}."
    ranked = next((o for o in options if o.regimen.id == row_first), None)
    if ranked is not None and ranked.caveats:
        return f"{first} is ranked lower here: {'; '.join(ranked.caveats)}."
    return None


def backbone_words(ctx: Ctx) -> str | None:
    """After an early relapse: which early agents rule regimens out, and that trastuzumab stays
    the backbone by design (first outside review, finding 9)."""
    refractory = ctx.hist.refractory
    if not ctx.hist.early_relapse or not refractory:
        return None
    kb = ctx.kb
    keyed = {a for r in kb.regimens.values() for a in r.key_agents}
    ruled_out = sorted(a for a in refractory if a in keyed)
    backbone = sorted(a for a in refractory if a not in keyed)
    parts: list[str] = []
    if ruled_out:
        names = sorted(
            {
                r.short or r.regimen.name
                for r in kb.regimens.values()
                if set(r.key_agents) & set(ruled_out)
            }
        )
        agents = " and ".join(ctx.name(a) for a in ruled_out)
        parts.append(f"regimens built on {agents} ({', '.join(names)}) are not offered again")
    if backbone:
        parts.append(
            f"{' and '.join(backbone)} stays the backbone of the later regimens by design (HER2 "
            "blockade continues beyond progression)"
        )
    return "After this early relapse, " + "; ".join(parts) + "."


def reasons(
    ctx: Ctx,
    row_first: str,
    options: list[RegimenOption],
    excluded: list[tuple[str, str]],
    widened: bool,
    reoffered: bool,
    promoted: str | None,
) -> list[str]:
    kb, hist = ctx.kb, ctx.hist
    preferred = options[0]
    lines = f"{hist.prior_her2_lines} prior HER2-directed line(s) in the metastatic setting" + (
        " (including the early relapse)" if hist.early_relapse else ""
    )
    why_not = _why_not_first(ctx, row_first, options, excluded, promoted)
    if preferred.regimen.id == row_first or why_not is None:
        head = f"{lines}: the guideline sequence offers {kb.regimens[row_first].short} next."
    else:
        head = f"{lines}: {_row_words(ctx)} puts {kb.regimens[row_first].short} first."
    out = [head, *([why_not] if why_not else []), *hist.reasons]
    backbone = backbone_words(ctx)
    if backbone:
        out.append(backbone)
    last = hist.last_line
    if hist.continuing and last is not None:
        # HER2-directed drugs of the line stopped: "review", never "continue" (engine/lapse.py)
        lapse = line_lapse(ctx.record, kb)
        nxt = len(ctx.record.lines) + 1
        out.append(status_reason(lapse, last, nxt, kb.regimens[preferred.regimen.id].short))
    words = kb.next_line
    brain = words.brain
    offers_triplet = brain.cns_preferred in [o.regimen.id for o in options]
    triplet_failed = brain.cns_preferred in dict(excluded)
    if ctx.brain.active and not offers_triplet and triplet_failed:
        out.append(brain.not_offered)
    elif ctx.brain.active and not offers_triplet:
        out.append(brain.later_line)
    elif ctx.brain.predominant:
        out.append(brain.predominant)
    elif ctx.brain.active and not kb.agents("ild_excluded").isdisjoint(preferred.regimen.drugs):
        out.append(brain.extracranial)  # T-DXd recommended: DESTINY-Breast12 fits
    elif ctx.brain.active and preferred.regimen.id == brain.cns_preferred:
        out.append(brain.extracranial_triplet_first)
    elif ctx.brain.active:
        out.append(brain.extracranial_no_tdxd)
    if ctx.last_tki:
        out.append(words.exclusion("tki_reason", tkis=", ".join(ctx.last_tki)))
    if widened:
        out.append(
            "Every regimen of this row had already failed: later-line options are offered instead."
        )
    if reoffered:
        out.append(
            "Every regimen in the knowledge base had already failed: regimens whose key agent "
            "failed are shown because nothing else is left."
        )
    if not preferred.approved:
        out.append(words.exclusion("none_approved", jurisdiction=ctx.jurisdiction))
    if any(not o.approved for o in options):
        out.append(words.exclusion("approvals_judged", jurisdiction=ctx.jurisdiction))
    return out


def what_would_change(ctx: Ctx, preferred: RegimenOption) -> tuple[str, ...]:
    out: list[str] = []
    last = ctx.hist.last_line
    lapse = line_lapse(ctx.record, ctx.kb) if last is not None else None
    if last is not None and (ctx.hist.continuing or lapse is not None):
        short = ctx.kb.regimens[preferred.regimen.id].short or preferred.regimen.name
        out.append(lapse_change(lapse, last, len(ctx.record.lines) + 1, short))
    out.append(
        "Treatment missing from this record (another metastatic line, or (neo)adjuvant "
        "HER2-directed therapy and its dates) would change the line count and so the regimen."
    )
    if ild_excluded(ctx.kb, preferred.regimen):
        out.append(ctx.kb.next_line.ild_text("would_change", agents=ild_agents(ctx)))
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
