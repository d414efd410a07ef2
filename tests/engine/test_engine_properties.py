"""Property-based invariants of the engine over generated patients (hypothesis).

Records are built directly (engine API) from random treatment histories drawn from the regimens
of the knowledge base, random HER2 status, ILD, brain metastases, HR status and jurisdiction.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import assess, check_orders, load_knowledge
from engine.model import Assessment, PatientRecord, ReceptorStatus, RegimenOption
from tests.engine_builders import direct_line, direct_record, order

KB = load_knowledge()
TDXD = "fam-trastuzumab deruxtecan"
REGIMEN_DRUGS = sorted({tuple(sorted(r.regimen.drugs)) for r in KB.regimens.values()})
EXTRA = [("capecitabine",), ("vinorelbine",), ("letrozole",), ("lapatinib",), ("trastuzumab",)]


@st.composite
def records(draw: st.DrawFn) -> tuple[PatientRecord, str]:
    n = draw(st.integers(min_value=0, max_value=5))
    start = date(2021, 2, 1)
    lines = []
    for i in range(n):
        drugs = draw(st.sampled_from(REGIMEN_DRUGS + EXTRA))
        length = draw(st.integers(min_value=60, max_value=500))
        last = i == n - 1
        ongoing = last and draw(st.booleans())
        end = None if ongoing else start + timedelta(days=length)
        progressed = draw(st.booleans()) if not ongoing else False
        lines.append(direct_line(i + 1, drugs, start, end, progressed))
        start = start + timedelta(days=length + 10)
    record = direct_record(
        lines=lines,
        her2=draw(st.sampled_from(list(ReceptorStatus))),
        hr_positive=draw(st.booleans()),
        ild=draw(st.booleans()),
        brain=draw(st.booleans()),
        extracranial=draw(st.booleans()),
        as_of=start,
    )
    return record, draw(st.sampled_from(["FDA", "EMA"]))


def _options(a: Assessment) -> list[RegimenOption]:
    rec = a.recommendation
    return [] if rec is None else [rec.preferred, *rec.alternatives]


def _failed(record: PatientRecord) -> set[str]:
    return {
        d
        for ln in record.lines
        if ln.ended_in_progression
        for d in ln.drugs
        if KB.is_her2_directed(d)
    }


def _eligible_untried(record: PatientRecord, failed: set[str], prior: int) -> list[str]:
    ild = bool(record.conditions_of("ild"))
    out = []
    for rid, rule in KB.regimens.items():
        if ild and TDXD in rule.regimen.drugs:
            continue
        if rule.hr_positive_only and not record.hr_positive:
            continue
        if prior < rule.min_prior_her2_lines:
            continue
        if not set(rule.key_agents) & failed:
            out.append(rid)
    return out


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(records())
def test_never_tdxd_with_ild_on_record(case: tuple[PatientRecord, str]) -> None:
    """CLINICAL.md section 3: "ILD/pneumonitis ever: T-DXd (alone or with pertuzumab) is not
    offered" - neither preferred nor alternative."""
    record, jurisdiction = case
    a = assess(record, KB, jurisdiction)
    if record.conditions_of("ild"):
        assert all(TDXD not in o.regimen.drugs for o in _options(a))


@SETTINGS
@given(records())
def test_never_a_failed_key_agent_while_an_untried_regimen_exists(
    case: tuple[PatientRecord, str],
) -> None:
    """CLINICAL.md section 3: "Never re-offer an agent that already failed (progression on it)
    unless nothing else is left"."""
    record, jurisdiction = case
    a = assess(record, KB, jurisdiction)
    if a.recommendation is None:
        return
    failed = _failed(record)
    untried = _eligible_untried(record, failed, a.recommendation.prior_her2_lines)
    offered_failed = [
        o.regimen.id for o in _options(a) if set(KB.regimens[o.regimen.id].key_agents) & failed
    ]
    assert not (offered_failed and untried), (offered_failed, untried)


@SETTINGS
@given(records())
def test_her2_negative_or_unknown_never_gets_a_regimen(case: tuple[PatientRecord, str]) -> None:
    """CLINICAL.md section 3: "unknown HER2 status gives no regimen, only a card asking for it";
    section 5: HER2-negative gets no cards."""
    record, jurisdiction = case
    a = assess(record, KB, jurisdiction)
    if record.her2.status is not ReceptorStatus.POSITIVE:
        assert a.recommendation is None
    if record.her2.status is ReceptorStatus.NEGATIVE:
        assert not a.in_scope and not a.alerts
    if record.her2.status in (ReceptorStatus.UNKNOWN, ReceptorStatus.EQUIVOCAL):
        assert [n.what for n in a.data_needs] == ["her2-status"]


@SETTINGS
@given(records())
def test_unapproved_never_preferred_over_an_approved_option(
    case: tuple[PatientRecord, str],
) -> None:
    """CLINICAL.md section 3: jurisdiction marks what is not approved; seeds: never preferred when
    an approved option exists."""
    record, jurisdiction = case
    options = _options(assess(record, KB, jurisdiction))
    if options and any(o.approved for o in options):
        assert options[0].approved
    for o in options:
        assert o.approved == (jurisdiction in o.regimen.approvals)


@SETTINGS
@given(records())
def test_every_warning_is_worded_and_sourced(case: tuple[PatientRecord, str]) -> None:
    """CLINICAL.md: "every card says why, cites its evidence"."""
    record, jurisdiction = case
    a = assess(record, KB, jurisdiction)
    for alert in a.alerts:
        assert alert.summary and alert.detail and alert.evidence
        assert "{" not in alert.summary + alert.detail
        assert alert.severity in ("info", "warning", "critical")
    if a.recommendation is not None:
        assert a.recommendation.reasons and a.recommendation.timing in ("now", "on-progression")
        assert a.recommendation.line == len(record.lines) + 1


@SETTINGS
@given(
    records(),
    st.lists(
        st.tuples(
            st.sampled_from(sorted(KB.drugs)),
            st.sampled_from([None, 3.6, 4.4, 5.4, 6.4, 8.0]),
            st.sampled_from([None, *sorted(KB.drugs)]),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_order_checks_are_well_formed_and_never_suggest_tdxd_with_ild(
    case: tuple[PatientRecord, str], drafts: list[tuple[str, float | None, str | None]]
) -> None:
    """CLINICAL.md section 4: every finding names its order and, when it offers a fix, a real
    regimen component; with ILD on record the fix is never T-DXd."""
    record, jurisdiction = case
    orders = [
        order(
            drug,
            rid=f"MedicationRequest/d{i}",
            dose=(dose, "mg/kg") if dose else None,
            text_drug=text if text != drug else None,
        )
        for i, (drug, dose, text) in enumerate(drafts)
    ]
    ids = {o.resource_id for o in orders}
    for f in check_orders(record, orders, KB, jurisdiction):
        assert f.order_id in ids and f.summary and f.detail and f.evidence
        assert "{" not in f.summary + f.detail
        if f.replacement is not None:
            assert f.replacement.drug in KB.drugs and f.replacement.component.dose
            assert f.replacement.action in ("replace", "add")
            if record.conditions_of("ild"):
                assert f.replacement.drug != TDXD
