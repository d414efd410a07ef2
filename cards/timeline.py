"""The therapy timeline as a self-contained HTML page with an inline SVG (no scripts, no fonts).

Drawn from the PatientRecord alone: lines of therapy as bars over time, the early (neo)adjuvant
setting, the metastatic date, progression events, ILD/pneumonitis and the LVEF series. Pure
rendering: every text is escaped, nothing is fetched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from html import escape

from cards.common import line_status
from cards.next_line import hr_words
from engine.model import PatientRecord, ReceptorAssessment

WIDTH = 1100
LEFT = 190  # room for the row labels
RIGHT = 30
ROW = 34
BAR = 20
LVEF_HEIGHT = 110
LVEF_LOW = 50.0  # the label's threshold, drawn as a reference line

COLOURS = {
    "her2": "#1f5fa8",
    "other": "#c77c12",
    "early": "#8a8f98",
    "progression": "#c0392b",
    "ild": "#7b3fa0",
    "metastatic": "#2d2d2d",
    "grid": "#e3e6ea",
    "text": "#1d232b",
    "muted": "#5b6472",
    "lvef": "#17803d",
}


@dataclass(frozen=True)
class _Scale:
    start: date
    end: date

    def x(self, day: date) -> float:
        span = max((self.end - self.start).days, 1)
        return LEFT + (WIDTH - LEFT - RIGHT) * (day - self.start).days / span


def _span(record: PatientRecord) -> _Scale:
    days: list[date] = [record.as_of]
    days += [d for d in (record.metastatic_since,) if d]
    for ln in record.lines:
        days += [ln.start, *([ln.end] if ln.end else [])]
    for ex in record.early_exposures:
        days += [ex.start, *([ex.end] if ex.end else [])]
    days += [p.date for p in record.progressions]
    days += [m.date for m in record.lvef]
    days += [c.onset for c in record.conditions_of("ild") if c.onset]
    start, end = min(days), max(days)
    pad = timedelta(days=max(30, (end - start).days // 25))
    return _Scale(start - pad, end + pad)


def _text(x: float, y: float, s: str, *, size: int = 12, anchor: str = "start", **kw: str) -> str:
    attrs = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in kw.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{attrs}>'
        f"{escape(s)}</text>"
    )


_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _axis(scale: _Scale, top: float, bottom: float) -> list[str]:
    """Grid lines and labels: yearly, half-yearly or monthly ticks by the span shown."""
    span_months = (scale.end - scale.start).days / 30.4
    months = (1,) if span_months > 96 else (1, 7) if span_months > 24 else tuple(range(1, 13))
    if len(months) == 12 and span_months > 12:
        months = (1, 4, 7, 10)
    out = []
    for year in range(scale.start.year, scale.end.year + 1):
        for month in months:
            day = date(year, month, 1)
            if not scale.start <= day <= scale.end:
                continue
            x = scale.x(day)
            out.append(
                f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
                f'stroke="{COLOURS["grid"]}"/>'
            )
            label = str(year) if month == 1 else f"{_MONTHS[month - 1]} {year}"
            out.append(
                _text(x, bottom + 16, label, size=11, anchor="middle", fill=COLOURS["muted"])
            )
    return out


def _marker_line(x: float, top: float, bottom: float, colour: str, label: str) -> list[str]:
    near_right = x > WIDTH - RIGHT - 170
    tx, anchor = (x - 4, "end") if near_right else (x + 4, "start")
    return [
        f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{colour}" '
        'stroke-width="2" stroke-dasharray="6 4"/>',
        _text(tx, top + 12, label, size=11, anchor=anchor, fill=colour, font_weight="bold"),
    ]


def _bar(scale: _Scale, y: float, start: date, end: date | None, as_of: date, colour: str) -> str:
    """A line as a bar; an ongoing one ends in an arrowhead at the as-of date."""
    x1 = scale.x(start)
    x2 = max(scale.x(end or as_of), x1 + 4)
    bar = (
        f'<rect x="{x1:.1f}" y="{y:.1f}" width="{x2 - x1:.1f}" height="{BAR}" rx="4" '
        f'fill="{colour}"/>'
    )
    if end is None:
        bar += (
            f'<path d="M{x2 - 2:.1f},{y - 3:.1f} L{x2 + 10:.1f},{y + BAR / 2:.1f} '
            f'L{x2 - 2:.1f},{y + BAR + 3:.1f} Z" fill="{colour}"/>'
        )
    return bar


def _label(scale: _Scale, y: float, start: date, end: date | None, as_of: date, s: str) -> str:
    """A bar's caption under it, kept inside the picture (right-aligned near the right edge)."""
    x1 = scale.x(start)
    x2 = max(scale.x(end or as_of), x1 + 4)
    width = 6.2 * len(s)
    if x1 + 6 + width <= WIDTH - RIGHT:
        return _text(x1 + 6, y, s, size=11, fill=COLOURS["muted"])
    return _text(min(x2, WIDTH - RIGHT), y, s, size=11, anchor="end", fill=COLOURS["muted"])


