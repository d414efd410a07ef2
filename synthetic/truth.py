"""The answer file: what the generator knows about a journey, and what CLINICAL.md says follows.

Derived from the journey and CLINICAL.md's rules only, never by calling the engine (otherwise
agreement would be meaningless). The knowledge base is read as *data* (regimen drugs, key
agents, approvals, the guideline sequence rows, rule parameters); the choosing is done here.

Where CLINICAL.md is genuinely ambiguous, the truth carries an acceptable set next to the
expected value, and each such tolerance says why (`tolerances`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from engine.knowledge import Knowledge, load_knowledge
from synthetic.journey import GENERATOR_VERSION, Journey, Line

TDXD = "fam-trastuzumab deruxtecan"
CARDIAC_DRUGS = frozenset({"trastuzumab", "pertuzumab", "ado-trastuzumab emtansine", TDXD})
EARLY_RELAPSE_AGENTS = frozenset({"trastuzumab", "pertuzumab"})  # CLINICAL.md section 2 rule 6


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def her2_status(j: Journey) -> tuple[str, str]:
    """(status, specimen of the deciding result), by CLINICAL.md section 1: the latest valid
    result wins, a metastatic biopsy outranks the primary, IHC 2+ is equivocal unless ISH is
    positive."""
    results: list[tuple[int, date, str, str]] = []
    for t in j.her2_tests:
        status = {"3+": "positive", "2+": "equivocal", "1+": "negative", "0": "negative"}.get(
            t.result, t.result
        )
        results.append((1 if t.specimen == "metastatic" else 0, t.when, status, t.specimen))
    when = j.her2_condition_date or j.diagnosis
    if j.her2_condition and when:
        results.append((0, when, j.her2_condition, "unknown"))
    if not results:
        return "unknown", ""
    results.sort(key=lambda r: (r[0], r[1]))
    best = results[-1]
    if best[2] == "equivocal":
        ish = [
            r
            for r in results
            if r[1] >= best[1] and r[2] in ("positive", "negative") and r is not best
        ]
        if ish:
            best = ish[-1]
    return best[2], best[3]


@dataclass(frozen=True)
class Choice:
    expected: str | None
    acceptable: tuple[str, ...]
    why: tuple[str, ...]


class Chooser:
    """CLINICAL.md section 3, written from the text (not from engine/next_line.py)."""

    def __init__(self, j: Journey, kb: Knowledge, jurisdiction: str = "FDA") -> None:
        self.j, self.kb, self.jurisdiction = j, kb, jurisdiction
        her2 = [ln for ln in j.lines if any(kb.is_her2_directed(d) for d in ln.drugs)]
        self.her2_lines = len(her2)
        self.early_relapse, self.relapse_months = self._early_relapse()
        self.prior = self.her2_lines + (1 if self.early_relapse else 0)
        self.received = {c.drug for c in j.early} | {d for ln in j.lines for d in ln.drugs}
        # the on-progression advice for an ongoing line assumes progression on it: its agents
        # then count as failed ("never re-offer an agent that already failed")
        current = j.lines[-1] if j.lines and j.lines[-1].end is None else None
        self.failed = {
            d
            for ln in j.lines
            if ln.progression or ln is current
            for d in ln.drugs
            if kb.is_her2_directed(d)
        }
        last = j.lines[-1] if j.lines else None
        self.last_tki = bool(last and any(self._tki(d) for d in last.drugs))
        self.cns = cns_predominant(j)

    def _tki(self, drug: str) -> bool:
        info = self.kb.drug(drug)
        return bool(info and info.drug_class == "her2-tki")

    def _early_relapse(self) -> tuple[bool, float | None]:
        j = self.j
        early = [c for c in j.early if c.drug in EARLY_RELAPSE_AGENTS and c.end]
        if not early or j.metastatic_since is None or j.de_novo:
            return False, None
        last_end = max(c.end for c in early if c.end)
        only_t = {c.drug for c in early} == {"trastuzumab"}
        key = "early_relapse_months_trastuzumab_only" if only_t else "early_relapse_months"
        threshold = float(self.kb.param("lines", key))
        gap = (j.metastatic_since - last_end).days / 30.4375
        return gap <= threshold, round(gap, 1)

    def regimen_tki(self, rid: str) -> bool:
        return self.kb.regimens[rid].tki

    def viable(self, rid: str, ild: bool) -> bool:
        rule = self.kb.regimens[rid]
        if ild and TDXD in rule.regimen.drugs:
            return False  # ILD: T-DXd not offered
        if rule.hr_positive_only and not self.j.hr_positive:
            return False
        return self.prior >= rule.min_prior_her2_lines

    def flags(self, rid: str, received_at_row_1: bool = False) -> dict[str, int]:
        rule = self.kb.regimens[rid]
        counts_received = self.prior >= 2 or (received_at_row_1 and self.prior == 1)
        return {
            "failed": int(any(a in self.failed for a in rule.key_agents)),
            "unapproved": int(self.jurisdiction not in rule.regimen.approvals),
            "tki": int(self.last_tki and rule.tki),
            # "if never given" / "not yet given" are rules of rows 2 and 3+ only: at rows 0-1 an
            # agent given before (e.g. adjuvant pertuzumab, late relapse) does not demote
            "received": int(counts_received and any(a in self.received for a in rule.key_agents)),
            "cns": 0
            if (self.cns and rid == "tucatinib-trastuzumab-capecitabine" and self.prior >= 1)
            else 1,
        }

    # Orderings of the modifiers. CLINICAL.md lists the modifiers without saying which wins when
    # two apply (e.g. a TKI-after-TKI demotion against "never given"), so every ordering that
    # keeps "never re-offer a failed agent" first is accepted; the first one is the expected.
    ORDERINGS = (
        ("failed", "unapproved", "tki", "received", "cns"),
        ("failed", "tki", "received", "unapproved", "cns"),
        ("failed", "unapproved", "received", "tki", "cns"),
        ("failed", "unapproved", "tki", "cns", "received"),
    )

    def _rank(self, ids: list[str], ordering: tuple[str, ...], row_1: bool = False) -> list[str]:
        return sorted(
            ids, key=lambda rid: (*(self.flags(rid, row_1)[k] for k in ordering), ids.index(rid))
        )

    def choose(self, ild: bool) -> Choice:
        choice = self._choose(ild)
        triplet = "tucatinib-trastuzumab-capecitabine"
        brain = any(
            s.kind == "brain" and s.status in ("active", "recurrence", "relapse")
            for s in self.j.sites
        )
        if (
            brain
            and self.prior >= 1
            and choice.expected is not None
            and TDXD not in self.kb.regimens[choice.expected].regimen.drugs
            and triplet in self.kb.regimens
            and self.viable(triplet, ild)
            and not any(self.flags(triplet)[k] for k in ("failed", "tki", "unapproved"))
            and triplet not in choice.acceptable
        ):
            # Tolerance: active brain metastases with extracranial disease when T-DXd is out
            # (failed, ILD): CLINICAL.md keeps T-DXd preferred for that case but does not say
            # what replaces it; the tucatinib triplet (HER2CLIMB, brain metastases) is accepted.
            return Choice(
                choice.expected,
                (*choice.acceptable, triplet),
                (*choice.why, "active brain metastases, T-DXd out: tucatinib triplet accepted"),
            )
        return choice

    def _choose(self, ild: bool) -> Choice:
        kb = self.kb
        rows = sorted(kb.sequence, key=lambda s: s.prior_her2_lines)
        top_row = rows[-1].prior_her2_lines
        why = [
            f"{self.prior} prior HER2-directed metastatic line(s)"
            + (" (incl. early relapse)" if self.early_relapse else "")
        ]
        if self.prior < top_row:
            step = kb.step_for(self.prior)
            ids = [r for r in (step.preferred, *step.alternatives) if self.viable(r, ild)]
            tops = [self._rank(ids, o)[0] for o in self.ORDERINGS if ids]
            # Tolerance (row 1): whether an agent given before (T-DM1 in KATHERINE) demotes an
            # alternative here is open in CLINICAL.md ("counts as received" is stated, its
            # effect on line 2 is not): both readings are accepted.
            tops += [self._rank(ids, o, True)[0] for o in self.ORDERINGS if ids]
            expected = tops[0] if tops else None
            return Choice(expected, tuple(dict.fromkeys(tops)), tuple(why))
        # 3 or more: "whatever of the above was not yet given" (unranked in CLINICAL.md), else the
        # ranked alternatives of the last row.
        # "the above": the preferred regimen of each earlier row, then the later-line
        # alternatives of rows 1-2 (row 0's alternative, T-DXd + pertuzumab, is first-line only)
        above: list[str] = []
        for r in [s.preferred for s in rows[:-1]] + [a for s in rows[1:-1] for a in s.alternatives]:
            if r not in above:
                above.append(r)
        fresh = [r for r in above if self.viable(r, ild) and self.flags(r)["received"] == 0]
        step = rows[-1]
        ids = [r for r in (step.preferred, *step.alternatives) if self.viable(r, ild)]
        ranked = list(dict.fromkeys(self._rank(ids, o)[0] for o in self.ORDERINGS if ids))
        if not fresh:
            why.append("3+: everything above already given: the ranked later-line options")
            return Choice(ranked[0] if ranked else None, tuple(ranked), tuple(why))

        def demotions(r: str) -> tuple[int, ...]:
            return tuple(self.flags(r)[k] for k in ("failed", "unapproved", "tki"))

        best = min(demotions(r) for r in fresh)
        acceptable = [r for r in fresh if demotions(r) == best]
        expected = sorted(
            acceptable,
            key=lambda r: (
                self.flags(r)["cns"],
                self.kb.regimens[r].key_agents == ("pertuzumab",),  # limited evidence after 1L
                above.index(r),
            ),
        )[0]
        why.append("3+: a regimen not yet given (CLINICAL.md leaves their order open)")
        pertuzumab_only = all(self.kb.regimens[r].key_agents == ("pertuzumab",) for r in acceptable)
        if any(best) or pertuzumab_only:
            # Tolerance: the regimens not yet given are all demoted (TKI after TKI, not approved)
            # or only pertuzumab-based ("limited evidence" beyond first line): CLINICAL.md does
            # not say whether "not yet given" outranks those modifiers, so the ranked later-line
            # choice is accepted too.
            acceptable += [r for r in ranked if r not in acceptable]
            why.append(
                "3+: 'not yet given' conflicts with a modifier: ranked later-line choice accepted"
            )
        return Choice(expected, tuple(acceptable), tuple(why))


def cns_predominant(j: Journey) -> bool:
    active = [
        s
        for s in j.sites
        if s.status in ("active", "recurrence", "relapse") and s.verification == "confirmed"
    ]
    brain = [s for s in active if s.kind == "brain"]
    return bool(brain) and len(brain) == len(active)


def has_ild(j: Journey) -> bool:
    return any(
        e.kind.startswith("ild") and e.verification not in ("refuted", "entered-in-error")
        for e in j.events
    )


def _overlap(
    a_start: date, a_end: date | None, b_start: date, b_end: date | None, as_of: date
) -> tuple[date, date] | None:
    start = max(a_start, b_start)
    end = min(a_end or as_of, b_end or as_of)
    return (start, end) if start < end else None


def warnings(
    j: Journey, kb: Knowledge, chooser: Chooser, choice: Choice, no_ild: Choice
) -> tuple[dict[str, str], dict[str, str]]:
    """(required, optional) warning rules of CLINICAL.md section 4 for a patient-view, with why."""
    req: dict[str, str] = {}
    opt: dict[str, str] = {}
    current: Line | None = j.lines[-1] if j.lines and j.lines[-1].end is None else None
    last: Line | None = j.lines[-1] if j.lines else None
    cur = set(current.drugs) if current else set()
    ild = has_ild(j)

    def drugs_of(rid: str | None) -> set[str]:
        return set(kb.regimens[rid].regimen.drugs) if rid else set()

    if ild:
        if TDXD in cur:
            req["tdxd-ild"] = "ILD on record and T-DXd is active"
        elif no_ild.acceptable and all(TDXD in drugs_of(r) for r in no_ild.acceptable):
            req["tdxd-ild"] = "ILD on record and T-DXd would otherwise be preferred"
        elif any(TDXD in drugs_of(r) for r in no_ild.acceptable):
            opt["tdxd-ild"] = "T-DXd is one of the acceptable choices without ILD"
    if TDXD in cur:
        req["tdxd-ild-monitoring"] = "on T-DXd"
    # cardiac: latest LVEF against the first (baseline) one, heart failure
    lvef_hit = ""
    if j.lvef:
        base, latest = j.lvef[0][1], j.lvef[-1][1]
        lo = int(kb.param("cardiac", "lvef_low"))
        drop = int(kb.param("cardiac", "drop_absolute"))
        if latest < lo:
            lvef_hit = f"LVEF {latest}% under {lo}%"
        elif base - latest >= drop:
            lvef_hit = f"LVEF drop of {base - latest} points from baseline {base}%"
    hf = [
        e
        for e in j.events
        if e.kind in ("heart-failure", "hfref", "cardiomyopathy") and e.verification == "confirmed"
    ]
    if hf:
        lvef_hit = lvef_hit or "heart failure / cardiomyopathy on record"
    stale = bool(not hf and current is not None and j.lvef and j.lvef[-1][0] < current.start)
    if lvef_hit:
        if cur & CARDIAC_DRUGS and not stale:
            req["cardiac-lvef"] = f"{lvef_hit} while on {', '.join(sorted(cur & CARDIAC_DRUGS))}"
        else:
            # Tolerance: not on an antibody now, or the low value predates the current line
            # (CLINICAL.md does not say whether a value from before this line still counts)
            opt["cardiac-lvef"] = (
                f"{lvef_hit}; not on an antibody now, or measured before this line"
            )
    her2_now = {d for d in cur if kb.is_her2_directed(d)}
    due_days = int(kb.param("cardiac", "lvef_due_days"))
    overdue = not j.lvef or j.lvef[-1][0] < j.as_of - timedelta(days=due_days)
    if overdue:
        if her2_now:
            req["lvef-due"] = "on HER2-directed therapy, no LVEF in the last 3 months"
        else:
            opt["lvef-due"] = "no LVEF in the last 3 months; not on HER2-directed therapy now"
    anth = {d for d in cur if (kb.drug(d) and kb.drugs[d].family == "anthracycline")}
    tras = {d for d in cur if kb.drug(d) and kb.drugs[d].trastuzumab_containing}
    if anth and tras:
        req["anthracycline-concurrent"] = "anthracycline and trastuzumab in the current line"
    if current is not None and not her2_now:
        req["her2-blockade-stopped"] = "current line has no HER2-directed agent"
    elif (
        current is None and last is not None and not any(kb.is_her2_directed(d) for d in last.drugs)
    ):
        opt["her2-blockade-stopped"] = "last line had no HER2-directed agent (none running now)"
    status, specimen = her2_status(j)
    if status == "positive" and specimen != "metastatic":
        req["her2-status"] = "HER2 positive only from the primary tumour"
    prev = j.lines[-2] if len(j.lines) >= 2 else None
    if (
        current is not None
        and prev is not None
        and any(chooser._tki(d) for d in cur)
        and any(chooser._tki(d) for d in prev.drugs)
    ):
        req["tki-after-tki"] = "a TKI line follows a TKI line"
    elif (
        chooser.last_tki
        and choice.acceptable
        and all(kb.regimens[r].tki for r in choice.acceptable)
    ):
        req["tki-after-tki"] = "last line had a TKI and the next regimen is a TKI"
    elif chooser.last_tki:
        opt["tki-after-tki"] = "last line had a TKI (TKI regimens demoted)"
    if current is not None and j.hr_positive:
        chemo = [
            c
            for c in current.courses
            if kb.drug(c.drug) and kb.drugs[c.drug].drug_class == "chemotherapy"
        ]
        endo = [
            c
            for c in current.courses
            if kb.drug(c.drug) and kb.drugs[c.drug].drug_class == "endocrine"
        ]
        for a in chemo:
            for b in endo:
                if _overlap(a.start, a.end, b.start, b.end, j.as_of):
                    if a.end is None and b.end is None:
                        req["chemo-endocrine-concurrent"] = (
                            f"{a.drug} and {b.drug} running together"
                        )
                    else:
                        opt.setdefault(
                            "chemo-endocrine-concurrent",
                            f"{a.drug} and {b.drug} overlapped earlier in this line",
                        )
    return req, opt


def truth(
    j: Journey, seed: int, kb: Knowledge | None = None, jurisdiction: str = "FDA"
) -> dict[str, Any]:
    kb = kb or load_knowledge()
    status, specimen = her2_status(j)
    tolerances: list[str] = []
    outcome: str
    acceptable_outcomes: list[str] = []
    if j.cancer != "breast" or status == "negative":
        outcome = "none"
    elif j.metastatic_since is None:
        if j.stage:
            outcome = "none"
        else:
            outcome = "data-needed:metastatic-status"
            acceptable_outcomes = ["none"]
            tolerances.append(
                "HER2+ without any staging: CLINICAL.md asks to say what is missing, but no rule names metastatic status; no cards is accepted too"
            )
    elif status in ("unknown", "equivocal"):
        outcome = "data-needed:her2-status"
    else:
        outcome = "recommendation"
    out: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "knowledge_version": kb.version,
        "seed": seed,
        "patient_id": j.patient_id,
        "as_of": j.as_of.isoformat(),
        "kind": j.kind,
        "tags": j.tags,
        "cancer": j.cancer,
        "her2": {
            "status": status,
            "basis_specimen": specimen,
            "tests": [
                {
                    "date": t.when.isoformat(),
                    "method": t.method,
                    "result": t.result,
                    "specimen": t.specimen,
                }
                for t in j.her2_tests
            ],
        },
        "hr_positive": j.hr_positive,
        "metastatic": j.metastatic_since is not None,
        "metastatic_since": _iso(j.metastatic_since),
        "de_novo": j.de_novo,
        "sites": [
            {"site": s.kind, "onset": s.onset.isoformat(), "status": s.status} for s in j.sites
        ],
        "early_setting": [
            {"drug": c.drug, "start": c.start.isoformat(), "end": _iso(c.end)}
            for c in j.early
            if c.setting == "early"
        ],
        "lines": [
            {
                "number": ln.number,
                "plan": ln.plan,
                "start": ln.start.isoformat(),
                "end": _iso(ln.end),
                "drugs": ln.drugs,
                "ended_in_progression": ln.progression is not None,
                "stop_reason": ln.stop_reason,
                "deviation": ln.deviation,
            }
            for ln in j.lines
        ],
        "outcome": outcome,
        "acceptable_outcomes": acceptable_outcomes,
        "expected": None,
        "warnings": {"required": {}, "optional": {}},
        "tolerances": tolerances,
    }
    if j.cancer != "breast" or outcome == "none":
        return out
    chooser = Chooser(j, kb, jurisdiction)
    ild = has_ild(j)
    choice = chooser.choose(ild)
    no_ild = chooser.choose(False) if ild else choice
    req, opt = warnings(j, kb, chooser, choice, no_ild)
    if outcome != "recommendation":
        # no regimen is given without HER2 status; CLINICAL.md's her2-status warning and the
        # other warnings may or may not be shown beside the data-needed card
        opt.update(req)
        opt.setdefault("her2-status", "HER2 status missing or equivocal")
        req = {}
        tolerances.append("data-needed: warnings beside it are optional")
    else:
        current = j.lines[-1] if j.lines and j.lines[-1].end is None else None
        out["expected"] = {
            "line": len(j.lines) + 1,
            "timing": "on-progression" if current is not None else "now",
            "regimen": choice.expected,
            "acceptable_regimens": list(choice.acceptable),
            "prior_her2_lines": chooser.prior,
            "early_relapse": chooser.early_relapse,
            "relapse_months": chooser.relapse_months,
            "ild": ild,
            "cns_predominant": chooser.cns,
            "why": list(choice.why),
        }
        if len(choice.acceptable) > 1:
            tolerances.append(
                "regimen: "
                + ", ".join(choice.acceptable)
                + " (modifier order or 3+ 'not yet given' is open in CLINICAL.md)"
            )
    out["warnings"] = {"required": req, "optional": opt}
    return out
