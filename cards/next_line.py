"""The next-line card: the recommended regimen, why, the evidence, and one-click orders."""

from __future__ import annotations

from typing import Any

from cards.based_on import SourceGroup, based_on_extension, based_on_markdown, group_sources
from cards.common import (
    UuidFactory,
    compact,
    evidence_links,
    evidence_markdown,
    evidence_title,
    extension,
    line_status,
    override_reasons,
    shorten,
    source,
    timeline_link,
)
from cards.orders_fhir import create_actions
from engine.code_systems import OVERRIDE_SYSTEM
from engine.model import (
    Alert,
    Assessment,
    Coding,
    PatientRecord,
    ReceptorStatus,
    Recommendation,
    RegimenOption,
    TherapyLine,
)

# Why a clinician may reasonably choose another regimen than the one recommended.
NEXT_LINE_OVERRIDES = (
    Coding(OVERRIDE_SYSTEM, "clinical-trial", "Patient enrolling in a clinical trial"),
    Coding(OVERRIDE_SYSTEM, "patient-preference", "Patient preference after discussion"),
    Coding(OVERRIDE_SYSTEM, "contraindication-not-recorded", "Contraindication not in the record"),
    Coding(OVERRIDE_SYSTEM, "record-incomplete", "Treatment history in the record is incomplete"),
    Coding(OVERRIDE_SYSTEM, "not-available", "Regimen not available or not reimbursed here"),
)


# Critical rules that may speak of the recommended regimen rather than the current one.
_ABOUT_THE_NEXT_LINE = frozenset({"pregnancy-her2"})


def _dose_phrase(option: RegimenOption) -> str:
    comps = option.regimen.components
    if len(comps) == 1:
        c = comps[0]
        return f"{option.regimen.name} {c.dose} {c.schedule}"
    return option.regimen.name


def current_line(record: PatientRecord) -> TherapyLine | None:
    """The line being given now, if any (never a line that has ended)."""
    last = record.lines[-1] if record.lines else None
    return last if last is not None and line_status(last, record.as_of)[2] else None


def holding(assessment: Assessment) -> str:
    """ ", holding <drug> as the <card> card says" for each drug of the current line that a
    warning of this answer says to withhold ("" when none; the engine decides, cards word it)."""
    if current_line(assessment.record) is None:
        return ""
    parts = [f"holding {drugs} as the {card} card says" for drugs, card in assessment.holding]
    return f", {'; '.join(dict.fromkeys(parts))}" if parts else ""


def summary(
    rec: Recommendation, record: PatientRecord, problem: bool = False, held: str = ""
) -> str:
    """Under 140 characters, naming the line and the regimen. Never says "continue" a current
    regimen that a warning says is wrong, and says which drugs to hold when a warning says so."""
    current = current_line(record) or (record.lines[-1] if record.lines else None)
    if rec.timing == "on-progression" and current is not None and problem:
        text = (
            f"Review line {current.number} ({current.regimen_name}): see warning; "
            f"next: line {rec.line} {_dose_phrase(rec.preferred)}"
        )
    elif rec.timing == "on-progression" and current is not None:
        text = (
            f"Continue line {current.number} ({current.regimen_name}){held}; on progression: "
            f"line {rec.line} {_dose_phrase(rec.preferred)}"
        )
    else:
        text = f"Line {rec.line}: {_dose_phrase(rec.preferred)} recommended"
    return shorten(text)


def regimen_ext(option: RegimenOption) -> dict[str, Any]:
    return {
        "id": option.regimen.id,
        "name": option.regimen.name,
        "drugs": list(option.regimen.drugs),
        **({"approved": False} if not option.approved else {}),
    }


def timeline_table(record: PatientRecord) -> str:
    if not record.lines:
        return "_No metastatic lines of therapy recorded._"
    rows = ["| Line | Dates | Regimen | How it ended |", "|---|---|---|---|"]
    for ln in record.lines:
        dates, ended, _ = line_status(ln, record.as_of)
        rows.append(f"| {ln.number} | {dates} | {ln.regimen_name} | {ended} |")
    return "\n".join(rows)


