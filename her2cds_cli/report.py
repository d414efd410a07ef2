"""Readable terminal text for `her2-cds evaluate`: the picture, the timeline and the cards."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.model import Assessment, PatientRecord, ReceptorAssessment, ReceptorStatus

_LABELS = {"ild": "ILD/pneumon.", "heart-failure": "Heart failure"}


def describe(assessment: Assessment, cards: list[dict[str, Any]], source: str = "") -> str:
    r = assessment.record
    out = [f"Patient {r.patient_id}" + (f"  ({source})" if source else ""), ""]
    out.extend(_scope(assessment))
    if not r.has_breast_cancer:
        out.append("  No breast cancer on record: no cards.")
        return "\n".join(out) + "\n"
    her2 = r.her2
    basis = ""
    if her2.basis is not None:
        when = her2.basis.date.isoformat() if her2.basis.date else "undated"
        basis = f" ({her2.basis.method}, {when}, {her2.basis.source_id})"
    out.append(f"  HER2           {her2.status.value}{basis}")
    if her2.basis is not None and her2.basis.specimen.value != "unknown":
        out.append(f"  HER2 specimen  {her2.basis.specimen.value}")
    if her2.conflicts:
        out.append(f"  HER2 conflicts {_results(her2)}")
    hr = _hr(r)
    out.append(f"  ER / PR        {r.er.status.value} / {r.pr.status.value}  ({hr})")
    out.append(
        "  Metastatic     "
        + (
            f"since {r.metastatic_since.isoformat()}"
            if r.metastatic_since
            else (
                "yes (undated)"
                if r.metastatic
                else "no"
                + (
                    f" (non-metastatic staging recorded: {len(r.non_metastatic_staging_ids)})"
                    if r.non_metastatic_staging_ids
                    else ""
                )
            )
        )
    )
    sites = sorted({m.site for m in r.metastases if m.site})
    if sites:
        brain = ""
        if "brain" in sites:
            brain = (
                "  (brain metastases active)"
                if r.active_brain_metastases
                else "  (brain: inactive)"
            )
        out.append(f"  Sites          {', '.join(sites)}{brain}")
    risks = sorted({c.concept for c in r.conditions if c.concept != "brain-metastasis"})
    for concept in risks:
        facts = r.conditions_of(concept)
        since = min((c.onset for c in facts if c.onset), default=None)
        out.append(
            f"  {_LABELS.get(concept, concept):<14} yes"
            + (f" (since {since.isoformat()})" if since else "")
            + f", {', '.join(c.source_id for c in facts[:3])}"
        )
    if r.lvef:
        out.append(
            "  LVEF           "
            + ", ".join(f"{m.value:g}% ({m.date.isoformat()})" for m in r.lvef[-6:])
            + (f"  [{len(r.lvef)} in all]" if len(r.lvef) > 6 else "")
        )
    if r.early_exposures:
        drugs = sorted({e.drug for e in r.early_exposures})
        last = r.early_setting_end or max((e.end for e in r.early_exposures if e.end), default=None)
        out.append(
            f"  Early setting  {', '.join(drugs)}" + (f" (to {last.isoformat()})" if last else "")
        )
    out.append("")
    out.append("  Lines of therapy (metastatic)")
    if not r.lines:
        out.append("    none recorded")
    for ln in r.lines:
        end = ln.end.isoformat() if ln.end else "ongoing"
        how = "progression" if ln.ended_in_progression else (ln.stop_reason or "")
        out.append(f"    {ln.number}. {ln.start.isoformat()} → {end:<10}  {ln.regimen_name}")
        if ln.start_reason:
            out.append(f"       started: {ln.start_reason}")
        out.append(f"       drugs: {', '.join(ln.drugs)}  ({len(ln.source_ids)} resources)")
        if how and not ln.ongoing:
            out.append(f"       ended: {how}")
    if r.progressions:
        out.append("  Progression    " + ", ".join(p.date.isoformat() for p in r.progressions))
    out.append("")
    out.extend(_timeline(r))
    if not assessment.in_scope:
        out.append(f"  Out of scope: {assessment.out_of_scope_reason}. No cards.")
    out.append(f"  Cards ({len(cards)})")
    for card in cards:
        out.append(f"    [{card['indicator']:<8}] {card['summary']}")
    if r.data_issues:
        out.append("")
        out.append(f"  Data issues ({len(r.data_issues)})")
        for issue in r.data_issues[:10]:
            out.append(f"    {issue.source_id}: {issue.message}")
    return "\n".join(out) + "\n"


def _hr(r: PatientRecord) -> str:
    """HR status as recorded, never "negative or unknown" (CLINICAL.md section 1)."""
    if r.hr_positive:
        return "HR-positive"
    missing = [n for n, a in (("ER", r.er), ("PR", r.pr)) if a.status is ReceptorStatus.UNKNOWN]
    if not missing:
        return "HR-negative"
    if len(missing) == 2:
        return "HR not recorded"
    return f"not HR-positive; {missing[0]} not recorded"


def _scope(assessment: Assessment) -> list[str]:
    """Why a patient gets no (or only one) card, with the Patient facts that decide it;
    nothing for a patient in scope."""
    r = assessment.record
    if not (assessment.out_of_scope_reason or assessment.orders_blocked):
        return []
    born = r.birth_date.isoformat() if r.birth_date else "unknown"
    died = (
        f"deceased{' ' + r.deceased_date.isoformat() if r.deceased_date else ''}"
        if r.deceased
        else "alive"
    )
    newest = r.newest_data_date.isoformat() if r.newest_data_date else "none dated"
    out = [f"  Patient        born {born}, {died}; newest clinical data {newest}"]
    if assessment.stale_record:
        out.append(f"  Scope          {assessment.out_of_scope_reason}: data-needed card only.")
    elif not assessment.in_scope and assessment.out_of_scope_reason:
        out.append(f"  Out of scope   {assessment.out_of_scope_reason}. No cards.")
    if assessment.orders_blocked:
        out.append(f"  Orders blocked {assessment.orders_blocked}")
    return [*out, ""]


def _results(assessment: ReceptorAssessment) -> str:
    return ", ".join(
        f"{c.status.value} {c.method} {c.date.isoformat() if c.date else 'undated'} ({c.source_id})"
        for c in assessment.conflicts
    )


def _timeline(r: PatientRecord) -> list[str]:
    """The picture in date order: diagnosis, metastasis, early therapy, lines, progression."""
    events: list[tuple[date, int, str]] = []
    for c in r.breast_cancer[:1]:
        if c.onset:
            events.append((c.onset, 0, f"breast cancer diagnosed ({c.source_id})"))
    for e in r.early_exposures:
        events.append((e.start, 1, f"early setting: {e.drug} starts"))
    if r.early_setting_end:
        events.append((r.early_setting_end, 2, "early-setting therapy ends"))
    if r.metastatic_since:
        n = len(r.metastatic_source_ids)
        events.append((r.metastatic_since, 3, f"metastatic disease ({n} source(s))"))
    for ln in r.lines:
        events.append((ln.start, 5, f"line {ln.number} starts: {', '.join(ln.drugs)}"))
        if ln.end is not None:
            events.append((ln.end, 6, f"line {ln.number} ends"))
    for p in r.progressions:
        events.append((p.date, 4, f"progression: {p.basis or 'documented'} ({p.source_id})"))
    for c in r.conditions:
        if c.onset and c.concept in ("ild", "heart-failure"):
            events.append((c.onset, 7, f"{c.concept}: {c.display or c.concept}"))
    if not events:
        return []
    out = ["  Timeline"]
    for when, _, what in sorted(events):
        out.append(f"    {when.isoformat()}  {what}")
    out.append("")
    return out
