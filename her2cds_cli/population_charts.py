"""Inline SVG charts for the population report: no scripts, no external resources.

Every chart scales to its container (viewBox, width 100%), so it reads in an 800 px panel and
on paper; hover titles give exact values, and every value is also printed as text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from itertools import pairwise

BLUE, GREEN, RED, GREY = "#3b6ea5", "#286428", "#a33", "#888"
# Agreement below this share is a real problem (red); above it the disagreements are listed
# below for review, drawn in neutral colour: 999 of 1000 is no alarm.
AGREEMENT_ALERT = 0.95
LINE_COLOURS = ("#3b6ea5", "#b5651d", "#286428", "#7b3fa0", "#a33", "#4a8a8c", "#666")


def _svg(width: int, height: int, title: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width:{width}px;height:auto" font-family="sans-serif" font-size="12" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{body}</svg>'
    )


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _short(label: str, limit: int = 46) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def bar_chart(
    counts: Mapping[str, float],
    title: str,
    colour: str = BLUE,
    note: str = "",
    value_text: Mapping[str, str] | None = None,
) -> str:
    """Horizontal bars, largest first, each labelled (long labels cut, whole on hover) and
    valued (`value_text` instead of the number where given)."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    head = f"<h2>{escape(title)}</h2>" + (f"<p class='note'>{escape(note)}</p>" if note else "")
    if not items:
        return head + "<p><em>none</em></p>"
    label_w, bar_w, row_h = 330, 330, 22
    top = max(v for _, v in items) or 1
    rows = []
    for i, (label, value) in enumerate(items):
        y = 5 + i * row_h
        w = max(1, round(bar_w * value / top))
        text = (value_text or {}).get(label, _num(value))
        rows.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(_short(label))}'
            f"<title>{escape(label)}</title></text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 6}" fill="{colour}">'
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
            f'<text x="{label_w + w + 5}" y="{y + 15}">{escape(text)}</text>'
        )
    return head + _svg(label_w + bar_w + 130, row_h * len(items) + 10, title, "".join(rows))


def agreement(agree: int, compared: int) -> str:
    """Agreement as a number with a small bar; red only below AGREEMENT_ALERT."""
    share = agree / compared if compared else 0.0
    colour = GREEN if agree == compared else (RED if share < AGREEMENT_ALERT else BLUE)
    css = "good" if agree == compared else ("bad" if share < AGREEMENT_ALERT else "")
    w = round(160 * share)
    bar = _svg(
        164,
        14,
        "agreement",
        f'<rect x="1" y="1" width="160" height="12" fill="#eee" stroke="{GREY}"/>'
        f'<rect x="1" y="1" width="{w}" height="12" fill="{colour}"/>',
    ).replace('width="100%"', 'width="164"')
    return (
        f"<p class='agreement'>Agreement with the generator's ground truth: "
        f"<b class='{css}'>{100 * share:.1f}%</b> ({agree} of {compared} patients; "
        f"{compared - agree} disagree) {bar}</p>"
    )


