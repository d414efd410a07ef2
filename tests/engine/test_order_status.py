"""Third outside review H1, M2, M5, C7: the order hooks carry the patient-view's line status.

An order card says "continue it until progression" only when the patient-view says "Continue
line N"; a single drug that is no regimen on its own is said to be none (never "the regimen for
line 3", never "stop trastuzumab first"); an order's rank is named; a drug a card says not to
give gets no baseline-LVEF or ILD-monitoring card. Real FHIR resources (tests/engine/test_lapse.py).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards import render_assessment
from engine import check_orders, load_knowledge
from engine.model import OrderFinding
from tests import builders as b
from tests.engine.test_lapse import AS_OF, TDXD, after_tdxd, day, hp_doses, triplet
from tests.engine_builders import assess_story, drug, her2_story, order, record_of

CONTINUE = "until progression"


def _findings(story: list[dict[str, Any]], *drugs: str) -> list[OrderFinding]:
    record = record_of(story, AS_OF)
    return check_orders(record, [order(d) for d in drugs], load_knowledge())


def _text(found: list[OrderFinding]) -> str:
    return "\n".join(f.summary + "\n" + f.detail for f in found)


def test_tdxd_reordered_while_her2_drugs_stopped_asks_why_not_continue() -> None:
    """00014 (H1): T-DXd failed in line 1; trastuzumab and tucatinib stopped, capecitabine on."""
    found = _findings(after_tdxd(*triplet(trastuzumab_last=92, tucatinib_end=61)), TDXD)
    progressed = [f for f in found if f.rule == "off-sequence" and "progressed" in f.summary]
    assert progressed, [f.summary for f in found]
    text = _text(found)
    assert CONTINUE not in text
    assert "Review line 2" in progressed[0].detail
    assert "resume trastuzumab + tucatinib" in progressed[0].detail
    assert "capecitabine alone is not a HER2-directed regimen" in progressed[0].detail


def test_lapatinib_alone_while_her2_drugs_stopped_is_no_regimen_and_asks_why() -> None:
    """00014 (H1, M2): lapatinib alone at order-select, beside capecitabine still given."""
    record = record_of(after_tdxd(*triplet(trastuzumab_last=92, tucatinib_end=61)), AS_OF)
    found = check_orders(record, [order("lapatinib")], load_knowledge(), complete=False)
    off = [f for f in found if f.rule == "off-sequence"]
    assert off, [f.summary for f in found]
    text = _text(off)
    assert CONTINUE not in text
    assert "the regimen for line" not in text
    assert "Lapatinib alone is not a recommended regimen" in text
    assert "ask why" in text


def test_lapatinib_alone_beside_running_trastuzumab_never_asks_to_stop_it() -> None:
    """00058 (M2): tucatinib stopped, trastuzumab + capecitabine go on."""
    record = record_of(after_tdxd(*triplet(trastuzumab_last=7, tucatinib_end=41)), AS_OF)
    found = check_orders(record, [order("lapatinib")], load_knowledge(), complete=False)
    text = _text([f for f in found if f.rule == "off-sequence"])
    assert text, [f.summary for f in found]
    assert "stop trastuzumab" not in text
    assert "the regimen for line" not in text
    assert CONTINUE not in text


def _hp_story() -> list[dict[str, Any]]:
    return her2_story(
        drug("docetaxel", "2024-01-10", "2024-05-01"),
        *hp_doses(),
        b.lvef(62, day(30)),
        met="2023-12-01",
    )


def test_next_line_order_on_running_hp_names_its_rank() -> None:
    """M5: T-DXd ordered while HP goes on is named with its rank, never 'the regimen'."""
    a = assess_story(_hp_story(), AS_OF)
    rec = a.recommendation
    assert rec is not None and rec.timing == "on-progression"
    found = check_orders(a.record, [order(TDXD)], load_knowledge())
    off = [f for f in found if f.rule == "off-sequence"]
    assert off, [f.summary for f in found]
    ids = [o.regimen.id for o in (rec.preferred, *rec.alternatives)]
    want = "the preferred regimen" if ids[0] == "tdxd" else f"alternative {ids.index('tdxd')}"
    assert f"It is T-DXd, {want} for line 2" in off[0].detail
    assert "the regimen for line" not in off[0].detail


def test_drug_the_disease_progressed_on_gets_no_monitoring_cards() -> None:
    """C7: T-DXd re-ordered after progression on it: no baseline-LVEF, no ILD monitoring."""
    found = _findings(after_tdxd(*triplet(trastuzumab_last=92, tucatinib_end=61)), TDXD)
    rules = [f.rule for f in found]
    assert "off-sequence" in rules
    assert "tdxd-ild-monitoring" not in rules
    assert not [f for f in found if f.rule in ("cardiac-lvef", "lvef-due") and TDXD in f.summary]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trastuzumab_last=st.one_of(st.none(), st.integers(min_value=1, max_value=150)),
    tucatinib_end=st.one_of(st.none(), st.integers(min_value=1, max_value=150)),
    drugs=st.sampled_from(
        [(TDXD,), ("lapatinib",), ("vinorelbine",), ("ado-trastuzumab emtansine",)]
    ),
)
def test_no_order_card_says_continue_when_the_patient_view_says_review(
    trastuzumab_last: int | None, tucatinib_end: int | None, drugs: tuple[str, ...]
) -> None:
    """Invariant: an order card says 'until progression' only when the patient-view's
    next-line card says 'Continue line N'."""
    story = after_tdxd(*triplet(trastuzumab_last, tucatinib_end))
    a = assess_story(story, AS_OF)
    view = render_assessment(a, "t")
    summaries = " ".join(c["summary"] for c in view)
    found = check_orders(a.record, [order(d) for d in drugs], load_knowledge(), complete=False)
    if "Review line" in summaries:
        assert CONTINUE not in _text(found)
    if CONTINUE in _text(found):
        assert "Continue line" in summaries
