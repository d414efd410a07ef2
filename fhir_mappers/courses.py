"""Per-resource points merged into one course per drug, and whether each course is ongoing.

CLINICAL.md section 2, rule 5, decided the same way for every resource shape: a course is ongoing
when a statement or order of it is active with no end in the past, or when its last dose
(administration, per-cycle order, dispense) is within its dosing interval plus a grace of one
interval (drugs.yaml `dosing`, parameters.yaml `lines`), and nothing recorded stopped it (a
completed or stopped resource after the last dose, a progression on or after the last dose).
An ended course ends at its last dose, never in the future. Statements, orders and
administrations of one course are one exposure, with the count of resources behind it.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date
from typing import NamedTuple

from engine.knowledge import Knowledge
from engine.model import DataIssue, Exposure, ProgressionEvent


class Shape(NamedTuple):
    """What one resource says about when its drug was given (CLINICAL.md 2.5)."""

    start: date
    last: date | None  # the last day it shows the drug given (<= as_of); None: claimed active
    claim: bool  # active with no end in the past: the drug is given now
    claimed_on: date  # when that was asserted or written
    stop: bool  # a completed/stopped statement, a stopped order or a finished planned course
    stale: bool  # 'active' but untouched for over a year: read as a past course
    supplied: date | None = None  # how far a dispensed supply reaches (may be after as_of)


class Point(NamedTuple):
    """One drug of one resource (a tuple: a frozen dataclass cost a microsecond per point)."""

    drug: str
    shape: Shape
    source_id: str
    intent: str | None
    progression: bool
    stated_end: date | None = None  # the end the resource states, for a stop for no response
    stop_reason: str = ""  # the words of another recorded stop reason (e.g. "adverse event")

    @property
    def start(self) -> date:
        return self.shape.start


class _Course:
    """One drug's course being merged from points."""

    def __init__(self, first: Point, early: bool) -> None:
        self.points = [first]
        self.reach = first.shape.last  # None while an active claim keeps it open
        self.open = first.shape.claim
        self.intent = first.intent
        self.early = early

    def takes(self, p: Point, merge_gap: int, early: bool) -> bool:
        return (
            (self.open or self.reach is None or (p.start - self.reach).days <= merge_gap)
            and (p.intent == self.intent or None in (p.intent, self.intent))
            and early == self.early
        )

    def add(self, p: Point) -> None:
        self.points.append(p)
        self.open = self.open or p.shape.claim
        last = p.shape.last
        if last is not None:
            self.reach = last if self.reach is None else max(self.reach, last)
        self.intent = self.intent or p.intent

    def latest(self) -> Point:
        """The point of its last day (latest start on a tie): what judges the course."""
        return max(self.points, key=lambda p: (_when(p), p.start, p.source_id))

    def exposure(
        self, drug: str, drug_class: str, window: int, as_of: date, progress: list[date], cut: bool
    ) -> Exposure:
        """The course as one exposure; `cut`: the metastatic date ended this early course."""
        pts = self.points
        doses = [p for p in pts if not p.shape.claim]
        # A course with administrations or statements starts at the first of them (the first
        # dose), not when it was ordered (authoredOn).
        given = [p.start for p in pts if not p.source_id.startswith("MedicationRequest/")]
        start = min(given or [p.start for p in pts])
        last_dose = max((p.shape.last for p in doses if p.shape.last is not None), default=None)
        stop_day = max((p.shape.last or p.start for p in pts if p.shape.stop), default=None)
        claims = [
            p.shape.claimed_on
            for p in pts
            if p.shape.claim and (stop_day is None or p.shape.claimed_on > stop_day)
        ]
        basis = ""
        if claims:
            basis = "active"
        elif (
            last_dose is not None
            and not cut
            and (stop_day is None or stop_day < last_dose)
            and ((as_of - last_dose).days <= window or _supplied(doses, last_dose, as_of))
        ):
            i = bisect_left(progress, last_dose)  # a progression on or after the last dose
            if i == len(progress) or progress[i] > as_of:
                basis = "recent dose"
        end = None if basis else max(start, last_dose or stop_day or start)
        # An order whose supply ran out with nothing after it ends when the supply ran out, not
        # on the day it was written (CLINICAL.md 2.5: active with no end in the past; the third
        # outside review, M1): "no new prescription or dose since <written> (supply to ~<day>)".
        supply_from = None
        to = _supply_end(doses, last_dose, as_of)
        if (
            end is not None
            and to is not None
            and end == last_dose
            and to < as_of  # ran out (a supply still running was ended by something else)
            and (stop_day is None or stop_day < last_dose)
            and not any(last_dose <= d <= to for d in progress)  # a progression stopped it
        ):
            end, supply_from = to, last_dose
        spans = tuple(
            sorted(
                ((p.start, None if p.shape.claim else p.shape.last) for p in pts),
                key=lambda s: (s[0], s[1] or date.max),
            )
        )
        return Exposure(
            drug=drug,
            drug_class=drug_class,
            start=start,
            end=end,
            source_ids=tuple(p.source_id for p in pts),
            intent=self.intent,
            stopped_for_progression=any(p.progression for p in pts),
            stop_reason=next(
                (p.stop_reason for p in sorted(pts, key=_when, reverse=True) if p.stop_reason), ""
            ),
            last_dose=last_dose,
            resource_count=len({p.source_id for p in pts}),
            ongoing_basis=basis,
            spans=spans,
            supply_from=supply_from,
        )


