"""The off-sequence order check: an ordered regimen that the guideline sequence does not offer.

An order set whose anticancer drugs are neither the preferred regimen nor a ranked alternative
for this patient (lapatinib alone, capecitabine alone where T-DXd or T-DM1 is due) gets a warning
that names the recommended regimen and offers it. Continuing the current line is not off-sequence.
"""

from __future__ import annotations

from engine.history import current_drugs
from engine.knowledge import Knowledge
from engine.model import (
    DraftOrder,
    OrderFinding,
    PatientRecord,
    Recommendation,
    RegimenOption,
    Replacement,
)
from engine.order_status import line_status, rank
from engine.warning_text import make_finding

SUMMARY_LIMIT = 140  # CDS Hooks: a card summary is under 140 characters

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


def _allowed(option: RegimenOption, kb: Knowledge) -> set[str]:
    """The drug families a regimen option may be ordered with (its drugs and their stand-ins)."""
    alts = kb.regimens[option.regimen.id].drug_alternatives
    allowed = {kb.family(d) for d in option.regimen.drugs}
    return allowed | {kb.family(a) for v in alts.values() for a in v}


def offered_in(
    families: set[str], rec: Recommendation, kb: Knowledge, ordered: set[str] | None = None
) -> RegimenOption | None:
    """The regimen the recommendation offers that these drug families give, if any; with
    `ordered`, the drugs ordered must all belong to that regimen (T-DXd ordered beside a running
    tucatinib triplet is not the triplet, as an outside clinical review found)."""
    for option in (rec.preferred, *rec.alternatives):
        alts = kb.regimens[option.regimen.id].drug_alternatives
        if ordered is not None and not ordered <= _allowed(option, kb):
            continue
        if all(
            kb.family(d) in families or any(kb.family(a) in families for a in alts.get(d, ()))
            for d in option.regimen.drugs
        ):
            return option
    return None


def completable(families: set[str], rec: Recommendation, kb: Knowledge) -> list[RegimenOption]:
    """The offered regimens these drugs are all part of (the rest may still be ordered)."""
    return [o for o in (rec.preferred, *rec.alternatives) if families <= _allowed(o, kb)]


def next_line_words(record: PatientRecord, rec: Recommendation | None, kb: Knowledge) -> str:
    """What the service recommends, in a sentence an order card can end with: the current
    line's status as the patient-view says it (engine/order_status.py) while it goes on."""
    if rec is None:
        return ""
    status = line_status(record, kb, rec)
    if status is not None:
        return status.sentence
    alternatives = "; ".join(o.regimen.name for o in rec.alternatives)
    also = f" (ranked alternatives: {alternatives})" if alternatives else ""
    return f"The regimen recommended for line {rec.line} is {rec.preferred.regimen.name}{also}."


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


def _what(
    kb: Knowledge, option: RegimenOption, names: str, rec: Recommendation, alone: bool
) -> str:
    """What the order is: a ranked regimen, or (M2, third review) no regimen on its own."""
    where = rank(option, rec)
    if not alone:
        short = kb.regimens[option.regimen.id].short or option.regimen.name
        return f"It is {short}, {where} for line {rec.line} on progression."
    nxt = rec.preferred.regimen.name
    part = "" if option is rec.preferred else f" (or {option.regimen.name}, {where})"
    return (
        f"{names[:1].upper()}{names[1:]} alone is not a recommended regimen; on progression the "
        f"next line is {nxt}{part}."
    )


def _line_ongoing(
    record: PatientRecord,
    kb: Knowledge,
    order: DraftOrder,
    option: RegimenOption,
    names: str,
    rec: Recommendation,
    alone: bool,
) -> OrderFinding | None:
    """The next line ordered while the current one goes on with no progression recorded
    (CLINICAL.md section 3, "Status first"): document progression and stop it first; in the
    patient-view's "Review line N" state, the review (never "continue it")."""
    last = record.lines[-1]
    still = last.current_drugs or last.drugs
    keep = _allowed(option, kb)  # drugs of the new regimen already running go on
    # a drug that is no regimen on its own never asks to stop the running HER2 antibody
    stop = "" if alone else ", ".join(sorted(d for d in still if kb.family(d) not in keep))
    status = line_status(record, kb, rec)
    review = status is not None and status.review

    def finding(name: str) -> OrderFinding:
        return make_finding(
            kb,
            "off-sequence",
            "line-review" if review else "line-ongoing",
            order.resource_id,
            (*last.source_ids, *rec.source_ids),
            current=last.number,
            current_name=name,
            regimen_name=last.regimen_name,
            since=last.start.isoformat(),
            stop=f" and stop {stop}" if stop else "",
            ordered=names,
            what=_what(kb, option, names, rec, alone),
            review=status.short if status else "",
            status=status.sentence if status else "",
        )

    found = finding(f" ({last.regimen_name})")
    return found if len(found.summary) < SUMMARY_LIMIT else finding("")


def off_sequence(
    record: PatientRecord,
    kb: Knowledge,
    orders: tuple[DraftOrder, ...],
    order: DraftOrder,
    rec: Recommendation | None,
    complete: bool = True,
) -> OrderFinding | None:
    """One finding per order set, on its first regimen order: off-sequence when the set is
    none of the offered regimens nor the current line (whatever else is flagged on it; a set
    still being entered says which offered regimen it may become), line-ongoing when it is the
    next line ordered while the current one goes on without progression."""
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
    names = ", ".join(sorted({str(o.drug) for o in mine}))
    # the current line goes on until progression: then nothing is ordered in its place
    on_therapy = last is not None and rec.timing == "on-progression"
    running = {kb.family(d) for d in current_drugs(record)}
    partial = completable(every, rec, kb)
    offered = offered_in(every, rec, kb) or offered_in(every | running, rec, kb, ordered=every)
    if offered is not None:
        if not on_therapy:
            return None
        alone = offered_in(every, rec, kb) is None  # a regimen only with the running drugs
        return _line_ongoing(record, kb, order, offered, names, rec, alone)
    if on_therapy and partial and not complete:
        return _line_ongoing(record, kb, order, partial[0], names, rec, True)
    preferred = rec.preferred.regimen
    alternatives = "; ".join(o.regimen.name for o in rec.alternatives)
    no_her2 = not any(kb.is_her2_directed(str(o.drug)) for o in mine) and not any(
        kb.is_her2_directed(d) for d in current_drugs(record)
    )
    rep = (
        None if on_therapy else regimen_replacement(kb, rec, tuple(o.resource_id for o in mine[1:]))
    )
    # the patient-view's "Review line N" state (lapse, or every HER2 drug held): never "continue"
    status = line_status(record, kb, rec) if on_therapy else None
    review = status is not None and status.review
    return make_finding(
        kb,
        "off-sequence",
        ("lapsed" if review else "ongoing") if on_therapy else "ordered",
        order.resource_id,
        rec.source_ids,
        rep,
        current=last.number if last else "",
        current_name=last.regimen_name if last else "",
        ordered=names,
        ordered_alone=f"{names} alone" if len(mine) == 1 else names,
        recommended=preferred.name,
        line=rec.line,
        prior=rec.prior_her2_lines,
        alternatives=f" (ranked alternatives: {alternatives})" if alternatives else "",
        partial=(
            f" On its own it is no regimen; it is part of {'; '.join(o.regimen.name for o in partial)}: order the "
            "rest of that regimen with it if that is the plan."
            if partial
            else ""
        ),
        blockade=(
            "; it also has no HER2-directed agent, and HER2 blockade should continue"
            if no_her2
            else ""
        ),
        review=status.short if status else "",
        status=status.sentence if status else "",
    )
