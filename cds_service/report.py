"""Readable terminal text for `her2-cds evaluate`: the picture, the timeline and the cards."""

from __future__ import annotations

from typing import Any

from engine.model import Assessment


def describe(assessment: Assessment, cards: list[dict[str, Any]], source: str = "") -> str:
    r = assessment.record
    out = [f"Patient {r.patient_id}" + (f"  ({source})" if source else ""), ""]
    if not r.has_breast_cancer:
        out.append("  No breast cancer on record: no cards.")
        return "\n".join(out) + "\n"
    her2 = r.her2
    basis = ""
    if her2.basis is not None:
        when = her2.basis.date.isoformat() if her2.basis.date else "undated"
        basis = f" ({her2.basis.method}, {when}, {her2.basis.source_id})"
    out.append(f"  HER2           {her2.status.value}{basis}")
    if her2.conflicts:
        out.append(f"  HER2 conflicts {', '.join(c.source_id for c in her2.conflicts)}")
    out.append(f"  ER / PR        {r.er.status.value} / {r.pr.status.value}")
    out.append(
        "  Metastatic     "
        + (
            f"since {r.metastatic_since.isoformat()}"
            if r.metastatic_since
            else ("yes (undated)" if r.metastatic else "no")
        )
    )
    sites = sorted({m.site for m in r.metastases if m.site})
    if sites:
        out.append(f"  Sites          {', '.join(sites)}")
    risks = sorted({c.concept for c in r.conditions})
    if risks:
        out.append(f"  Risks          {', '.join(risks)}")
    if r.lvef:
        out.append(
            "  LVEF           "
            + ", ".join(f"{m.value:g}% ({m.date.isoformat()})" for m in r.lvef[-4:])
        )
    if r.early_exposures:
        drugs = sorted({e.drug for e in r.early_exposures})
        last = max((e.end for e in r.early_exposures if e.end), default=None)
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
        if how and not ln.ongoing:
            out.append(f"       ended: {how}")
    if r.progressions:
        out.append("  Progression    " + ", ".join(p.date.isoformat() for p in r.progressions))
    out.append("")
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