def histogram(counts: Mapping[str, int], title: str, x_label: str, note: str = "") -> str:
    """Vertical bars over ordered bins (the mapping's order), each valued."""
    head = f"<h2>{escape(title)}</h2>" + (f"<p class='note'>{escape(note)}</p>" if note else "")
    if not counts or not any(counts.values()):
        return head + "<p><em>none</em></p>"
    bins = list(counts.items())
    left, plot_h, bottom, pad = 40, 160, 40, 18
    slot = max(24, min(70, 680 // len(bins)))
    top = max(counts.values()) or 1
    parts = [f'<line x1="{left}" y1="{plot_h + pad}" x2="{left + slot * len(bins)}" '
             f'y2="{plot_h + pad}" stroke="{GREY}"/>']  # fmt: skip
    for i, (label, value) in enumerate(bins):
        h = round(plot_h * value / top)
        x = left + i * slot
        parts.append(
            f'<rect x="{x + 3}" y="{plot_h + pad - h}" width="{slot - 6}" height="{h}" '
            f'fill="{BLUE}"><title>{escape(label)}: {value}</title></rect>'
            f'<text x="{x + slot / 2}" y="{plot_h + pad - 5 - h}" text-anchor="middle">{value}</text>'
            f'<text x="{x + slot / 2}" y="{plot_h + pad + 15}" text-anchor="middle">{escape(label)}</text>'
        )
    width = left + slot * len(bins) + 10
    parts.append(
        f'<text x="{left + slot * len(bins) / 2}" y="{plot_h + pad + bottom - 8}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    return head + _svg(max(width, 240), plot_h + pad + bottom, title, "".join(parts))


def kaplan_meier(durations: Iterable[tuple[int, bool]]) -> list[tuple[int, float]]:
    """Steps (day, share still on the line) from (days, ended) pairs; not ended = censored."""
    data = sorted(durations)
    at_risk, share, steps = len(data), 1.0, [(0, 1.0)]
    i = 0
    while i < len(data):
        day = data[i][0]
        same = [e for d, e in data[i:] if d == day]
        events = sum(1 for e in same if e)
        if events and at_risk:
            share *= 1 - events / at_risk
            steps.append((day, share))
        at_risk -= len(same)
        i += len(same)
    return steps


def median_day(steps: Sequence[tuple[int, float]]) -> int | None:
    return next((d for d, s in steps if s <= 0.5), None)


def time_on_line(curves: Mapping[int, list[tuple[int, bool]]], title: str) -> str:
    """One Kaplan-Meier-style step curve per line number; ticks mark censored (ongoing) lines."""
    head = (
        f"<h2>{escape(title)}</h2><p class='note'>Share of patients still on line n after so "
        "many days; an ongoing line is censored at the as-of date (tick).</p>"
    )
    lines = sorted(n for n, d in curves.items() if d)[: len(LINE_COLOURS)]
    if not lines:
        return head + "<p><em>no lines of therapy</em></p>"
    left, plot_w, plot_h, top_pad = 50, 600, 220, 10
    horizon = max(d for n in lines for d, _ in curves[n]) or 1

    def x(day: float) -> float:
        return left + plot_w * day / horizon

    def y(share: float) -> float:
        return top_pad + plot_h * (1 - share)

    parts = [
        f'<line x1="{left}" y1="{y(0)}" x2="{left + plot_w}" y2="{y(0)}" stroke="{GREY}"/>'
        f'<line x1="{left}" y1="{y(0)}" x2="{left}" y2="{y(1)}" stroke="{GREY}"/>'
    ]
    for share in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{left - 4}" y="{y(share) + 4}" text-anchor="end">{share:.0%}</text>'
        )
    step = next((s for s in (30, 90, 180, 365, 730, 1460) if horizon / s <= 6), 2920)
    for day in range(0, horizon + 1, step):
        parts.append(f'<text x="{x(day)}" y="{y(0) + 16}" text-anchor="middle">{day}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{y(0) + 32}" text-anchor="middle">days on the line</text>'
    )
    rows = []
    for idx, n in enumerate(lines):
        colour = LINE_COLOURS[idx]
        steps = kaplan_meier(curves[n])
        points, prev = [], 1.0
        for day, share in steps:
            points.append(f"{x(day):.1f},{y(prev):.1f} {x(day):.1f},{y(share):.1f}")
            prev = share
        end = max(d for d, _ in curves[n])
        points.append(f"{x(end):.1f},{y(prev):.1f}")
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
            f'stroke-width="2"><title>line {n}</title></polyline>'
        )
        censored = sorted(d for d, ended in curves[n] if not ended)
        for day in censored:
            share = next((s for d, s in reversed(steps) if d <= day), 1.0)
            parts.append(
                f'<line x1="{x(day):.1f}" y1="{y(share) - 4:.1f}" x2="{x(day):.1f}" '
                f'y2="{y(share) + 4:.1f}" stroke="{colour}"/>'
            )
        ly = top_pad + 14 + idx * 16
        parts.append(
            f'<rect x="{left + plot_w + 10}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + plot_w + 24}" y="{ly}">line {n}</text>'
        )
        med = median_day(steps)
        ended = sum(1 for _, e in curves[n] if e)
        rows.append(
            f"<tr><td>{n}</td><td>{len(curves[n])}</td><td>{ended}</td>"
            f"<td>{len(curves[n]) - ended}</td><td>{med if med is not None else 'not reached'}</td></tr>"
        )
    svg = _svg(left + plot_w + 80, top_pad + plot_h + 40, title, "".join(parts))
    table = (
        "<table><tr><th>line</th><th>patients</th><th>ended</th><th>ongoing (censored)</th>"
        "<th>median days on line</th></tr>" + "".join(rows) + "</table>"
    )
    return head + svg + table


def binned(values: Iterable[float], edges: Sequence[float]) -> Counter[str]:
    """Counts per bin "a-b" (the last one "≥ a"), every bin present, in order."""
    labels = [f"{_num(a)}-{_num(b)}" for a, b in pairwise(edges)]
    labels.append(f"≥ {_num(edges[-1])}")
    counts: Counter[str] = Counter({label: 0 for label in labels})
    for v in values:
        i = next((k for k, b in enumerate(edges[1:]) if v < b), len(edges) - 1)
        counts[labels[i]] += 1
    return counts
