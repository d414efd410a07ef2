"""Cardiac rules by label (CLINICAL.md section 4): each drug concerned judged by its own label.

The rules, recheck intervals and words are in engine/knowledge/cardiac.yaml; the LLN and the
critical LVEF in parameters.yaml `cardiac`. The baseline for a drug is the last LVEF on or before
its start (the label's "pre-treatment value"); for a drug not yet started, the one before the
HER2-directed therapy running now, else the earliest value recorded (said as such).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypedDict

from engine.knowledge import Knowledge
from engine.knowledge_cardiac import CardiacLabel, LabelRule
from engine.model import ConditionFact, Evidence, Measurement, PatientRecord

# Strength of an action: the strongest a drug's findings call for wins.
_STRENGTH = {"recheck": 0, "review": 1, "withhold": 2, "interrupt": 2, "hold": 2, "discontinue": 3}


class CardFields(TypedDict):
    """The template fields of the cardiac-lvef texts (warnings.yaml)."""

    criteria: str
    actions: str
    series: str
    verdicts: str
    recheck: str
    note: str


@dataclass(frozen=True)
class Concerned:
    """A monitored drug the cardiac rules look at: running (with its start), planned or ordered."""

    drug: str
    how: str  # "running", "planned", "ordered"
    start: date | None = None


@dataclass(frozen=True)
class DrugVerdict:
    """One drug's label judged on the LVEF series and the heart-failure record."""

    drug: str
    how: str
    label: CardiacLabel
    action: str | None  # strongest action its label calls for, None when no rule is met
    text: str  # the sentence for the card's detail
    repeat_due: date | None = None  # the label's repeat after an LVEF that met one of its rules

    @property
    def withholds(self) -> bool:
        return self.action is not None and self.action not in ("review", "recheck")


@dataclass(frozen=True)
class CardiacVerdict:
    """What the cardiac card says: per-drug verdicts, severity, the series, the evidence ids."""

    verdicts: tuple[DrugVerdict, ...]
    severity: str
    criteria: str
    series: str
    source_ids: tuple[str, ...]
    overdue: str = ""  # "Repeat LVEF overdue since ..." when a label's repeat has not been done

    @property
    def withhold(self) -> tuple[str, ...]:
        return tuple(v.drug for v in self.verdicts if v.withholds)

    def note(self, kb: Knowledge) -> str:
        """Why no replacement order: hold a drug being given; the review decides on a new one."""
        held = [v.drug for v in self.verdicts if v.withholds]
        running = [
            d for d in held if any(v.drug == d and v.how == "running" for v in self.verdicts)
        ]
        new = [d for d in held if d not in running]
        said = []
        if running:
            said.append(kb.cardiac.say("hold_not_swap", drugs=" and ".join(running)))
        if new:
            said.append(kb.cardiac.say("not_started", drugs=" and ".join(new)))
        return " ".join(said)

    def actions(self, kb: Knowledge) -> str:
        """What the labels say, drugs with the same action named together."""
        groups: dict[tuple[str, bool, str], list[str]] = {}
        for v in self.verdicts:
            if v.action is not None:
                recheck = v.label.recheck if v.action == "recheck" else ""
                key = (v.action, v.how == "running", recheck)
                groups.setdefault(key, []).append(v.drug)
        said = [
            _words(kb, action, running, " and ".join(drugs), recheck)
            for (action, running, recheck), drugs in groups.items()
        ]
        return "; ".join(said)

    def evidence(self, kb: Knowledge) -> tuple[Evidence, ...]:
        """The labels of the drugs judged (not every label cardiac-lvef may cite)."""
        ids = dict.fromkeys(v.label.evidence for v in self.verdicts)
        return tuple(kb.evidence[e] for e in ids)

    def fields(self, kb: Knowledge) -> CardFields:
        """The template fields of the cardiac-lvef texts in warnings.yaml."""
        return {
            "criteria": self.criteria,
            "actions": self.actions(kb),
            "series": self.series,
            "verdicts": " ".join(v.text for v in self.verdicts),
            "recheck": self.overdue or self.recheck(kb),
            "note": self.note(kb),
        }

    def recheck(self, kb: Knowledge) -> str:
        """The recheck sentence of each drug whose rule is met (all drugs when none is); where
        no LVEF rule is met (heart failure alone), what the label says about monitoring."""
        ck = kb.cardiac
        met = [v for v in self.verdicts if v.action is not None] or list(self.verdicts)
        seen: dict[str, str] = {}
        for v in sorted(met, key=lambda v: v.label.recheck_days or 10**6):
            lab = v.label
            if lab.recheck_days and v.repeat_due is None:
                mark = "" if lab.monitoring_verified else " " + ck.say("monitoring_unverified")
                words = ck.say("monitoring", label=lab.label, monitoring=lab.monitoring) + mark
            else:
                key = "recheck" if lab.recheck_days else "recheck_none"
                words = ck.say(key, recheck=lab.recheck, name=_name(kb, v.drug))
            seen.setdefault(lab.drug, words)
        return " ".join(seen.values())