def _when(p: Point) -> date:
    return p.shape.last or p.start


def _supply_end(doses: list[Point], last_dose: date | None, as_of: date) -> date | None:
    """When the supply of the latest order (written on the last dose day) runs out, if after it
    (an administration that day is a dose, not a supply)."""
    if last_dose is None or any(
        p.shape.last == last_dose and p.shape.supplied is None for p in doses
    ):
        return None
    days = [p.shape.supplied for p in doses if p.shape.last == last_dose and p.shape.supplied]
    to = max((d for d in days if d is not None), default=None)
    return to if to is not None and to > last_dose else None


def _supplied(doses: list[Point], last_dose: date, as_of: date) -> bool:
    """The supply of the latest dispense still reaches the record date."""
    return any(
        p.shape.last == last_dose and p.shape.supplied is not None and p.shape.supplied >= as_of
        for p in doses
    )


def _stale_claim(c: _Course, e: Exposure, window: int, as_of: date) -> list[DataIssue]:
    """An active order or statement older than the last dose, with no dose for longer than
    the drug's window: read as ongoing (it is active), and the record says so."""
    if e.ongoing_basis != "active" or e.last_dose is None or (as_of - e.last_dose).days <= window:
        return []
    claims = [p for p in c.points if p.shape.claim]
    if any(p.shape.claimed_on > e.last_dose for p in claims):
        return []
    return [
        DataIssue(
            claims[0].source_id,
            f"{e.drug} is active on record but its last dose was {e.last_dose.isoformat()} "
            f"({(as_of - e.last_dose).days} days ago, more than {window}): read as ongoing; "
            "confirm whether it is still given",
        )
    ]


def merge_courses(
    points: list[Point],
    knowledge: Knowledge,
    as_of: date,
    progressions: list[ProgressionEvent],
    boundary: date | None = None,
    issues: list[DataIssue] | None = None,
) -> list[Exposure]:
    """Merge one drug's points into courses when they are no more than the merge gap apart.

    Only points of the same setting merge (early: curative intent or before `boundary`), so a
    course is wholly early or wholly metastatic and no resource ends up on both sides.
    """
    merge_gap = int(knowledge.param("lines", "course_merge_gap_days"))
    progress = sorted(p.date for p in progressions)

    def early(p: Point) -> bool:
        return p.intent == "curative" or (boundary is not None and p.start < boundary)

    by_drug: dict[str, list[Point]] = {}
    for p in points:
        by_drug.setdefault(p.drug, []).append(p)
    built: list[tuple[str, _Course]] = []
    for drug, pts in sorted(by_drug.items()):
        pts.sort(key=lambda p: (p.start, p.source_id))
        courses: list[_Course] = []
        for p in pts:
            if courses and courses[-1].takes(p, merge_gap, early(p)):
                courses[-1].add(p)
            else:
                courses.append(_Course(p, early(p)))
        built.extend((drug, c) for c in courses)
    # Drugs of one course (their latest orders of the same shape, dates and supply: prescribed
    # together) are judged together, on the shortest window among them, so identical records
    # never get different answers (third outside review, M1): the stricter reading asks.
    windows = {drug: knowledge.ongoing_window_days(drug) for drug in by_drug}
    shared: dict[tuple[object, ...], int] = {}
    for drug, c in built:
        key = _shape_key(drug, c)
        shared[key] = min(shared.get(key, windows[drug]), windows[drug])
    out: list[Exposure] = []
    for drug, c in built:
        info = knowledge.drug(drug)
        cls = info.drug_class if info else "unknown"
        window = shared[_shape_key(drug, c)]
        # The metastatic date ends an early course that is not claimed active after it.
        cut = c.early and boundary is not None and boundary <= as_of
        exp = c.exposure(drug, cls, window, as_of, progress, cut)
        out.append(exp)
        if issues is not None:
            issues.extend(_stale_claim(c, exp, window, as_of))
    out.sort(key=lambda e: (e.start, e.drug))
    return out


def _shape_key(drug: str, c: _Course) -> tuple[object, ...]:
    """What a course's latest order with a supply says, without its drug: equal keys, one
    answer. Doses without a supply keep their own drug's dosing interval."""
    p = c.latest()
    if p.shape.supplied is None or not p.source_id.startswith("MedicationRequest/"):
        return (drug, id(c))
    return (p.shape, p.intent, p.progression, p.stop_reason, c.early)
