"""The facts a card's sources establish, one SourceGroup each, in words: the HER2 result,
progression, metastatic disease, risk conditions, LVEF, the lines of therapy and early therapy;
and ids listed in natural order, collapsed by resource type when there are many.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from cards.common import line_status
from engine.model import (
    ConditionFact,
    Exposure,
    Measurement,
    PatientRecord,
    ProgressionEvent,
    ReceptorResult,
    Specimen,
    TherapyLine,
)

_SHOWN_PER_TYPE = 3  # ids of one resource type listed one by one; more are collapsed
_LVEF_SHOWN = 6  # LVEF values listed one by one (the first, as baseline, and the latest)
_METHOD = {"ihc": "IHC", "ish": "ISH", "interpretation": "test result", "condition": "diagnosis"}
_SPECIMEN = {Specimen.PRIMARY: "primary tumour", Specimen.METASTATIC: "metastatic lesion"}
_CONCEPTS = {
    "ild": "Interstitial lung disease / pneumonitis",
    "heart-failure": "Heart failure / cardiomyopathy",
    "brain-metastasis": "Brain metastases",
    "pregnancy": "Pregnancy",
}
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class SourceGroup:
    """One fact a card rests on: its label, its entries in words, and every id behind it."""

    fact: str  # "her2", "progression", "metastasis", "line-2", "lvef", ...
    label: str
    entries: tuple[str, ...]
    ids: tuple[str, ...]


def natural_key(text: str) -> str:
    """Sort key reading digit runs as numbers: c2 before c10 (digit runs zero-padded)."""
    parts = _DIGITS.split(text)  # the digit runs are the odd items
    parts[1::2] = [p.zfill(20) for p in parts[1::2]]
    return "".join(parts)


def quoted(source_id: str) -> str:
    return f"`{source_id}`"


def _rtype(source_id: str) -> str:
    return source_id.split("/", 1)[0] if "/" in source_id else "Resource"


def collapsed(ids: Iterable[str], key: Callable[[str], str] = natural_key) -> str:
    """Ids by resource type in natural order; a type with many is shown as a count with its
    first and last id ("MedicationAdministration ×12 (`…/c1` … `…/c12`)")."""
    by_type: dict[str, list[str]] = {}
    for s in sorted(set(ids), key=key):
        by_type.setdefault(_rtype(s), []).append(s)
    parts = []
    for rtype, items in by_type.items():
        if len(items) <= _SHOWN_PER_TYPE:
            parts.append(", ".join(quoted(s) for s in items))
        else:
            parts.append(f"{rtype} ×{len(items)} ({quoted(items[0])} … {quoted(items[-1])})")
    return "; ".join(parts)


def day_text(d: date | None) -> str:
    return d.isoformat() if d else "undated"


@dataclass
class SourceIndex:
    """Where each id of a record comes from."""

    her2: dict[str, ReceptorResult] = field(default_factory=dict)
    receptors: dict[str, tuple[str, ReceptorResult]] = field(default_factory=dict)
    progressions: dict[str, ProgressionEvent] = field(default_factory=dict)
    metastatic: set[str] = field(default_factory=set)
    metastases: dict[str, ConditionFact] = field(default_factory=dict)
    breast: dict[str, ConditionFact] = field(default_factory=dict)
    conditions: dict[str, ConditionFact] = field(default_factory=dict)
    lvef: dict[str, Measurement] = field(default_factory=dict)
    staging: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, source_id: str) -> str:
        """natural_key, computed once per id (a card may cite hundreds of per-cycle ids)."""
        k = self.keys.get(source_id)
        if k is None:
            k = self.keys[source_id] = natural_key(source_id)
        return k


def build_index(record: PatientRecord) -> SourceIndex:
    """Built per card (tens of microseconds): no cache that would outlive the call."""
    ix = SourceIndex()
    ix.her2 = {r.source_id: r for r in record.her2.results}
    for name, assessment in (("ER", record.er), ("PR", record.pr)):
        ix.receptors.update({r.source_id: (name, r) for r in assessment.results})
    for p in record.progressions:
        ix.progressions.setdefault(p.source_id, p)
    ix.metastatic = set(record.metastatic_source_ids)
    ix.metastases = {c.source_id: c for c in record.metastases}
    ix.breast = {c.source_id: c for c in record.breast_cancer}
    ix.conditions = {c.source_id: c for c in record.conditions}
    ix.lvef = {m.source_id: m for m in record.lvef}
    ix.staging = set(record.non_metastatic_staging_ids)
    return ix


def _her2_entry(r: ReceptorResult, record: PatientRecord) -> str:
    words = [_METHOD.get(r.method, r.method)]
    if r.display and not r.display.lower().startswith(r.status.value):
        words.append(r.display)
    words.append(day_text(r.date))
    if r.specimen in _SPECIMEN:
        words.append(_SPECIMEN[r.specimen])
    basis = record.her2.basis
    if basis is not None and r.source_id == basis.source_id:
        words.append("decides the status")
    elif any(r.source_id == d.source_id for d in record.her2.discordant):
        words.append("discordant")
    return f"{r.status.value} ({', '.join(words)}) {quoted(r.source_id)}"


def her2_group(wanted: list[str], record: PatientRecord, ix: SourceIndex) -> SourceGroup | None:
    found = [ix.her2[s] for s in wanted if s in ix.her2]
    if not found:
        return None
    basis = record.her2.basis.source_id if record.her2.basis else None
    discordant = {d.source_id for d in record.her2.discordant}

    def rank(r: ReceptorResult) -> tuple[int, int, str]:
        first = 0 if r.source_id == basis else 1 if r.source_id in discordant else 2
        return (first, -(r.date or date.min).toordinal(), ix.key(r.source_id))

    ordered = sorted(found, key=rank)
    label = "HER2 result" if len(ordered) == 1 else "HER2 results"
    return SourceGroup(
        "her2",
        label,
        tuple(_her2_entry(r, record) for r in ordered),
        tuple(r.source_id for r in ordered),
    )


def _line_of(source_id: str, record: PatientRecord) -> TherapyLine | None:
    for ln in record.lines:
        if source_id in ln.progression_ids:
            return ln
    return next((ln for ln in record.lines if source_id in ln.source_ids), None)


def progression_group(
    wanted: list[str], record: PatientRecord, ix: SourceIndex
) -> SourceGroup | None:
    found = sorted(
        (ix.progressions[s] for s in wanted if s in ix.progressions),
        key=lambda p: (-p.date.toordinal(), ix.key(p.source_id)),
    )
    if not found:
        return None
    # One entry per date and line: a disease-status Observation and the order stopped for no
    # response on that day are one event, recorded twice.
    events: dict[tuple[date, int], list[ProgressionEvent]] = {}
    for p in found:
        ln = _line_of(p.source_id, record)
        events.setdefault((p.date, ln.number if ln else 0), []).append(p)
    entries = []
    for (when, number), same in events.items():
        where = ""
        if number:
            ln = next(x for x in record.lines if x.number == number)
            own = [ix.progressions[s] for s in ln.progression_ids if s in ix.progressions]
            latest = max((q.date for q in own), default=None)
            ended = ln.ended_in_progression and latest == when
            where = f", {'ended' if ended else 'during'} line {number}"
        bases = "; ".join(dict.fromkeys(p.basis for p in same if p.basis))
        ids = ", ".join(quoted(p.source_id) for p in same)
        entries.append(f"{when.isoformat()}:{' ' + bases if bases else ''}{where} {ids}")
    label = "Progression" if len(entries) == 1 else "Progression events (latest first)"
    return SourceGroup("progression", label, tuple(entries), tuple(p.source_id for p in found))


def condition_entry(c: ConditionFact) -> str:
    onset = f", onset {c.onset.isoformat()}" if c.onset else ""
    status = "" if c.active else ", not active"
    return f"{c.display or c.concept}{onset}{status} {quoted(c.source_id)}"


def metastasis_group(
    wanted: list[str], record: PatientRecord, ix: SourceIndex
) -> SourceGroup | None:
    ids = [s for s in wanted if s in ix.metastatic or s in ix.metastases]
    if not ids:
        return None
    conds = sorted(
        (ix.metastases[s] for s in ids if s in ix.metastases),
        key=lambda c: ((c.onset or date.max), ix.key(c.source_id)),
    )
    entries = [condition_entry(c) for c in conds]
    rest = [s for s in ids if s not in ix.metastases]
    if rest:
        entries.append(f"staging or disease-status records: {collapsed(rest, ix.key)}")
    since = record.metastatic_since
    label = f"Metastatic disease since {since.isoformat()}" if since else "Metastatic disease"
    return SourceGroup(
        "metastasis",
        label,
        tuple(entries),
        (*(c.source_id for c in conds), *sorted(rest, key=ix.key)),
    )


def _course_entries(
    exposures: Iterable[Exposure],
    wanted: set[str],
    ix: SourceIndex,
    span: tuple[date, date | None] | None = None,
) -> tuple[list[str], list[str]]:
    """One entry per course (drug, dates, its resources collapsed), and the ids shown. A course
    spanning the whole line (`span`) does not repeat the line's dates."""
    entries: list[str] = []
    ids: list[str] = []
    for e in sorted(exposures, key=lambda e: (e.start, e.drug)):
        mine = sorted({s for s in e.source_ids if s in wanted}, key=ix.key)
        if not mine:
            continue
        end = e.end.isoformat() if e.end else "ongoing"
        dates = "" if span == (e.start, e.end) else f", {e.start.isoformat()} to {end}"
        if e.end is None:  # say why it counts as ongoing (second outside review, row 4)
            dates = (
                f", active since {e.start.isoformat()}, no end recorded"
                if e.ongoing_basis == "active" or e.last_dose is None
                else f", since {e.start.isoformat()}, last dose on {e.last_dose.isoformat()}"
            )
        stopped = ", stopped for progression" if e.stopped_for_progression else ""
        entries.append(f"{e.drug}{dates}{stopped}: {collapsed(mine, ix.key)}")
        ids += [s for s in mine if s not in ids]
    return entries, ids