def _name(kb: Knowledge, drug: str) -> str:
    info = kb.drug(drug)
    return f"{drug} ({info.short})" if info and info.short else drug


def _words(kb: Knowledge, action: str, running: bool, drug: str, recheck: str) -> str:
    table = kb.cardiac.actions if running else kb.cardiac.actions_before_start
    return table[action].format(drug=drug, recheck=recheck)


def _symptomatic(cond: ConditionFact, kb: Knowledge) -> bool:
    terms = kb.param("cardiac_terms", "symptomatic_heart_failure")
    text = (cond.display or "").lower()
    return cond.active and any(t in text for t in terms)


def _baseline(series: list[Measurement], start: date | None) -> tuple[Measurement, bool]:
    if start is not None:
        before = [m for m in series if m.date <= start]
        if before:
            return before[-1], True
    return series[0], False


def _met(rules: tuple[LabelRule, ...], value: float, drop: float, lln: float) -> list[LabelRule]:
    return [r for r in rules if r.met(value, drop, lln)]


def _runs(flags: list[bool]) -> tuple[int, int]:
    """(number of separate runs of True, index where the last run starts; -1 if it is False)."""
    count, start = 0, -1
    for i, flag in enumerate(flags):
        if flag and (i == 0 or not flags[i - 1]):
            count, start = count + 1, i
    return count, start if flags and flags[-1] else -1


def _judge(
    kb: Knowledge,
    c: Concerned,
    series: list[Measurement],
    hf: list[ConditionFact],
    base_start: date | None,
) -> tuple[DrugVerdict, list[str]]:
    """One drug by its label: the strongest action met, its sentence, and the evidence ids."""
    ck, label = kb.cardiac, kb.cardiac.labels[c.drug]
    lln = float(kb.param("cardiac", "lvef_low"))
    critical = float(kb.param("cardiac", "lvef_critical"))
    name = _name(kb, c.drug)
    found: list[tuple[str, str]] = []  # (action, what is met)
    ids: list[str] = []
    facts = ck.say("no_lvef")
    repeat_due: date | None = None
    if series:
        base, pre = _baseline(series, c.start if c.how == "running" else base_start)
        latest = series[-1]
        drop = base.value - latest.value
        which = "baseline_earliest" if c.how == "running" else "baseline_planned"
        btext = ck.say(
            "baseline_pre" if pre else which,
            value=f"{base.value:g}",
            date=base.date.isoformat(),
            name=name,
        )
        key = "facts" if drop > 0 else "facts_same" if drop == 0 else "facts_rise"
        facts = ck.say(
            key,
            latest=f"{latest.value:g}",
            latest_date=latest.date.isoformat(),
            baseline=btext,
            drop=f"{drop:g}",
            rise=f"{-drop:g}",
        )
        after = [m for m in series if m.date > base.date] or [latest]
        holds = tuple(r for r in label.rules if r.action not in ("review", "recheck"))
        flags = [bool(_met(holds, m.value, base.value - m.value, lln)) for m in after]
        met_rules = _met(label.rules, latest.value, drop, lln)
        if any(r.action != "recheck" for r in met_rules):
            # quote only the rule that decides: a hold rule met outranks "continue; repeat" (N9)
            met_rules = [r for r in met_rules if r.action != "recheck"]
        for rule in met_rules:
            found.append((rule.action, ck.say("rule_met", says=rule.says)))
            prev = after[-2] if len(after) > 1 else None
            if rule.confirmed and prev and rule.met(prev.value, base.value - prev.value, lln):
                conf = ck.say("confirmed", value=f"{prev.value:g}", date=prev.date.isoformat())
                found.append((rule.confirmed, conf))
                ids.append(prev.source_id)
        count, run_start = _runs(flags)
        p, h = label.persistent, label.max_holds
        if p and p.days and run_start >= 0 and (latest.date - after[run_start].date).days > p.days:
            since = after[run_start].date.isoformat()
            found.append((p.action, ck.say("persistent", says=p.says, since=since)))
        if h and h.more_than and count > h.more_than:
            found.append((h.action, ck.say("holds", says=h.says, count=count)))
        if latest.value < critical and not found:
            u = ck.under_critical
            found.append((u.action, u.says.format(critical=f"{critical:g}")))
        if found:
            ids += [latest.source_id, base.source_id]
            if label.recheck_days:
                repeat_due = latest.date + timedelta(days=label.recheck_days)
    symptomatic = [x for x in hf if _symptomatic(x, kb)]
    names = ", ".join(sorted({x.display or x.concept for x in hf}))
    if symptomatic:
        what = ck.say("heart_failure_symptomatic", names=names, says=label.heart_failure.says)
        found.append((label.heart_failure.action, what))
    elif hf:
        found.append(("review", ck.say("heart_failure_record", names=names)))
    ids += [x.source_id for x in hf]
    if not found:
        text = ck.say("not_met", name=name, facts=facts)
        return DrugVerdict(c.drug, c.how, label, None, text), ids
    action = max((a for a, _ in found), key=lambda a: _STRENGTH[a])
    running = c.how == "running"
    words = _words(kb, action, running, c.drug, label.recheck)
    met = "; ".join(dict.fromkeys(w for _, w in found))
    met = met[:1].upper() + met[1:]
    key = "met_running" if running else "met_planned"
    text = " ".join(
        (
            ck.say(key, name=name, facts=facts, met=met, action=words),
            ck.say("quote", label=label.label, quote=label.quote),
            "" if label.verified else ck.say("unverified"),
        )
    ).strip()
    return DrugVerdict(c.drug, c.how, label, action, text, repeat_due), ids