def _option_line(option: RegimenOption) -> str:
    caveats = f" ({'; '.join(option.caveats)})" if option.caveats else ""
    if option.dose_notes:
        caveats += f" Orders: {'; '.join(option.dose_notes)}."
    trials = ", ".join(dict.fromkeys(evidence_title(ev) for ev in option.regimen.evidence))
    evidence = f" Evidence: {trials}." if trials else ""
    return f"**{option.regimen.name}**: {option.reason}{caveats}{evidence}"


# The her2-blockade-stopped variants that say drugs of the latest line stopped with no
# progression recorded (engine/lapse.py): their summary is the problem, and the line is
# reviewed, never "continued".
_LAPSE_VARIANTS = frozenset({"lapsed", "drug-stopped", "line-stopped", "partner-stopped"})
# The drug classes of drugs.yaml whose drugs are all HER2-directed (her2_directed: true).
_HER2_CLASSES = frozenset({"anti-her2-antibody", "anti-her2-adc", "her2-tki"})


def lapse_alert(assessment: Assessment) -> Alert | None:
    return next(
        (
            a
            for a in assessment.alerts
            if a.rule == "her2-blockade-stopped" and a.variant in _LAPSE_VARIANTS
        ),
        None,
    )


def held_all(assessment: Assessment) -> bool:
    """Whether the warnings hold every HER2-directed drug still given in the current line
    (then nothing of the line is given: "review", not "continue", second outside review N9)."""
    current = current_line(assessment.record)
    if current is None or not assessment.holding:
        return False
    held = {d.strip() for drugs, _ in assessment.holding for d in drugs.split(",")}
    given = set(current.current_drugs or current.drugs)
    classes = {e.drug: e.drug_class for e in assessment.record.exposures}
    her2 = {d for d in given if classes.get(d) in _HER2_CLASSES}
    return bool(held) and bool(her2) and her2 <= held


def current_regimen_problems(assessment: Assessment) -> list[str]:
    """Why the regimen given now is wrong, when it is: it drives the card's indicator.

    The current line lacking HER2 blockade, its HER2-directed drugs stopped with no reason
    recorded, every drug of it held, or any critical warning (e.g. T-DXd running with ILD on
    record), makes the next-line card a warning rather than information.
    """
    record = assessment.record
    problems: list[str] = []
    current = current_line(record)
    lapse = lapse_alert(assessment)
    # the engine's blockade warning judges the drugs still given (a line whose antibodies or
    # TKI stopped while its chemotherapy goes on has no HER2 blockade now)
    stopped = any(a.rule == "her2-blockade-stopped" for a in assessment.alerts)
    if lapse is not None:
        problems.append(f"{lapse.summary} (see the warning card).")
    elif current is not None and (stopped or not current.her2_directed):
        problems.append(
            f"The current line {current.number} ({current.regimen_name}) has no HER2-directed "
            "agent: HER2 blockade should continue in HER2-positive metastatic disease."
        )
    if held_all(assessment) and current is not None:
        drugs = "; ".join(f"{d} as the {card} card says" for d, card in assessment.holding)
        problems.append(
            f"Holding {drugs} leaves no HER2-directed drug of line {current.number} given: "
            f"review line {current.number} rather than continuing it."
        )
    # A warning about a recommended drug (pregnancy with an antibody/ADC recommended) is not a
    # problem of the current regimen when no HER2-directed line is running.
    on_her2 = current is not None and current.her2_directed
    problems += [
        a.summary
        for a in assessment.alerts
        if a.severity == "critical" and (on_her2 or a.rule not in _ABOUT_THE_NEXT_LINE)
    ]
    return problems