def line_groups(wanted: list[str], record: PatientRecord, ix: SourceIndex) -> list[SourceGroup]:
    want = set(wanted)
    groups = []
    for ln in record.lines:
        in_line = want & set(ln.source_ids)
        if not in_line:
            continue
        exposures = [e for e in record.exposures if in_line & set(e.source_ids)]
        entries, ids = _course_entries(exposures, in_line, ix, (ln.start, ln.end))
        loose = sorted(in_line - set(ids), key=ix.key)
        if loose:
            entries.append(collapsed(loose, ix.key))
        dates, _, _ = line_status(ln, record.as_of)  # the timeline table's words
        how = ", ended in progression" if ln.ended_in_progression else ""
        label = f"Line {ln.number}, {ln.regimen_name}: {dates}{how}"
        groups.append(SourceGroup(f"line-{ln.number}", label, tuple(entries), (*ids, *loose)))
    return groups


def early_group(wanted: list[str], record: PatientRecord, ix: SourceIndex) -> SourceGroup | None:
    want = set(wanted)
    entries, ids = _course_entries(record.early_exposures, want, ix)
    if not entries:
        return None
    end = record.early_setting_end
    label = "Early-setting (neo)adjuvant therapy" + (f", to {end.isoformat()}" if end else "")
    return SourceGroup("early-therapy", label, tuple(entries), tuple(ids))


