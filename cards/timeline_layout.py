"""Layout helpers of the timeline picture: text widths, lanes, label boxes, merged events.

Pure and deterministic (no browser): widths are estimated from DejaVu Sans advance widths (the
sans-serif of Debian's Chromium, and among the widest common sans fonts, so narrower fonts only
leave more room), and labels are placed so that their estimated boxes never overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from engine.model import Measurement, PatientRecord

# Advance widths (thousandths of an em) of ASCII 32..126 in DejaVu Sans Book and Bold, measured
# in Chromium (getComputedTextLength at 100 px).
_BOOK = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636,
    636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 709, 686, 698,
    770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 595, 732,
    684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 344, 635,
    634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 395, 521, 392, 634, 592, 818, 592, 592,
    525, 636, 337, 636, 838,
)  # fmt: skip
_BOLD = (
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696,
    696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734,
    830, 683, 683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 680, 703, 812,
    774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 405, 716,
    712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652,
    582, 712, 365, 712, 838,
)  # fmt: skip
_OTHER = {"·": 380, "–": 500, "—": 1000, "…": 1000, "\u2011": 415, "≥": 838, "≤": 838}
SAFETY = 1.04  # kerning, hinting and rounding: estimates err on the wide side


def text_width(s: str, size: float, *, bold: bool = False) -> float:
    """Estimated rendered width of `s` at font size `size` (px)."""
    table = _BOLD if bold else _BOOK
    total = 0
    for ch in s:
        code = ord(ch)
        if 32 <= code < 127:
            total += table[code - 32]
        else:
            total += _OTHER.get(ch, 1000 if code >= 0x2E80 else 800)
    return total * size / 1000 * SAFETY


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle (x, y: top left)."""

    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: Box, gap: float = 0.0) -> bool:
        return not (
            self.x + self.w + gap <= other.x
            or other.x + other.w + gap <= self.x
            or self.y + self.h + gap <= other.y
            or other.y + other.h + gap <= self.y
        )

    def inside(self, area: Box) -> bool:
        return (
            self.x >= area.x
            and self.y >= area.y
            and self.x + self.w <= area.x + area.w
            and self.y + self.h <= area.y + area.h
        )


def lanes(spans: Sequence[tuple[float, float]], gap: float = 6.0) -> list[int]:
    """Greedy lane assignment: each (left, right) span goes to the first lane (0, 1, ...) where
    it overlaps no span already there (with `gap` between them)."""
    taken: list[list[tuple[float, float]]] = []
    out: list[int] = []
    for left, right in spans:
        for i, lane in enumerate(taken):
            if all(right + gap <= a or b + gap <= left for a, b in lane):
                lane.append((left, right))
                out.append(i)
                break
        else:
            taken.append([(left, right)])
            out.append(len(taken) - 1)
    return out


def centred(x: float, width: float, lo: float, hi: float) -> float:
    """The left edge of a label of `width` centred on `x`, kept within [lo, hi]."""
    return max(lo, min(x - width / 2, hi - width))


def first_free(candidates: Iterable[Box], placed: Sequence[Box], area: Box) -> Box | None:
    """The first candidate box inside `area` that overlaps none already placed."""
    for box in candidates:
        if box.inside(area) and not any(box.overlaps(p, 1.0) for p in placed):
            return box
    return None


def wrap(parts: Sequence[str], width: float, size: float, sep: str = " · ") -> list[str]:
    """`parts` joined by `sep` into lines no wider than `width`; a part too wide alone is cut
    at spaces, and a word too wide alone is shortened with an ellipsis."""
    words: list[str] = []
    for part in parts:
        if text_width(part, size) <= width:
            words.append(part)
            continue
        line = ""
        for word in part.split(" "):
            trial = f"{line} {word}" if line else word
            if text_width(trial, size) <= width:
                line = trial
                continue
            if line:
                words.append(line)
            line = shorten(word, width, size)
        if line:
            words.append(line)
    lines: list[str] = []
    for word in words:
        trial = f"{lines[-1]}{sep}{word}" if lines else word
        if lines and text_width(trial, size) <= width:
            lines[-1] = trial
        else:
            lines.append(word)
    return lines


def shorten(s: str, width: float, size: float) -> str:
    """`s`, cut and ended with an ellipsis when wider than `width`."""
    if text_width(s, size) <= width:
        return s
    while s and text_width(s + "…", size) > width:
        s = s[:-1]
    return s + "…"


@dataclass(frozen=True)
class MergedEvent:
    """Events of one kind on one date, drawn once, with every record behind them."""

    day: date
    kind: str  # "progression" or "ild"
    name: str  # what is drawn: "progression", "ILD"
    sources: tuple[tuple[str, str], ...]  # (resource id, what it says)

    @property
    def label(self) -> str:
        n = len(self.sources)
        more = f" ({n} records)" if n > 1 else ""
        return f"{self.name} {self.day.isoformat()}{more}"

    @property
    def title(self) -> str:
        said = "; ".join(f"{what} ({sid})" if sid else what for sid, what in self.sources)
        return f"{self.name} {self.day.isoformat()}: {said}"


def merge_events(record: PatientRecord) -> list[MergedEvent]:
    """Progression and ILD/pneumonitis events merged per date and kind, by date."""
    found: dict[tuple[date, str], list[tuple[str, str]]] = {}
    for p in record.progressions:
        found.setdefault((p.date, "progression"), []).append(
            (p.source_id, p.basis or "progression")
        )
    for c in record.conditions_of("ild"):
        if c.onset is not None:
            found.setdefault((c.onset, "ild"), []).append((c.source_id, c.display or "ILD"))
    names = {"progression": "progression", "ild": "ILD"}
    return [
        MergedEvent(day, kind, names[kind], tuple(dict.fromkeys(sources)))
        for (day, kind), sources in sorted(found.items())
    ]


@dataclass(frozen=True)
class LvefPoint:
    """LVEF values of one date and value (the same measurement recorded more than once)."""

    day: date
    value: float
    source_ids: tuple[str, ...]

    @property
    def title(self) -> str:
        src = ", ".join(s for s in self.source_ids if s)
        return f"LVEF {self.value:g}% on {self.day.isoformat()}" + (f" ({src})" if src else "")


def lvef_points(series: Iterable[Measurement]) -> list[LvefPoint]:
    """The LVEF series by date, one point per date and value."""
    found: dict[tuple[date, float], list[str]] = {}
    for m in series:
        found.setdefault((m.date, m.value), []).append(m.source_id)
    return [LvefPoint(d, v, tuple(dict.fromkeys(s))) for (d, v), s in sorted(found.items())]


def lvef_labelled(points: Sequence[LvefPoint], low: float) -> list[int]:
    """Which points get a printed label, most important first: the lowest, the last, the
    first, then every one under `low` by date (the others are shown on hover and in the table)."""
    if not points:
        return []
    lowest = min(range(len(points)), key=lambda i: (points[i].value, -i))
    order = [lowest, len(points) - 1, 0]
    order += [i for i, p in enumerate(points) if p.value < low]
    return list(dict.fromkeys(order))
