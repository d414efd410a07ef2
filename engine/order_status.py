"""The status sentence of the current line on every order card: the patient-view's own state.

Third outside review H1/M5: the order hooks said "continue line 2 until progression" while the
patient-view of the same record said "Review line 2 ... ask why". Both now decide it alike: the
HER2-directed drugs of the line stopped with no progression recorded (engine/lapse.line_lapse),
or every HER2-directed drug still given held by a warning (as engine/lapse.on_hold), is a review;
only otherwise does an order card say "continue it until progression".
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.knowledge import Knowledge
from engine.lapse import ask_why, line_lapse
from engine.model import PatientRecord, Recommendation, RegimenOption


@dataclass(frozen=True)
class LineStatus:
    """The current line's state as the order cards say it."""

    review: bool  # the patient-view says "Review line N" (never "continue it")
    short: str  # "trastuzumab and tucatinib stopped: ask why" (review only)
    sentence: str


def rank(option: RegimenOption, rec: Recommendation) -> str:
    """ "the preferred regimen", or "alternative 2" as the next-line card numbers it."""
    if option is rec.preferred or option.regimen.id == rec.preferred.regimen.id:
        return "the preferred regimen"
    ids = [o.regimen.id for o in rec.alternatives]
    return f"alternative {ids.index(option.regimen.id) + 1}" if option.regimen.id in ids else ""


def _held(record: PatientRecord, kb: Knowledge, rec: Recommendation) -> tuple[str, str] | None:
    """(drugs, cards) when warnings hold every HER2-directed drug still given in the line."""
    from engine.safety import alerts  # the patient-view's own warnings (no import cycle)

    last = record.lines[-1]
    held: dict[str, None] = {}
    cards: dict[str, None] = {}
    for alert in alerts(record, kb, rec):
        mine = [d for d in alert.withhold if d in last.drugs]
        if mine:
            held.update(dict.fromkeys(mine))
            rule = kb.warnings.get(alert.rule)
            cards[(rule.short if rule and rule.short else "") or alert.rule] = None
    her2 = sorted(d for d in (last.current_drugs or last.drugs) if kb.is_her2_directed(d))
    if not her2 or not set(her2) <= set(held):
        return None
    return " + ".join(her2), " and the ".join(cards)


def line_status(
    record: PatientRecord, kb: Knowledge, rec: Recommendation | None
) -> LineStatus | None:
    """The status of the latest line while it goes on with no progression recorded (the
    recommendation's timing is on-progression); None otherwise."""
    last = record.lines[-1] if record.lines else None
    if rec is None or last is None or rec.timing != "on-progression":
        return None
    regimen = kb.regimens[rec.preferred.regimen.id].short
    nxt = f"line {rec.line} is {rec.preferred.regimen.name}"
    lapse = line_lapse(record, kb)
    if lapse is not None and not lapse.whole_line:
        alone = ""
        if not lapse.blockade_left and lapse.still:
            alone = f"; {' + '.join(lapse.still)} alone is not a HER2-directed regimen"
        return LineStatus(
            True,
            f"{lapse.names} {lapse.verb}: {lapse.action}",
            f"Review line {last.number} ({last.regimen_name}): no progression is recorded, but "
            f"{lapse.listed()} {lapse.verb}{alone}. {lapse.action.capitalize()}: "
            f"{ask_why(lapse, rec.line, regimen)}."
            # only a stop is "not as it is"; a missing renewal asks to confirm (review 4, C-n2)
            + (" Do not continue the line as it is." if lapse.verb == "stopped" else ""),
        )
    held = _held(record, kb, rec) if last.ongoing else None
    if held is not None:
        drugs, cards = held
        return LineStatus(
            True,
            f"{drugs} held: review",
            f"Review line {last.number} ({last.regimen_name}): the {cards} card says to hold "
            f"{drugs}, which leaves no HER2-directed drug of the line given; no progression is "
            f"recorded. Resume {drugs} once the reason to hold is resolved; on progression, "
            f"{nxt}.",
        )
    return LineStatus(
        False,
        "",
        f"Line {last.number} ({last.regimen_name}) is ongoing with no progression recorded: "
        f"continue it until progression or unacceptable toxicity; on progression, {nxt}.",
    )
