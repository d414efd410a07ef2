"""assess(record): scope, data needs, the next-line recommendation and the warnings."""

from __future__ import annotations

from engine.discordance import negative_scope_reason
from engine.knowledge import Knowledge, load_knowledge
from engine.lapse import on_hold
from engine.model import Alert, Assessment, DataNeed, PatientRecord, ReceptorStatus
from engine.next_line import NoRegimenError, recommend
from engine.one_click import one_click
from engine.safety import alerts
from engine.scope import not_in_scope_coded, stale_record

# Warnings that forbid any one-click order on this patient (CLINICAL.md section 4).
_BLOCKING_RULES = ("pregnancy-her2",)


def _orders_blocked(found: tuple[Alert, ...]) -> str:
    return next((a.summary for a in found if a.rule in _BLOCKING_RULES), "")


def assess(
    record: PatientRecord, kb: Knowledge | None = None, jurisdiction: str = "FDA"
) -> Assessment:
    """Decide for one patient. Out of scope (deceased, under 18, no breast cancer, HER2-negative)
    gives nothing; a stale record gives only a data-needed card."""
    knowledge = kb or load_knowledge()
    version = knowledge.version
    code, reason = not_in_scope_coded(record, knowledge)
    if reason:
        return Assessment(record, False, version, out_of_scope_reason=reason, reason_code=code)
    if not record.has_breast_cancer:
        return Assessment(
            record,
            False,
            version,
            out_of_scope_reason="no breast cancer on record",
            reason_code="not-breast-cancer",
        )
    her2 = record.her2.status
    if her2 is ReceptorStatus.NEGATIVE:
        reason = negative_scope_reason(record)
        return Assessment(
            record, False, version, out_of_scope_reason=reason, reason_code="her2-negative"
        )
    if not record.metastatic and record.non_metastatic_staging_ids:
        return Assessment(
            record,
            False,
            version,
            out_of_scope_reason="early-stage (non-metastatic) disease",
            reason_code="early-stage",
        )
    if not record.metastatic and her2 is not ReceptorStatus.POSITIVE:
        return Assessment(
            record,
            False,
            version,
            out_of_scope_reason="not known to be HER2-positive metastatic",
            reason_code="not-her2-positive-metastatic",
        )
    stale = stale_record(record, knowledge)
    if stale is not None:
        return Assessment(
            record,
            True,
            version,
            data_needs=(stale,),
            out_of_scope_reason=stale.summary,
            reason_code="stale-record",
            stale_record=True,
        )
    needs: list[DataNeed] = []
    if her2 in (ReceptorStatus.UNKNOWN, ReceptorStatus.EQUIVOCAL):
        results = record.her2.results
        needs.append(
            DataNeed(
                what="her2-status",
                summary=(
                    "HER2 status equivocal: ISH needed before choosing HER2-directed therapy"
                    if her2 is ReceptorStatus.EQUIVOCAL
                    else "HER2 status not found: needed before choosing therapy"
                ),
                detail=(
                    "Metastatic breast cancer is recorded, but no HER2 result (IHC, ISH, or a "
                    "HER2-positive/negative diagnosis) was found. No regimen is recommended until "
                    "HER2 status is known; test an accessible metastatic lesion if possible."
                    if not results
                    else "The latest HER2 result is equivocal (IHC 2+) with no ISH result. "
                    "No regimen is recommended until ISH confirms HER2 status."
                ),
                source_ids=tuple(r.source_id for r in results) + record.metastatic_source_ids,
            )
        )
    if not record.metastatic:
        needs.append(
            DataNeed(
                what="metastatic-status",
                summary="HER2+ breast cancer without staging: record metastatic status for advice",
                detail=(
                    "HER2-positive breast cancer is recorded, but no staging was found: no "
                    "metastasis (secondary cancer Condition, TNM M category, stage group). This "
                    "service advises on metastatic disease only; record the staging to get advice."
                ),
                source_ids=record.her2.source_ids,
            )
        )
        return Assessment(
            record, True, version, data_needs=tuple(needs), reason_code="metastatic-unknown"
        )
    if needs:
        return Assessment(
            record,
            True,
            version,
            alerts=alerts(record, knowledge, None),
            data_needs=tuple(needs),
            reason_code="her2-" + her2.value,
        )
    try:
        rec = recommend(record, knowledge, jurisdiction)
    except NoRegimenError as exc:
        return Assessment(
            record,
            True,
            version,
            alerts=alerts(record, knowledge, None),
            data_needs=(DataNeed("knowledge-gap", "No regimen fits: review manually", str(exc)),),
            reason_code="knowledge-gap",
        )
    found = alerts(record, knowledge, rec)
    clicks = one_click(record, knowledge, rec, found)
    rec = on_hold(rec, record, knowledge, clicks.holding)  # holding all of it is no "continue"
    return Assessment(
        record,
        True,
        version,
        recommendation=rec,
        alerts=found,
        orders_blocked=_orders_blocked(found),
        offered=clicks.offered,
        not_offered=clicks.not_offered,
        holding=clicks.holding,
    )
