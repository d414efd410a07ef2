"""The off-sequence order check: an ordered regimen that the guideline sequence does not offer.

An order set whose anticancer drugs are neither the preferred regimen nor a ranked alternative
for this patient (lapatinib alone, capecitabine alone where T-DXd or T-DM1 is due) gets a warning
that names the recommended regimen and offers it. Continuing the current line is not off-sequence.
"""

from __future__ import annotations

from engine.history import current_drugs
from engine.knowledge import Knowledge
from engine.lapse import ask_why, line_lapse
from engine.model import DraftOrder, OrderFinding, PatientRecord, Recommendation, Replacement
from engine.warning_text import make_finding

# the drug classes that make up a regimen (endocrine and CDK4/6 additions to maintenance do not)
_REGIMEN_CLASSES = ("anti-her2-antibody", "anti-her2-adc", "her2-tki", "chemotherapy")


def regimen_orders(orders: tuple[DraftOrder, ...], kb: Knowledge) -> list[DraftOrder]:
    """The orders of a set that make up a regimen: HER2-directed drugs and chemotherapy."""
    out = []
    for o in orders:
        info = kb.drug(o.drug) if o.drug else None
        if info and (info.her2_directed or info.drug_class in _REGIMEN_CLASSES):
            out.append(o)
    return out


def offered_in(
    families: set[str], rec: Recommendation, kb: Knowledge, ordered: set[str] | None = None
) -> bool:
    """Whether these drug families give one of the regimens the recommendation offers; with
    `ordered`, the drugs ordered must all belong to that regimen (T-DXd ordered beside a running
    tucatinib triplet is not the triplet, as an outside clinical review found)."""
    for option in (rec.preferred, *rec.alternatives):
        alts = kb.regimens[option.regimen.id].drug_alternatives
        allowed = {kb.family(d) for d in option.regimen.drugs}
        allowed |= {kb.family(a) for v in alts.values() for a in v}
        if ordered is not None and not ordered <= allowed:
            continue
        if all(
            kb.family(d) in families or any(kb.family(a) in families for a in alts.get(d, ()))
            for d in option.regimen.drugs
        ):
            return True
    return False


def _may_become_offered(families: set[str], rec: Recommendation, kb: Knowledge) -> bool:
    """Whether these drugs are all part of one offered regimen (the rest may follow)."""
    for option in (rec.preferred, *rec.alternatives):
        alts = kb.regimens[option.regimen.id].drug_alternatives
        allowed = {kb.family(d) for d in option.regimen.drugs}
        allowed |= {kb.family(a) for v in alts.values() for a in v}
        if families <= allowed:
            return True
    return False


def regimen_replacement(kb: Knowledge, rec: Recommendation, also: tuple[str, ...]) -> Replacement:
    """The recommended regimen, every component, as the order that replaces the set."""
    preferred = rec.preferred.regimen
    comps = preferred.components
    return Replacement(
        drug=comps[0].drug,
        label=preferred.name,
        component=comps[0],
        components=comps,
        also_delete=also,
    )


def off_sequence(
    record: PatientRecord,
    kb: Knowledge,
    orders: tuple[DraftOrder, ...],
    order: DraftOrder,
    rec: Recommendation | None,
    complete: bool = True,
) -> OrderFinding | None:
    """One finding per order set, on its first regimen order, when the set is off-sequence
    (`complete` False: a set still being entered, off-sequence only when nothing offered can
    complete it)."""
    if rec is None:
        return None
    mine = regimen_orders(orders, kb)
    if not mine or mine[0].resource_id != order.resource_id:
        return None
    ordered = {kb.family(str(o.drug)) for o in mine}
    every = {kb.family(str(o.drug)) for o in orders if o.drug}
    last = record.lines[-1] if record.lines else None
    continuing = last is not None and (last.ongoing or rec.timing == "on-progression")
    if last is not None and continuing and ordered <= {kb.family(d) for d in last.drugs}:
        return None  # continuing (re-ordering) the current line
    running = {kb.family(d) for d in current_drugs(record)}
    if offered_in(every, rec, kb) or offered_in(every | running, rec, kb, ordered=every):
        return None
    if not complete and _may_become_offered(every, rec, kb):
        return None
    names = ", ".join(sorted({str(o.drug) for o in mine}))
    preferred = rec.preferred.regimen
    alternatives = "; ".join(o.regimen.name for o in rec.alternatives)
    no_her2 = not any(kb.is_her2_directed(str(o.drug)) for o in mine) and not any(
        kb.is_her2_directed(d) for d in current_drugs(record)
    )
    # the current line goes on until progression: then nothing is ordered in its place
    on_therapy = last is not None and rec.timing == "on-progression"
    rep = (
        None if on_therapy else regimen_replacement(kb, rec, tuple(o.resource_id for o in mine[1:]))
    )
    # HER2-directed drugs of the current line stopped, no progression: never "continue it"
    lapse = line_lapse(record, kb) if on_therapy else None
    regimen = kb.regimens[preferred.id].short
    return make_finding(
        kb,
        "off-sequence",
        ("lapsed" if lapse else "ongoing") if on_therapy else "ordered",
        order.resource_id,
        rec.source_ids,
        rep,
        current=last.number if last else "",
        current_name=last.regimen_name if last else "",
        ordered=names,
        recommended=preferred.name,
        line=rec.line,
        prior=rec.prior_her2_lines,
        alternatives=f" (ranked alternatives: {alternatives})" if alternatives else "",
        blockade=(
            "; it also has no HER2-directed agent, and HER2 blockade should continue"
            if no_her2
            else ""
        ),
        stopped_names=lapse.names if lapse else "",
        stopped=f"{lapse.listed()} stopped" if lapse else "",
        ask=ask_why(lapse, rec.line, regimen) if lapse else "",
    )
