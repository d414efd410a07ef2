"""One timeline picture (SVG) laid out for one width: rows of therapy, events, LVEF, time axis.

Every text is escaped; labels are placed by their estimated boxes (cards/timeline_layout.py) so
that none overlaps another, no regimen label crosses the dashed metastatic line, and no font is
under 11 px at the width the picture is drawn for (the page scales it up, never down).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

from cards.common import line_status
from cards.timeline_layout import (
    Box,
    centred,
    first_free,
    lanes,
    lvef_labelled,
    lvef_points,
    merge_events,
    text_width,
    wrap,
)
from engine.model import PatientRecord

NARROW = 600  # below this drawing width, row titles go above their rows
BAR = 16
SIZE = 11  # label font size; titles are 12 bold
LINE = 13  # distance between the lines of a wrapped label (a line's box is 12.8 px at 11 px)
LANE = 15  # distance between lanes of event labels
LVEF_HEIGHT = 120

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
    "critical": "#8e1b10",
}
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass(frozen=True)
class Threshold:
    """A reference line of the LVEF chart, from the knowledge base."""

    value: float
    title: str  # what it is and where it comes from (hover, table)
    colour: str


@dataclass(frozen=True)
class _Scale:
    start: date
    end: date
    left: float
    right: float

    def x(self, day: date) -> float:
        span = max((self.end - self.start).days, 1)
        return self.left + (self.right - self.left) * (day - self.start).days / span


def _span(record: PatientRecord, left: float, right: float) -> _Scale:
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
    return _Scale(start - pad, end + pad, left, right)


def _text(
    x: float,
    y: float,
    s: str | Sequence[str],
    *,
    size: int = SIZE,
    anchor: str = "start",
    fill: str = COLOURS["muted"],
    bold: bool = False,
    cls: str = "",
) -> str:
    """A text element; a sequence of strings is drawn as lines one under the other."""
    lines = [s] if isinstance(s, str) else list(s)
    body = escape(lines[0]) + "".join(
        f'<tspan x="{x:.1f}" dy="{LINE}">{escape(line)}</tspan>' for line in lines[1:]
    )
    extra = (' font-weight="bold"' if bold else "") + (f' class="{cls}"' if cls else "")
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}"{extra}>{body}</text>'
    )


def _on_step(year: int, month: int, step: int) -> bool:
    """Whether the first of this month gets a tick when ticks are `step` months apart."""
    if step < 12:
        return (month - 1) % step == 0
    return month == 1 and year % (step // 12) == 0


class _Picture:
    def __init__(self, record: PatientRecord, width: int, thresholds: Sequence[Threshold]):
        self.r = record
        self.width = width
        self.narrow = width < NARROW
        self.left = 40.0 if self.narrow else 118.0
        self.right = width - 16.0  # room for the arrowhead of an ongoing line
        self.scale = _span(record, self.left, self.right)
        self.thresholds = sorted(thresholds, key=lambda t: -t.value)
        meta = record.metastatic_since
        self.meta_x = self.scale.x(meta) if meta else None
        self.back: list[str] = []  # grid and marker lines, drawn first
        self.front: list[str] = []
        self._marks: list[tuple[float, str, str, str, float, float]] = []

    # ---------------------------------------------------------------- rows of therapy
    def _title(self, y: float, s: str) -> float:
        """A row's title: left of the row (wide) or above it (narrow); the row's top."""
        if self.narrow:
            self.front.append(_text(4, y + 12, s, size=12, fill=COLOURS["text"], bold=True))
            return y + 18
        self.front.append(_text(8, y + 13, s, size=12, fill=COLOURS["text"], bold=True))
        return y

    def _side(self, x1: float) -> tuple[float, float]:
        """Where a bar's caption may go: the side of the metastatic line its bar starts on
        (the other side when that one is too narrow for a caption)."""
        if self.meta_x is None:
            return self.left, self.right
        before, after = (self.left, self.meta_x - 5), (self.meta_x + 5, self.right)
        own, other = (after, before) if x1 >= self.meta_x - 0.5 else (before, after)
        if own[1] - own[0] < 60 and other[1] - other[0] > own[1] - own[0]:
            return other
        return own

    def _row(
        self, y: float, title: str, span: tuple[date, date | None], colour: str, parts: list[str]
    ) -> tuple[float, str]:
        if self.narrow and title.startswith("Line"):  # no title column: the caption names it
            parts, y = [f"{title}: {parts[0]}", *parts[1:]], y + 6
        else:
            y = self._title(y, title)
        start, end = span
        x1 = self.scale.x(start)
        x2 = max(self.scale.x(end or self.r.as_of), x1 + 4)
        bar = (
            f'<rect x="{x1:.1f}" y="{y:.1f}" width="{x2 - x1:.1f}" height="{BAR}" rx="4" '
            f'fill="{colour}"/>'
        )
        if end is None:  # ongoing: an arrowhead at the as-of date
            bar += (
                f'<path d="M{x2 - 2:.1f},{y - 3:.1f} L{x2 + 10:.1f},{y + BAR / 2:.1f} '
                f'L{x2 - 2:.1f},{y + BAR + 3:.1f} Z" fill="{colour}"/>'
            )
        lo, hi = self._side(x1)
        lines = wrap(parts, hi - lo, SIZE)
        widest = max(text_width(line, SIZE) for line in lines)
        x = max(lo, min(x1, hi - widest))
        kind = "line" if title.startswith("Line") else "early"
        self.front.append(_text(x, y + BAR + 12, lines, cls=f"caption {kind}-caption"))
        return y + BAR + 6 + LINE * len(lines) + 6, bar

    def rows(self, y: float) -> float:
        r = self.r
        if r.early_exposures:
            first = min(e.start for e in r.early_exposures)
            ends = [e.end for e in r.early_exposures]
            last = None if any(e is None for e in ends) else max(e for e in ends if e)
            drugs = list(dict.fromkeys(e.drug for e in r.early_exposures))
            y, bar = self._row(y, "Early setting", (first, last), COLOURS["early"], drugs)
            self.front.append(f'<g class="bar early">{bar}</g>')
        for ln in r.lines:
            colour = COLOURS["her2"] if ln.her2_directed else COLOURS["other"]
            when, ended, running = line_status(ln, r.as_of)
            parts = [ln.regimen_name, when] + ([] if running else [f"ended: {ended}"])
            y, bar = self._row(y, f"Line {ln.number}", (ln.start, ln.end), colour, parts)
            current = " current-line" if ln is r.lines[-1] else ""
            self.front.append(f'<g class="bar line{current}" data-line="{ln.number}">{bar}</g>')
        if not r.lines:
            y = self._title(y, "Lines")
            self.front.append(_text(self.left, y + 12, "No metastatic lines recorded"))
            y += 24
        return y

    # ---------------------------------------------------------------- events
    def events(self, y: float) -> float:
        y = self._title(y, "Events")
        mid = y + 9
        merged = merge_events(self.r)
        if not merged:
            self.front.append(
                _text(self.left, mid + 4, "no progression or ILD/pneumonitis recorded")
            )
            return y + 28
        spans = []
        for ev in merged:
            w = text_width(ev.label, SIZE)
            left = centred(self.scale.x(ev.day), w, self.left, self.width - 2)
            spans.append((left, left + w))
        lane_of = lanes(spans, 8)
        for ev, (left, _), lane in zip(merged, spans, lane_of, strict=True):
            x, colour = self.scale.x(ev.day), COLOURS[ev.kind]
            tip = f"<title>{escape(ev.title)}</title>"
            if ev.kind == "progression":
                shape = (
                    f'<path d="M{x:.1f},{mid - 8:.1f} L{x + 7:.1f},{mid + 6:.1f} '
                    f'L{x - 7:.1f},{mid + 6:.1f} Z" fill="{colour}"/>'
                )
            else:
                shape = (
                    f'<rect x="{x - 6:.1f}" y="{mid - 6:.1f}" width="12" height="12" '
                    f'transform="rotate(45 {x:.1f} {mid:.1f})" fill="{colour}"/>'
                )
            label = _text(left, mid + 24 + LANE * lane, ev.label, fill=colour)
            self.front.append(f'<g class="event {ev.kind}">{tip}{shape}{label}</g>')
        return mid + 24 + LANE * max(lane_of) + 10

    # ---------------------------------------------------------------- LVEF
    def lvef(self, y: float) -> float:
        y = self._title(y, "LVEF (%)")
        points = lvef_points(self.r.lvef)
        if not points:
            self.front.append(_text(self.left, y + 13, "no LVEF recorded"))
            return y + 28
        values = [p.value for p in points] + [t.value for t in self.thresholds]
        lo_v = (min(values) - 5) // 10 * 10  # the values and thresholds, in tens
        hi_v = max(-(-(max(values) + 5) // 10) * 10, lo_v + 40)
        top, height = y + 6, LVEF_HEIGHT - 12

        def yv(value: float) -> float:
            return top + (hi_v - value) / (hi_v - lo_v) * height

        label_y = -1e9
        for t in self.thresholds:
            ref = yv(t.value)
            label_y = max(ref + 4, label_y + 13)
            self.front.append(
                f'<g class="threshold"><title>{escape(t.title)}</title>'
                f'<line x1="{self.left:.1f}" y1="{ref:.1f}" x2="{self.right:.1f}" y2="{ref:.1f}" '
                f'stroke="{t.colour}" stroke-dasharray="3 3"/>'
                + _text(
                    self.left - 4,
                    label_y,
                    f"{t.value:g}%",
                    anchor="end",
                    fill=t.colour,
                    cls="threshold-label",
                )
                + "</g>"
            )
        low = self.thresholds[0].value if self.thresholds else float("-inf")
        xy = [(self.scale.x(p.day), yv(p.value)) for p in points]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in xy)
            self.front.append(
                f'<polyline points="{path}" fill="none" stroke="{COLOURS["lvef"]}" '
                'stroke-width="2"/>'
            )
        radius = 4 if len(points) <= 40 else 3
        for p, (x, yy) in zip(points, xy, strict=True):
            colour = COLOURS["progression"] if p.value < low else COLOURS["lvef"]
            self.front.append(
                f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="{radius}" fill="{colour}">'
                f"<title>{escape(p.title)}</title></circle>"
            )
        area = Box(self.left, y - 4, self.width - 2 - self.left, LVEF_HEIGHT + 4)
        placed: list[Box] = []
        for i in lvef_labelled(points, low):
            (x, yy), s = xy[i], f"{points[i].value:g}%"
            w, h = text_width(s, SIZE), 13.0
            candidates = (
                Box(x + 6, yy - 6 - h, w, h),
                Box(x - 6 - w, yy - 6 - h, w, h),
                Box(x + 6, yy + 5, w, h),
                Box(x - 6 - w, yy + 5, w, h),
                Box(x - w / 2, yy - 8 - h, w, h),
                Box(x - w / 2, yy + 8, w, h),
            )
            box = first_free(candidates, placed, area)
            if box is None:
                continue  # no free place: the value stays on hover and in the table
            placed.append(box)
            colour = COLOURS["progression"] if points[i].value < low else COLOURS["lvef"]
            self.front.append(_text(box.x, box.y + 10, s, fill=colour, cls="lvef-label"))
        return y + LVEF_HEIGHT

    # ---------------------------------------------------------------- axis and markers
    def axis(self, top: float, bottom: float) -> float:
        """Grid lines and date labels, as many as fit."""
        scale = self.scale
        per_month = (scale.right - scale.left) / max((scale.end - scale.start).days / 30.44, 1)
        step = 120
        for step in (1, 3, 6, 12, 24, 60, 120):
            need = text_width("Sep 2024" if step < 12 else "2024", SIZE) + 10
            if per_month * step >= need:
                break
        first = True
        for year in range(scale.start.year, scale.end.year + 1):
            for month in range(1, 13):
                day = date(year, month, 1)
                if not _on_step(year, month, step):
                    continue
                if not scale.start <= day <= scale.end:
                    continue
                x = scale.x(day)
                label = (
                    str(year) if month == 1 else _MONTHS[month - 1] + (f" {year}" if first else "")
                )
                w = text_width(label, SIZE)
                if x - w / 2 < 2 or x + w / 2 > self.width - 2:
                    continue
                first = False
                self.back.append(
                    f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
                    f'stroke="{COLOURS["grid"]}"/>'
                )
                self.front.append(_text(x, bottom + 15, label, anchor="middle"))
        return bottom + 22

    def markers(self, top: float) -> tuple[list[tuple[float, str, str, str]], float]:
        """The metastatic and as-of markers' labels in lanes at the top; the rows' top."""
        found: list[tuple[float, str, str, str]] = []
        if self.r.metastatic_since and self.meta_x is not None:
            found.append(
                (
                    self.meta_x,
                    f"metastatic {self.r.metastatic_since.isoformat()}",
                    "metastatic",
                    COLOURS["metastatic"],
                )
            )
        found.append(
            (
                self.scale.x(self.r.as_of),
                f"as of {self.r.as_of.isoformat()}",
                "as-of",
                COLOURS["muted"],
            )
        )
        spans = []
        for x, s, _, _ in found:
            w = text_width(s, SIZE, bold=True)
            left = x + 4 if x + 4 + w <= self.width - 2 else max(2.0, x - 4 - w)
            spans.append((left, left + w))
        lane_of = lanes(spans, 8)
        self._marks = [
            (x, s, cls, colour, left, top + 11 + LANE * lane)
            for (x, s, cls, colour), (left, _), lane in zip(found, spans, lane_of, strict=True)
        ]
        return found, top + LANE * (max(lane_of) + 1) + 6

    def marker_lines(self, bottom: float) -> None:
        for x, s, cls, colour, left, ty in self._marks:
            self.back.append(
                f'<g class="marker {cls}"><line x1="{x:.1f}" y1="{ty - 10:.1f}" x2="{x:.1f}" '
                f'y2="{bottom:.1f}" stroke="{colour}" stroke-width="2" stroke-dasharray="6 4"/>'
                + _text(left, ty, s, fill=colour, bold=True)
                + "</g>"
            )


def timeline_svg(
    record: PatientRecord, width: int, thresholds: Sequence[Threshold], *, uid: str, desc: str
) -> str:
    """The SVG picture of one patient's treatment over time, laid out for `width` px."""
    pic = _Picture(record, width, thresholds)
    _, y = pic.markers(4.0)
    plot_top = y
    y = pic.rows(y + 4)
    y = pic.events(y + 2)
    y = pic.lvef(y + 2)
    pic.marker_lines(y + 4)
    height = pic.axis(plot_top, y + 4)
    title = f"Therapy timeline for patient {record.patient_id}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tl w{width}" role="img" '
        f'aria-labelledby="{uid}-t {uid}-d" viewBox="0 0 {width} {height:.0f}" '
        f'font-family="sans-serif"><title id="{uid}-t">{escape(title)}</title>'
        f'<desc id="{uid}-d">{escape(desc)}</desc>' + "".join(pic.back + pic.front) + "</svg>"
    )
