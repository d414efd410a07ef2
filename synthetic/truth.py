"""The answer file: what the generator knows about a journey, and what CLINICAL.md says follows.

Derived from the journey and CLINICAL.md's rules only, never by calling the engine (otherwise
agreement would be meaningless). The knowledge base is read as *data* (regimen drugs, key
agents, approvals, the guideline sequence rows, rule parameters); the choosing is done in
`synthetic.expected_regimen` (section 3) and `synthetic.expected_warnings` (section 4), and
this module assembles the answer file from them.

Where CLINICAL.md is genuinely ambiguous, the truth carries an acceptable set next to the
expected value, and each such tolerance says why (`tolerances`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.knowledge import Knowledge, load_knowledge
from synthetic.expected_regimen import (
    EARLY_RELAPSE_AGENTS,
    TDXD,
    Choice,
    Chooser,
    cns_predominant,
    has_ild,
)
from synthetic.expected_warnings import (
    CARDIAC_DRUGS,
    her2_discordance,
    her2_status,
    warnings,
)
from synthetic.journey import GENERATOR_VERSION, Journey
from synthetic.scope import line_facts, newest_data, scope, stale_borderline

# the names this module held before the split, still importable from here
__all__ = [
    "CARDIAC_DRUGS",
    "EARLY_RELAPSE_AGENTS",
    "TDXD",
    "Choice",
    "Chooser",
    "cns_predominant",
    "has_ild",
    "her2_status",
    "truth",
    "warnings",
]


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def truth(
    j: Journey, seed: int, kb: Knowledge | None = None, jurisdiction: str = "FDA"
) -> dict[str, Any]:
    kb = kb or load_knowledge()
    status, specimen = her2_status(j)
    discordant = her2_discordance(j)
    out_of_scope, stale = scope(j)
    tolerances: list[str] = []
    outcome: str
    acceptable_outcomes: list[str] = []
    if out_of_scope:
        outcome = "none"  # CLINICAL.md section 1: a deceased or under-18 patient gets no cards
    elif j.cancer != "breast" or (status == "negative" and discordant is None):
        outcome = "none"
        if stale and j.cancer == "breast":
            acceptable_outcomes = ["data-needed:*"]
            tolerances.append(
                "stale record of a patient out of scope anyway: a stale card is accepted"
            )
    elif j.metastatic_since is None:
        if j.stage:
            outcome = "none"
        else:
            outcome = "data-needed:metastatic-status"
            acceptable_outcomes = ["none"]
            tolerances.append(
                "HER2+ without any staging: CLINICAL.md asks to say what is missing, but no rule names metastatic status; no cards is accepted too"
            )
    elif stale:
        # CLINICAL.md section 1: a stale record gets no regimen and no one-click order, only a
        # data-needed card naming the date of the newest data
        outcome = "data-needed:stale-record"
        acceptable_outcomes = ["data-needed:*"]
        tolerances.append("stale record: CLINICAL.md names no id for its data-needed card")
    elif status in ("unknown", "equivocal"):
        outcome = "data-needed:her2-status"
        if stale_borderline(j):
            acceptable_outcomes = ["data-needed:*"]
    else:
        outcome = "recommendation"
        if stale_borderline(j):
            acceptable_outcomes = ["data-needed:*"]
            tolerances.append("newest data within a month of 18 months old: stale is accepted")
        if status == "negative":
            # discordance, HER2 lost on the metastasis: "guidelines consider HER2-directed
            # therapy when any specimen was positive" and tumour-board review (CLINICAL.md
            # section 1); whether the regimen is shown beside that card is left open
            acceptable_outcomes.append("cards-without-regimen")
            tolerances.append(
                "HER2 lost on a metastasis: a discordance card without a regimen is accepted"
            )
    out: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "knowledge_version": kb.version,
        "seed": seed,
        "patient_id": j.patient_id,
        "as_of": j.as_of.isoformat(),
        "kind": j.kind,
        "shape": j.shape,
        "scope": {
            "in_scope": not out_of_scope,
            "reason": out_of_scope or ("stale-record" if stale else ""),
            "age": j.age,
            "deceased": j.deceased_date.isoformat() if j.deceased_date else j.deceased,
            "newest_data": newest_data(j).isoformat(),
        },
        "tags": j.tags,
        "cancer": j.cancer,
        "her2": {
            "status": status,
            "basis_specimen": specimen,
            "discordance": list(discordant) if discordant else None,
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
                **line_facts(j, ln),
            }
            for ln in j.lines
        ],
        "outcome": outcome,
        "acceptable_outcomes": acceptable_outcomes,
        "expected": None,
        "warnings": {"required": {}, "optional": {}},
        "tolerances": tolerances,
    }
    if j.cancer != "breast" or outcome == "none" or stale:
        return out  # no cards, or only the stale record's data-needed card
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
            # CLINICAL.md section 3: an ongoing line without progression is continued
            "action": "continue" if current is not None else "start",
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
