"""The therapy timeline as a self-contained HTML page with inline SVG (no scripts, no fonts).

Drawn from the PatientRecord alone: lines of therapy as bars over time, the early (neo)adjuvant
setting, the metastatic date, progression events, ILD/pneumonitis and the LVEF series against
the knowledge base's thresholds. The picture is laid out for several widths
(cards/timeline_svg.py) and CSS shows the one that fits, so text keeps its size from 360 px to
a wide screen and nothing scrolls sideways; print shows one laid out for A4 portrait. Every
event and measurement is also listed in a table (screen readers, print, hover-only details).
Pure rendering: every text is escaped, nothing is fetched.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape
from itertools import pairwise

from cards.common import line_status
from cards.next_line import hr_words
from cards.timeline_layout import lvef_points, merge_events
from cards.timeline_svg import COLOURS, NARROW, Threshold, timeline_svg
from engine.knowledge import Knowledge, load_knowledge
from engine.model import PatientRecord, ReceptorAssessment

# Drawing widths (px) and the narrowest page (viewport) each is shown on: the page's side
# margins plus room for a scrollbar (GAP), so a picture is never scaled below its own width.
WIDTHS = (300, 440, 600, 740, 960, 1240)
GAP = 40
PRINT_WIDTH = 600  # A4 portrait less 12 mm margins is about 700 CSS px


def timeline_record(record: PatientRecord) -> PatientRecord:
    """The part of a record the page draws (the page of it is the page of the record): what the
    service keeps behind a card's timeline link, small enough to store on every hook call."""
    return PatientRecord(
        patient_id=record.patient_id,
        as_of=record.as_of,
        her2=ReceptorAssessment(status=record.her2.status),
        er=ReceptorAssessment(status=record.er.status),
        pr=ReceptorAssessment(status=record.pr.status),
        metastatic_since=record.metastatic_since,
        conditions=record.conditions_of("ild"),
        lvef=record.lvef,
        progressions=record.progressions,
        # lines list every resource they were read from (hundreds on long records): not drawn
        early_exposures=tuple(replace(e, source_ids=()) for e in record.early_exposures),
        lines=tuple(replace(ln, source_ids=(), progression_ids=()) for ln in record.lines),
    )


def thresholds(kb: Knowledge) -> list[Threshold]:
    """The LVEF reference lines: the values the cardiac rules use (parameters.yaml cardiac)."""
    low = float(kb.param("cardiac", "lvef_low"))
    critical = float(kb.param("cardiac", "lvef_critical"))
    return [
        Threshold(
            low,
            f"{low:g}%: lower limit of normal in the cardiac label rules",
            COLOURS["progression"],
        ),
        Threshold(
            critical,
            f"{critical:g}%: under it, critical for every HER2-directed drug",
            COLOURS["critical"],
        ),
    ]


def _css() -> str:
    """Show the one picture drawn for the width at hand (screen), the A4 one in print."""
    shown = [f".tl.w{WIDTHS[0]}{{display:block}}"]
    for prev, width in pairwise(WIDTHS):
        shown.append(
            f"@media screen and (min-width:{width + GAP}px)"
            f"{{.tl.w{prev}{{display:none}}.tl.w{width}{{display:block}}}}"
        )
    return f"""
body{{font-family:sans-serif;color:{COLOURS["text"]};background:#fff;margin:12px;overflow-wrap:break-word}}
h1,td[data-label="Records"]{{overflow-wrap:anywhere}} .nw{{white-space:nowrap}}
h1{{font-size:20px;margin:0 0 4px}} h2{{font-size:16px;margin:16px 0 4px}}
.facts{{color:{COLOURS["muted"]};margin:0 0 10px}}
figure{{margin:0}} svg.tl{{display:none;width:100%;height:auto;max-width:{int(WIDTHS[-1] * 1.3)}px}}
svg.tl text{{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}}
{"".join(shown)}
ul.legend{{list-style:none;padding:0;margin:8px 0;display:flex;flex-wrap:wrap;gap:6px 16px;font-size:13px}}
.sw{{display:inline-block;width:12px;height:12px;margin-right:6px;border-radius:2px;vertical-align:-1px}}
table{{border-collapse:collapse;font-size:13px;margin-top:6px;max-width:100%}}
th,td{{border:1px solid {COLOURS["grid"]};padding:3px 8px;text-align:left;vertical-align:top}}
@media screen and (max-width:{NARROW - 1}px){{
table.stack,table.stack tbody,table.stack tr,table.stack td{{display:block;width:auto}}
table.stack thead{{display:none}} table.stack tr{{border:1px solid {COLOURS["grid"]};margin:0 0 6px;padding:2px 0}}
table.stack td{{border:0;padding:1px 8px}} table.stack td::before{{content:attr(data-label) ": ";font-weight:bold}}
}}
footer{{color:{COLOURS["muted"]};font-size:12px;margin-top:10px}}
@page{{size:A4 portrait;margin:12mm}}
@media print{{
body{{margin:0;color:#000;font-size:12px}} *{{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
svg.tl{{display:none!important}} svg.tl.w{PRINT_WIDTH}{{display:block!important;max-width:100%}}
figure{{break-inside:avoid}} tr{{break-inside:avoid}} table{{font-size:11px;width:100%}}
}}
"""


