"""Which next-line options may be one click away, and what "continue" must say it holds
(CLINICAL.md "Cards in one answer agree with each other").

An option whose orders the service's own order checks would flag (warning or critical) for this
patient is never offered as a one-click order; a "continue line N" beside a warning that says to
withhold a drug of that line names the drug held and the card that says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.knowledge import Knowledge
from engine.lapse import NOT_RECORDED, line_lapse
from engine.model import Alert, PatientRecord, Recommendation
from engine.order_fixes import why_not
from engine.orders import proposal_findings


@dataclass(frozen=True)
class OneClick:
    """The options offered as one-click orders, and why the others are not."""

    offered: tuple[str, ...]  # regimen ids, best first
    not_offered: tuple[tuple[str, str], ...]  # (regimen id, why its orders would be flagged)
    holding: tuple[tuple[str, str], ...]  # (drugs of the current line held, the card's short name)


def _holding(
    record: PatientRecord, kb: Knowledge, found: tuple[Alert, ...]
) -> tuple[tuple[str, str], ...]:
    last = record.lines[-1] if record.lines else None
    if last is None or not last.ongoing:
        return ()
    out: list[tuple[str, str]] = []
    for alert in found:
        held = [d for d in alert.withhold if d in last.drugs]
        if held:
            name = kb.warnings[alert.rule].short if alert.rule in kb.warnings else ""
            out.append((", ".join(held), name or alert.rule))
    return tuple(dict.fromkeys(out))


def one_click(
    record: PatientRecord, kb: Knowledge, rec: Recommendation, found: tuple[Alert, ...]
) -> OneClick:
    """Check every option's orders as order-sign would, and collect what "continue" holds."""
    offered: list[str] = []
    not_offered: list[tuple[str, str]] = []
    if rec.timing == "on-progression":
        # the current line goes on with no progression recorded: the next line is shown for
        # when she progresses, not one click away now (outside clinical review: T-DXd could be
        # signed on top of running HP maintenance)
        last = record.lines[-1] if record.lines else None
        why = (
            f"line {last.number} ({last.regimen_name}) is ongoing with no progression recorded; "
            "order the next line on progression"
            if last is not None
            else "the current line is ongoing with no progression recorded"
        )
        not_offered = [(o.regimen.id, why) for o in (rec.preferred, *rec.alternatives)]
        return OneClick((), tuple(not_offered), _holding(record, kb, found))
    lapse = line_lapse(record, kb)
    if lapse is not None and lapse.reason == NOT_RECORDED:
        # One policy while a card asks why therapy stopped (third outside review, M4 and C3):
        # no next-line or restart order is one click away until the reason is recorded (a
        # restart of a drug stopped for pneumonitis, or a next line for a mere break).
        why = (
            f"{lapse.names} {lapse.verb} with the reason not recorded: record why "
            "(progression: order the next line; toxicity or a break: resume) before ordering"
        )
        not_offered = [(o.regimen.id, why) for o in (rec.preferred, *rec.alternatives)]
        return OneClick((), tuple(not_offered), _holding(record, kb, found))
    for option in (rec.preferred, *rec.alternatives):
        if option.not_orderable:
            # e.g. its endocrine agent must be one not yet failed: the clinician chooses it
            not_offered.append((option.regimen.id, option.not_orderable))
            continue
        flagged = proposal_findings(record, option.regimen.components, kb, rec)
        if flagged:
            not_offered.append((option.regimen.id, why_not(flagged)))
        else:
            offered.append(option.regimen.id)
    return OneClick(tuple(offered), tuple(not_offered), _holding(record, kb, found))