def hr_words(record: PatientRecord) -> str:
    """Hormone-receptor status as recorded: never "negative or unknown" for a missing result."""
    if record.hr_positive:
        return "positive"
    er, pr = record.er.status, record.pr.status
    if er is ReceptorStatus.UNKNOWN and pr is ReceptorStatus.UNKNOWN:
        return "not recorded"
    if er is ReceptorStatus.NEGATIVE and pr is ReceptorStatus.NEGATIVE:
        return "negative"

    def word(status: ReceptorStatus) -> str:
        return "not recorded" if status is ReceptorStatus.UNKNOWN else status.value

    return f"not positive (ER {word(er)}, PR {word(pr)})"


def sources(assessment: Assessment, rec: Recommendation) -> tuple[SourceGroup, ...]:
    """What the advice rests on: the HER2 result and every progression (they decide the line
    and its timing), then the recommendation's own sources."""
    record = assessment.record
    ids = (*record.her2.source_ids, *(p.source_id for p in record.progressions), *rec.source_ids)
    return group_sources(ids, record)


def detail(
    assessment: Assessment,
    rec: Recommendation,
    not_offered: list[tuple[RegimenOption, str]] | None = None,
    held: str = "",
    based_on: tuple[SourceGroup, ...] | None = None,
) -> str:
    record = assessment.record
    problems = current_regimen_problems(assessment)
    parts = []
    if problems:
        heading = "Current regimen needs attention" if current_line(record) else "Needs attention"
        parts += [f"### {heading}", *(f"- {p}" for p in problems), ""]
    if held and not held_all(assessment) and lapse_alert(assessment) is None:
        parts += [f"**Continue the current line{held}.**", ""]
    parts += [
        f"**Metastatic since** {record.metastatic_since.isoformat() if record.metastatic_since else 'unknown date'}"
        f" · **HER2** {record.her2.status.value}"
        f" · **HR** {hr_words(record)}",
        "",
        "### Therapy timeline",
        timeline_table(record),
        "",
        "### Why this regimen",
        *(f"- {r}" for r in rec.reasons),
        "",
        "### Recommended",
        f"- **{rec.preferred.regimen.name}**: "
        + "; ".join(
            f"{c.drug} {c.dose} {c.route} {c.schedule}" for c in rec.preferred.regimen.components
        ),
    ]
    if rec.preferred.regimen.course:
        parts.append(f"- Course: {rec.preferred.regimen.course}")
    if rec.preferred.caveats:
        parts.append(f"- Caveats: {'; '.join(rec.preferred.caveats)}")
    if rec.preferred.dose_notes:
        parts.append(f"- Orders: {'; '.join(rec.preferred.dose_notes)}")
    parts += ["", "### Evidence", evidence_markdown(rec.preferred.regimen.evidence)]
    if rec.early_relapse:
        months = rec.early_relapse_threshold_months
        threshold = f" (threshold {months:g} months)" if months is not None else ""
        parts.append(
            f"- Early relapse after (neo)adjuvant anti-HER2 therapy{threshold} counted as a line."
        )
    if rec.alternatives:
        parts += ["", "### Alternatives (ranked)"]
        parts += [f"{i}. {_option_line(o)}" for i, o in enumerate(rec.alternatives, 1)]
    if rec.excluded:
        parts += ["", "### Not offered"]
        names = dict(rec.regimen_names)
        parts += [f"- {names.get(rid, rid)}: {why}" for rid, why in rec.excluded]
    if not_offered and (rec.timing == "on-progression" or lapse_alert(assessment) is not None):
        first = " first find out why the drugs stopped (see the warning card);"
        ask = first if lapse_alert(assessment) is not None else ""
        parts += ["", "### No one-click order", f"- Not offered now:{ask} {not_offered[0][1]}."]
    elif not_offered:
        parts += ["", "### No one-click order"]
        parts += [
            f"- {o.regimen.name}: {why}."
            if o.not_orderable
            else f"- {o.regimen.name}: ordering it now would be flagged by the order checks "
            f"({why}); decide with the warning cards and order it by hand if still intended."
            for o, why in not_offered
        ]
    if rec.changes_advice:
        parts += ["", "### What would change this advice", *(f"- {c}" for c in rec.changes_advice)]
    groups = sources(assessment, rec) if based_on is None else based_on
    return "\n".join(parts) + based_on_markdown(groups)