def lvef_group(wanted: list[str], ix: SourceIndex) -> SourceGroup | None:
    series = sorted(
        (ix.lvef[s] for s in wanted if s in ix.lvef), key=lambda m: (m.date, m.source_id)
    )
    if not series:
        return None

    def entry(m: Measurement, note: str = "") -> str:
        return f"{m.value:g}{m.unit} on {m.date.isoformat()}{note} {quoted(m.source_id)}"

    last = len(series) - 1
    shown = [entry(m, " (latest)" if i == last and last else "") for i, m in enumerate(series)]
    if len(series) > _LVEF_SHOWN:
        middle = series[1 : -(_LVEF_SHOWN - 2)]
        shown = [
            shown[0],
            f"{len(middle)} more from {middle[0].date.isoformat()} to "
            f"{middle[-1].date.isoformat()}: {collapsed((m.source_id for m in middle), ix.key)}",
            *shown[-(_LVEF_SHOWN - 2) :],
        ]
    label = "LVEF" if len(series) == 1 else "LVEF series (oldest first)"
    return SourceGroup("lvef", label, tuple(shown), tuple(m.source_id for m in series))


def condition_groups(wanted: list[str], ix: SourceIndex, used: set[str]) -> list[SourceGroup]:
    by_concept: dict[str, list[ConditionFact]] = {}
    for s in wanted:
        c = ix.conditions.get(s)
        if c is not None and s not in used:
            by_concept.setdefault(c.concept, []).append(c)
    order = [k for k in _CONCEPTS if k in by_concept]
    order += sorted(k for k in by_concept if k not in _CONCEPTS)
    groups = []
    for concept in order:
        conds = sorted(
            by_concept[concept], key=lambda c: (c.onset or date.max, ix.key(c.source_id))
        )
        label = _CONCEPTS.get(concept, concept.replace("-", " ").capitalize())
        groups.append(
            SourceGroup(
                concept,
                label,
                tuple(condition_entry(c) for c in conds),
                tuple(c.source_id for c in conds),
            )
        )
    return groups


def simple_group(fact: str, label: str, entries: list[str], ids: list[str]) -> SourceGroup | None:
    return SourceGroup(fact, label, tuple(entries), tuple(ids)) if ids else None