def _events_table(record: PatientRecord, low: float) -> str:
    """Every event and LVEF value with its records: what the picture shows only on hover."""
    rows: list[tuple[str, str, str, str]] = []
    for ev in merge_events(record):
        said = "; ".join(dict.fromkeys(what for _, what in ev.sources))
        ids = ", ".join(sid for sid, _ in ev.sources if sid)
        rows.append((ev.day.isoformat(), ev.name, said, ids))
    for p in lvef_points(record.lvef):
        flag = f" (under {low:g}%)" if p.value < low else ""
        rows.append((p.day.isoformat(), "LVEF", f"{p.value:g}%{flag}", ", ".join(p.source_ids)))
    if not rows:
        return "<p>No progression, ILD/pneumonitis or LVEF recorded.</p>"
    return _table(("Date", "Event", "What the record says", "Records"), sorted(rows))


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A table that becomes one block per row on narrow screens (each cell names its column)."""
    body = "".join(
        "<tr>"
        + "".join(f'<td data-label="{h}">{escape(c)}</td>' for h, c in zip(head, row, strict=True))
        + "</tr>"
        for row in rows
    )
    th = "".join(f"<th>{h}</th>" for h in head)
    return f'<table class="stack"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _desc(record: PatientRecord) -> str:
    """The picture in one paragraph (the SVG's desc)."""
    parts = [f"As of {record.as_of.isoformat()}."]
    if record.metastatic_since:
        parts.append(f"Metastatic since {record.metastatic_since.isoformat()}.")
    for ln in record.lines:
        when, ended, running = line_status(ln, record.as_of)
        parts.append(
            f"Line {ln.number}: {ln.regimen_name}, {when}"
            + ("." if running else f", ended: {ended}.")
        )
    events = merge_events(record)
    if events:
        parts.append("Events: " + ", ".join(ev.label for ev in events) + ".")
    points = lvef_points(record.lvef)
    if points:
        lowest = min(points, key=lambda p: p.value)
        parts.append(
            f"LVEF: {len(points)} values from {points[0].day.isoformat()} to "
            f"{points[-1].day.isoformat()}, latest {points[-1].value:g}%, lowest "
            f"{lowest.value:g}% on {lowest.day.isoformat()}."
        )
    return " ".join(parts)


def timeline_page(
    record: PatientRecord, knowledge_version: str, *, knowledge: Knowledge | None = None
) -> str:
    """A complete HTML page (inline CSS and SVG only) for the timeline view."""
    lines = thresholds(knowledge or load_knowledge())
    low = lines[0].value
    her2 = record.her2.status.value
    hr = hr_words(record)  # as recorded: positive, negative, or "not recorded"
    meta = record.metastatic_since.isoformat() if record.metastatic_since else "not recorded"
    legend_items = (
        ("her2", "HER2-directed line"),
        ("other", "line without HER2-directed agent"),
        ("early", "early (neo)adjuvant setting"),
        ("progression", f"progression / LVEF under {low:g}%"),
        ("ild", "ILD / pneumonitis"),
        ("lvef", "LVEF"),
    )
    legend = "".join(
        f'<li><span class="sw" style="background:{COLOURS[k]}"></span>{escape(v)}</li>'
        for k, v in legend_items
    ) + "".join(
        f'<li><span class="sw" style="background:{t.colour}"></span>{escape(t.title)}</li>'
        for t in lines
    )
    table = (
        _table(
            ("Line", "Regimen", "Dates", "How it ended"),
            [
                (str(ln.number), ln.regimen_name, dates, ended)
                for ln in record.lines
                for dates, ended, _ in (line_status(ln, record.as_of),)
            ],
        )
        if record.lines
        else "<p>No metastatic lines of therapy recorded.</p>"
    )
    desc = _desc(record)
    pictures = "".join(
        timeline_svg(record, width, lines, uid=f"tl{width}", desc=desc) for width in WIDTHS
    )
    pid = escape(record.patient_id)
    facts = " · ".join(
        f'<span class="nw">{escape(f)}</span>'
        for f in (f"HER2 {her2}", f"HR {hr}", f"metastatic since {meta}", f"as of {record.as_of}")
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Therapy timeline · {pid}</title>
<style>{_css()}</style></head><body>
<h1>Therapy timeline · patient {pid}</h1>
<p class="facts">{facts}</p>
<figure>{pictures}</figure>
<ul class="legend">{legend}</ul>
<h2>Lines of therapy</h2>
{table}
<h2>Events and LVEF</h2>
{_events_table(record, low)}
<footer>HER2 next-line CDS · knowledge {escape(knowledge_version)} · decision support, not a substitute for clinical judgement</footer>
</body></html>
"""