def offered(assessment: Assessment) -> tuple[list[RegimenOption], list[tuple[RegimenOption, str]]]:
    """(options offered as one-click orders, (option, why not) for the others), as the engine
    judged them: an option whose orders our own order checks would flag is never one click away."""
    rec = assessment.recommendation
    if rec is None:
        return [], []
    options = (rec.preferred, *rec.alternatives)
    if assessment.offered is None:
        return list(options), []
    why = dict(assessment.not_offered)
    ok = [o for o in options if o.regimen.id in assessment.offered]
    not_ok = [(o, why[o.regimen.id]) for o in options if o.regimen.id in why]
    return ok, not_ok


def suggestions(
    rec: Recommendation,
    patient_id: str,
    uuids: UuidFactory,
    options: list[RegimenOption] | None = None,
) -> list[dict[str, Any]]:
    """One suggestion per offered regimen (one order per dose phase of each drug); only the
    preferred one is marked recommended."""
    out = []
    for option in (rec.preferred, *rec.alternatives) if options is None else options:
        preferred = option is rec.preferred
        label = f"Order {option.regimen.name}"
        if preferred:  # "(T-DM1, recommended)", not "(T-DM1) (recommended)"
            label = (
                label[:-1] + ", recommended)" if label.endswith(")") else label + " (recommended)"
            )
        out.append(
            {
                "label": shorten(label, 100),
                "uuid": uuids(f"suggestion:{option.regimen.id}"),
                **({"isRecommended": True} if preferred else {}),
                "actions": [
                    a for c in option.regimen.components for a in create_actions(c, patient_id)
                ],
            }
        )
    return out


def next_line_card(
    assessment: Assessment, uuids: UuidFactory, timeline_url: str | None = None
) -> dict[str, Any] | None:
    """The next-line card; `timeline_url` adds a link to the timeline view."""
    rec = assessment.recommendation
    if rec is None:
        return None
    version = assessment.knowledge_version
    evidence = list(rec.preferred.regimen.evidence)
    for alt in rec.alternatives:
        evidence.extend(alt.regimen.evidence)
    links = evidence_links(evidence)
    if timeline_url:
        links.append(timeline_link(timeline_url))
    problem = bool(current_regimen_problems(assessment))
    based_on = sources(assessment, rec)
    # A warning that forbids one-click orders (pregnancy-her2) leaves the text, not the orders.
    blocked = assessment.orders_blocked
    ok, not_ok = offered(assessment)
    if blocked:
        ok = []
    held = holding(assessment)
    current = current_line(assessment.record)
    text = detail(assessment, rec, not_ok, held, based_on)
    if blocked:
        text = f"**No one-click order is offered:** {blocked}.\n\n{text}"
    card = {
        "uuid": uuids("next-line"),
        "summary": summary(rec, assessment.record, problem, held),
        "detail": text,
        "indicator": "warning" if problem else "info",
        "source": source(version, "next-line", "Next line of therapy"),
        "suggestions": suggestions(rec, assessment.record.patient_id, uuids, ok),
        "selectionBehavior": "at-most-one" if ok else None,
        "overrideReasons": override_reasons(NEXT_LINE_OVERRIDES),
        "links": links,
        "extension": extension(
            "next-line",
            version,
            line=rec.line,
            timing=rec.timing,
            regimen=regimen_ext(rec.preferred),
            alternatives=[regimen_ext(o) for o in rec.alternatives],
            currentRegimenProblem=problem or None,
            basedOn=based_on_extension(based_on),
            currentLine=current.number if current else None,
            currentDrugs=list(current.drugs) if current else None,
            notOffered=[o.regimen.id for o, _ in not_ok] or None,
        ),
    }
    result: dict[str, Any] = compact(card)
    return result