def _rows(record: PatientRecord, scale: _Scale, top: float) -> tuple[list[str], float]:
    out: list[str] = []
    y = top
    if record.early_exposures:
        first = min(e.start for e in record.early_exposures)
        ends = [e.end for e in record.early_exposures]
        last = None if any(e is None for e in ends) else max(e for e in ends if e)
        drugs = ", ".join(dict.fromkeys(e.drug for e in record.early_exposures))
        out.append(_text(10, y + 15, "Early setting", fill=COLOURS["text"], font_weight="bold"))
        out.append(_bar(scale, y, first, last, record.as_of, COLOURS["early"]))
        out.append(_label(scale, y + BAR + 12, first, last, record.as_of, drugs))
        y += ROW + 12
    for ln in record.lines:
        colour = COLOURS["her2"] if ln.her2_directed else COLOURS["other"]
        out.append(_text(10, y + 15, f"Line {ln.number}", fill=COLOURS["text"], font_weight="bold"))
        out.append(_bar(scale, y, ln.start, ln.end, record.as_of, colour))
        when, ended, running = line_status(ln, record.as_of)
        note = f"{ln.regimen_name} · {when}" + ("" if running else f" · ended: {ended}")
        out.append(_label(scale, y + BAR + 12, ln.start, ln.end, record.as_of, note))
        y += ROW + 12
    if not record.lines:
        out.append(_text(10, y + 15, "No metastatic lines recorded", fill=COLOURS["muted"]))
        y += ROW
    return out, y


def _events(record: PatientRecord, scale: _Scale, y: float) -> tuple[list[str], float]:
    """Progression (triangles) and ILD/pneumonitis (diamonds); close labels are staggered."""
    out = [_text(10, y + 15, "Events", fill=COLOURS["text"], font_weight="bold")]
    mid = y + 10
    events: list[tuple[date, str, str, str]] = [
        (p.date, "progression", f"progression {p.date.isoformat()}", "Progression")
        for p in record.progressions
    ]
    events += [
        (c.onset, "ild", f"ILD {c.onset.isoformat()}", c.display or "ILD")
        for c in record.conditions_of("ild")
        if c.onset is not None
    ]
    events.sort()
    last_x = -1e9
    level = 0
    for day, kind, label, title in events:
        x = scale.x(day)
        colour = COLOURS[kind]
        tip = f"<title>{escape(title)} {day.isoformat()}</title>"
        if kind == "progression":
            out.append(
                f'<path d="M{x:.1f},{mid - 8:.1f} L{x + 7:.1f},{mid + 6:.1f} '
                f'L{x - 7:.1f},{mid + 6:.1f} Z" fill="{colour}">{tip}</path>'
            )
        else:
            out.append(
                f'<rect x="{x - 6:.1f}" y="{mid - 6:.1f}" width="12" height="12" '
                f'transform="rotate(45 {x:.1f} {mid:.1f})" fill="{colour}">{tip}</rect>'
            )
        level = (level + 1) % 3 if x - last_x < 130 else 0
        last_x = x
        out.append(_text(x, mid + 20 + 12 * level, label, size=10, anchor="middle", fill=colour))
    return out, y + ROW + 34


def _lvef(record: PatientRecord, scale: _Scale, y: float) -> tuple[list[str], float]:
    out = [_text(10, y + 15, "LVEF (%)", fill=COLOURS["text"], font_weight="bold")]
    if not record.lvef:
        out.append(_text(LEFT, y + 15, "no LVEF recorded", size=11, fill=COLOURS["muted"]))
        return out, y + ROW

    def yv(value: float) -> float:
        clamped = min(max(value, 20.0), 80.0)
        return y + LVEF_HEIGHT - 10 - (clamped - 20.0) / 60.0 * (LVEF_HEIGHT - 20)

    ref = yv(LVEF_LOW)
    out.append(
        f'<line x1="{LEFT}" y1="{ref:.1f}" x2="{WIDTH - RIGHT}" y2="{ref:.1f}" '
        f'stroke="{COLOURS["progression"]}" stroke-dasharray="3 3"/>'
    )
    out.append(_text(LEFT - 6, ref + 4, "50%", size=10, anchor="end", fill=COLOURS["progression"]))
    points = sorted(record.lvef, key=lambda m: m.date)
    if len(points) > 1:
        path = " ".join(f"{scale.x(m.date):.1f},{yv(m.value):.1f}" for m in points)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{COLOURS["lvef"]}" stroke-width="2"/>'
        )
    for m in points:
        colour = COLOURS["progression"] if m.value < LVEF_LOW else COLOURS["lvef"]
        x, yy = scale.x(m.date), yv(m.value)
        out.append(
            f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="5" fill="{colour}">'
            f"<title>LVEF {m.value:g}% on {m.date.isoformat()}</title></circle>"
        )
        out.append(_text(x + 8, yy - 6, f"{m.value:g}%", size=10, fill=colour))
    return out, y + LVEF_HEIGHT