def _criteria(
    kb: Knowledge, series: list[Measurement], base_start: date | None, due: date | None
) -> str:
    base, _ = _baseline(series, base_start)
    latest = series[-1]
    when = {"latest": f"{latest.value:g}", "date": latest.date.isoformat()}
    if due is not None:
        return kb.cardiac.say("criteria_overdue", due=due.isoformat(), **when)
    if base is latest:
        return kb.cardiac.say("criteria_single", **when)
    drop = base.value - latest.value
    key = "criteria_drop" if drop > 0 else "criteria_same" if drop == 0 else "criteria_rise"
    return kb.cardiac.say(key, drop=f"{drop:g}", rise=f"{-drop:g}", base=f"{base.value:g}", **when)


def _overdue(
    kb: Knowledge, verdicts: list[DrugVerdict], series: list[Measurement], as_of: date
) -> tuple[date | None, str]:
    """The earliest label repeat after the latest LVEF that has passed with no newer LVEF."""
    late = [v for v in verdicts if v.action and v.repeat_due and v.repeat_due < as_of]
    if not late or not series:
        return None, ""
    first = min(late, key=lambda v: (v.repeat_due or date.max, v.drug))
    due = first.repeat_due or as_of
    words = kb.cardiac.say(
        "overdue",
        due=due.isoformat(),
        date=series[-1].date.isoformat(),
        name=_name(kb, first.drug),
        recheck=first.label.recheck,
    )
    return due, words


def judge(
    record: PatientRecord,
    kb: Knowledge,
    concerned: list[Concerned],
    base_start: date | None = None,
) -> CardiacVerdict | None:
    """Each concerned drug judged by its own label; None when nothing calls for a card.

    `base_start`: where the baseline of a drug not yet started is taken (default: the start of
    the earliest running drug among `concerned`; without one, the earliest LVEF recorded)."""
    series = sorted(record.lvef, key=lambda m: (m.date, m.source_id))
    hf = list(record.conditions_of("heart-failure"))
    running = [c.start for c in concerned if c.how == "running" and c.start is not None]
    if base_start is None and running:
        base_start = min(running)
    verdicts: list[DrugVerdict] = []
    ids: list[str] = []
    for c in dict((c.drug, c) for c in concerned).values():
        v, v_ids = _judge(kb, c, series, hf, base_start)
        verdicts.append(v)
        ids += v_ids
    if not any(v.action for v in verdicts):
        return None
    critical = float(kb.param("cardiac", "lvef_critical"))
    severe = (
        any(v.action == "discontinue" for v in verdicts)
        or bool(series and series[-1].value < critical)
        or any(_symptomatic(x, kb) for x in hf)
    )
    # only the label's "continue; repeat LVEF" row is met: continuing is what the label says
    concern = any(v.action not in (None, "recheck") for v in verdicts)
    due, overdue = _overdue(kb, verdicts, series, record.as_of)
    criteria = [_criteria(kb, series, base_start, due)] if series else []
    if hf:
        criteria.append(kb.cardiac.say("criteria_hf"))
    text = "LVEF series: " + ", ".join(f"{m.value:g}% ({m.date.isoformat()})" for m in series[-6:])
    return CardiacVerdict(
        verdicts=tuple(sorted(verdicts, key=lambda v: (v.action is None, v.drug))),
        severity="critical" if severe else "warning" if concern else "info",
        criteria="; ".join(criteria),
        series=text if series else "No LVEF on record",
        source_ids=tuple(dict.fromkeys(ids)),
        overdue=overdue,
    )