def timeline_svg(record: PatientRecord) -> str:
    """The SVG picture of one patient's treatment over time."""
    scale = _span(record)
    top = 20.0
    rows, y = _rows(record, scale, top + 10)
    events, y = _events(record, scale, y)
    lvef, y = _lvef(record, scale, y)
    bottom = y + 4
    body: list[str] = _axis(scale, top, bottom)
    if record.metastatic_since:
        body += _marker_line(
            scale.x(record.metastatic_since),
            top - 14,
            bottom,
            COLOURS["metastatic"],
            f"metastatic {record.metastatic_since.isoformat()}",
        )
    body += _marker_line(
        scale.x(record.as_of),
        top - 14,
        bottom,
        COLOURS["muted"],
        f"as of {record.as_of.isoformat()}",
    )
    body += rows + events + lvef
    height = bottom + 30
    label = f"Therapy timeline for patient {record.patient_id}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
        f'width="{WIDTH}" height="{height:.0f}" viewBox="0 0 {WIDTH} {height:.0f}" '
        'font-family="sans-serif">'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


_LEGEND = (
    ("her2", "HER2-directed line"),
    ("other", "line without HER2-directed agent"),
    ("early", "early (neo)adjuvant setting"),
    ("progression", "progression / LVEF under 50%"),
    ("ild", "ILD / pneumonitis"),
    ("lvef", "LVEF"),
)


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


def timeline_page(record: PatientRecord, knowledge_version: str) -> str:
    """A complete HTML page (inline CSS and SVG only) for the timeline view."""
    her2 = record.her2.status.value
    hr = hr_words(record)  # as recorded: positive, negative, or "not recorded"
    meta = record.metastatic_since.isoformat() if record.metastatic_since else "not recorded"
    legend = "".join(
        f'<li><span class="sw" style="background:{COLOURS[k]}"></span>{escape(v)}</li>'
        for k, v in _LEGEND
    )
    rows = "".join(
        f"<tr><td>{ln.number}</td><td>{escape(ln.regimen_name)}</td>"
        f"<td>{escape(dates)}</td><td>{escape(ended)}</td></tr>"
        for ln in record.lines
        for dates, ended, _ in (line_status(ln, record.as_of),)
    )
    table = (
        "<table><thead><tr><th>Line</th><th>Regimen</th><th>Dates</th>"
        f"<th>How it ended</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else "<p>No metastatic lines of therapy recorded.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Therapy timeline · {escape(record.patient_id)}</title>
<style>
body{{font-family:sans-serif;color:{COLOURS["text"]};margin:16px 20px;}}
h1{{font-size:20px;margin:0 0 4px}} .facts{{color:{COLOURS["muted"]};margin:0 0 10px}}
ul.legend{{list-style:none;padding:0;margin:8px 0;display:flex;flex-wrap:wrap;gap:16px;font-size:13px}}
.sw{{display:inline-block;width:12px;height:12px;margin-right:6px;border-radius:2px;vertical-align:-1px}}
table{{border-collapse:collapse;font-size:13px;margin-top:10px}}
th,td{{border:1px solid {COLOURS["grid"]};padding:3px 8px;text-align:left}}
footer{{color:{COLOURS["muted"]};font-size:12px;margin-top:10px}}
</style></head><body>
<h1>Therapy timeline · patient {escape(record.patient_id)}</h1>
<p class="facts">HER2 {escape(her2)} · HR {hr} · metastatic since {meta} · as of {record.as_of.isoformat()}</p>
{timeline_svg(record)}
<ul class="legend">{legend}</ul>
{table}
<footer>HER2 next-line CDS · knowledge {escape(knowledge_version)} · decision support, not a substitute for clinical judgement</footer>
</body></html>
"""
