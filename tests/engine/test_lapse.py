"""HER2-directed drugs of the current line that stopped with no progression recorded.

CLINICAL.md section 2 rule 5 (a line records its stop reason; an ongoing line is named by what
is still given) and section 4 (her2-blockade-stopped); outside reviews, first pass 1, 5, 16 and
second pass N6, N9, N12, N17: the cards name each stopped drug with its last dose, say the reason
is not recorded, and ask why (progression: the next line now; toxicity or a break: resume);
they never say "continue line N until progression" then. Real FHIR resources throughout.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards import render_assessment
from cards.timeline import timeline_page
from engine import Assessment, check_orders, load_knowledge
from engine.model import Alert
from her2cds_cli.report import describe
from tests import builders as b
from tests.engine_builders import assess_story, drug, her2_story, order, record_of

AS_OF = "2025-06-01"
TDXD = "fam-trastuzumab deruxtecan"
HP = ["pertuzumab", "trastuzumab"]


def day(days_ago: int) -> str:
    return (date.fromisoformat(AS_OF) - timedelta(days=days_ago)).isoformat()


def after_tdxd(*line2: dict[str, Any], er: bool = False) -> list[dict[str, Any]]:
    """Line 1 T-DXd ended in progression; line 2 is `line2` (started 2024-10-20)."""
    return her2_story(
        drug(TDXD, "2021-02-01", "2024-10-01"),
        b.progression("2024-10-05"),
        b.lvef(60, day(20)),
        *line2,
        er=er,
    )


def every_21_days(rx: str | None, name: str, first: str, last_days_ago: int) -> list[Any]:
    """Administrations every 21 days, the last exactly `last_days_ago` days before AS_OF and
    the first within 21 days after `first`."""
    last = date.fromisoformat(day(last_days_ago))
    k = (last - date.fromisoformat(first)).days // 21
    return b.doses(rx, name, (last - timedelta(days=21 * k)).isoformat(), k + 1)


def trastuzumab_doses(last_days_ago: int) -> list[dict[str, Any]]:
    return every_21_days("224905", "trastuzumab", "2024-10-20", last_days_ago)


def hp_doses(last_days_ago: int = 7) -> list[dict[str, Any]]:
    """HP maintenance from 2024-01-10, given every 21 days up to `last_days_ago`."""
    return [
        *every_21_days("1298944", "pertuzumab", "2024-01-10", last_days_ago),
        *every_21_days("224905", "trastuzumab", "2024-01-10", last_days_ago),
    ]


def triplet(trastuzumab_last: int | None, tucatinib_end: int | None) -> list[dict[str, Any]]:
    """The tucatinib triplet from 2024-10-20: capecitabine goes on; trastuzumab last dosed
    `trastuzumab_last` days ago (None: not given), tucatinib ended that many days ago (None:
    still given)."""
    out = [drug("capecitabine", "2024-10-20", status="active")]
    if trastuzumab_last is not None:
        out += trastuzumab_doses(trastuzumab_last)
    end = day(tucatinib_end) if tucatinib_end is not None else None
    out.append(drug("tucatinib", "2024-10-20", end, status="completed" if end else "active"))
    return out


def lapse_alert(a: Assessment) -> Alert | None:
    return next((x for x in a.alerts if x.rule == "her2-blockade-stopped"), None)


def next_line_card(a: Assessment) -> dict[str, Any]:
    cards = render_assessment(a, "t")
    return next(c for c in cards if c["extension"]["org.her2cds"]["kind"] == "next-line")


def all_text(a: Assessment) -> str:
    return "\n".join(c["summary"] + "\n" + c.get("detail", "") for c in render_assessment(a, "t"))


def test_blockade_stopped_in_an_ongoing_line_names_each_drug_and_asks_why() -> None:
    """00014: trastuzumab and tucatinib stopped, capecitabine goes on, no progression."""
    a = assess_story(after_tdxd(*triplet(trastuzumab_last=92, tucatinib_end=61)), AS_OF)
    alert = lapse_alert(a)
    assert alert is not None and alert.severity == "warning"
    assert "trastuzumab and tucatinib" in alert.summary and "reason not recorded" in alert.summary
    assert f"trastuzumab (last dose on {day(92)}, reason not recorded)" in alert.detail
    assert f"tucatinib (last dose on {day(61)}, reason not recorded)" in alert.detail
    assert "if they stopped for progression, record the progression and start line 3" in (
        alert.detail
    )
    assert "resume trastuzumab + tucatinib" in alert.detail
    assert "do not continue it alone" in alert.detail
    text = all_text(a)
    assert "Continue line 2" not in text
    assert "continue it until progression" not in text
    assert "from continuing it" not in text
    card = next_line_card(a)
    assert card["summary"].startswith("Review line 2 (capecitabine; trastuzumab stopped")
    assert card["indicator"] == "warning"
    assert "Why trastuzumab and tucatinib stopped: progression makes line 3" in card["detail"]


def test_one_her2_drug_stopped_while_trastuzumab_goes_on_is_asked_about() -> None:
    """00058: tucatinib stopped, trastuzumab + capecitabine continue: said, and no misnomer
    "trastuzumab maintenance with capecitabine" (capecitabine is the chemotherapy)."""
    a = assess_story(after_tdxd(*triplet(trastuzumab_last=7, tucatinib_end=41)), AS_OF)
    alert = lapse_alert(a)
    assert alert is not None
    assert alert.summary.startswith("tucatinib stopped in line 2, reason not recorded")
    assert "resume tucatinib" in alert.detail and "Still given: capecitabine, trastuzumab" in (
        alert.detail
    )
    line = a.record.lines[-1]
    assert line.regimen_name == f"capecitabine + trastuzumab; tucatinib stopped {day(41)}"
    assert "maintenance" not in line.regimen_name
    assert "Continue line 2" not in all_text(a)
    assert "has no HER2-directed agent" not in all_text(a)  # trastuzumab is still given


def test_whole_line_stopped_without_reason_asks_before_the_next_line() -> None:
    """00010 (N12): THP/HP last given 2 months ago, no progression and no stop reason."""
    story = her2_story(
        drug("docetaxel", "2024-01-10", "2024-05-01"),
        drug("pertuzumab", "2024-01-10", day(60)),
        drug("trastuzumab", "2024-01-10", day(55)),
        b.lvef(60, day(20)),
        met="2023-12-01",
    )
    a = assess_story(story, AS_OF)
    assert a.recommendation is not None and a.recommendation.timing == "now"
    alert = lapse_alert(a)
    assert alert is not None
    assert alert.summary == (
        f"HER2-directed therapy stopped {day(55)}, reason not recorded: ask why before line 2"
    )
    assert "start line 2 (T-DXd) now" in alert.detail
    assert "resume pertuzumab + trastuzumab" in alert.detail
    assert "docetaxel (last dose" not in alert.detail  # the induction chemotherapy ended as planned
    card = next_line_card(a)
    assert card["indicator"] == "warning"
    assert "toxicity or a break means resuming pertuzumab + trastuzumab" in card["detail"]


def test_progression_recorded_is_no_lapse() -> None:
    """Control: the same stop with progression recorded is a plain switch (no lapse card)."""
    story = after_tdxd(*triplet(trastuzumab_last=92, tucatinib_end=61), b.progression(day(50)))
    a = assess_story(story, AS_OF)
    alert = lapse_alert(a)
    assert alert is None or "ask why" not in alert.summary


def test_hp_maintenance_is_no_lapse_and_continues() -> None:
    """Control: docetaxel stopping under HP is maintenance, not a stopped drug to ask about."""
    story = her2_story(
        drug("docetaxel", "2024-01-10", "2024-05-01"),
        *hp_doses(),
        b.lvef(60, day(20)),
        met="2023-12-01",
    )
    a = assess_story(story, AS_OF)
    assert lapse_alert(a) is None
    assert a.record.lines[0].regimen_name == "HP maintenance (pertuzumab + trastuzumab)"
    assert next_line_card(a)["summary"].startswith("Continue line 1 (HP maintenance")


def test_holding_every_her2_drug_of_the_line_is_review_not_continue() -> None:
    """00064 (N9): the cardiac card holds pertuzumab and trastuzumab: nothing of HP is given."""
    story = her2_story(
        drug("docetaxel", "2024-01-10", "2024-05-01"),
        *hp_doses(),
        b.lvef(68, "2024-01-05"),
        b.lvef(42, day(10)),
        met="2023-12-01",
    )
    a = assess_story(story, AS_OF)
    card = next_line_card(a)
    assert card["summary"].startswith("Review line 1")
    assert "Continue the current line" not in card["detail"]
    assert "leaves no HER2-directed drug of line 1 given" in card["detail"]
    assert "continue it until progression" not in card["detail"]
    assert "from continuing it" not in card["detail"]


def test_stopped_endocrine_therapy_is_said_not_added_again() -> None:
    """00148 (first pass 5): letrozole was added to HP and is no longer given: never "add
    endocrine therapy" over it; the line says it stopped."""
    story = her2_story(
        drug("docetaxel", "2024-01-10", "2024-05-01"),
        *hp_doses(),
        drug("letrozole", "2024-05-20", day(50)),
        b.lvef(60, day(20)),
        er=True,
        met="2023-12-01",
    )
    a = assess_story(story, AS_OF)
    text = all_text(a)
    assert "add endocrine therapy (e.g." not in text
    assert f"letrozole (last recorded {day(50)}) was added to the antibody maintenance" in text
    assert a.record.lines[0].regimen_name == (
        f"HP maintenance (pertuzumab + trastuzumab); letrozole stopped {day(50)}"
    )


def test_endocrine_therapy_given_is_named_in_the_maintenance() -> None:
    story = her2_story(
        drug("docetaxel", "2024-01-10", "2024-05-01"),
        *hp_doses(),
        drug("letrozole", day(100), status="active"),
        b.lvef(60, day(20)),
        er=True,
        met="2023-12-01",
    )
    a = assess_story(story, AS_OF)
    assert a.record.lines[0].regimen_name == "HP + letrozole maintenance"
    assert "add endocrine therapy (e.g." not in all_text(a)


def test_sequential_chemotherapy_then_endocrine_line_is_named_in_sequence() -> None:
    """N17 (00092, 00084): THP, then HP + letrozole, ended by progression: not one regimen."""
    story = her2_story(
        drug("paclitaxel", "2021-02-01", "2021-06-01"),
        *(drug(d, "2021-02-01", "2022-06-01") for d in HP),
        drug("letrozole", "2021-06-20", "2022-06-01"),
        b.progression("2022-06-05"),
        drug(TDXD, "2022-06-20", status="active"),
        er=True,
    )
    first = record_of(story, "2022-09-01").lines[0]
    assert first.regimen_name == "THP then HP + letrozole maintenance"


def test_concurrent_chemotherapy_and_endocrine_is_not_named_a_sequence() -> None:
    story = her2_story(
        drug("paclitaxel", "2021-02-01", "2021-06-01"),
        *(drug(d, "2021-02-01", "2022-06-01") for d in HP),
        drug("letrozole", "2021-03-01", "2022-06-01"),
        b.progression("2022-06-05"),
        drug(TDXD, "2022-06-20", status="active"),
        er=True,
    )
    assert " then " not in record_of(story, "2022-09-01").lines[0].regimen_name


def test_stopped_chemotherapy_partner_of_margetuximab_is_named() -> None:
    """N17 (00059): margetuximab goes on after capecitabine stopped: the name says so."""
    story = after_tdxd(
        b.statement(None, "margetuximab", "2024-10-20", status="active"),
        drug("capecitabine", "2024-10-20", "2025-03-01"),
    )
    line = record_of(story, AS_OF).lines[-1]
    assert line.ongoing and line.regimen_name == "margetuximab; capecitabine stopped 2025-03-01"


def test_order_while_blockade_lapsed_asks_why_and_never_says_continue() -> None:
    """First pass 1: the off-sequence order card does not say "continue line 2 until
    progression" when its HER2-directed drugs stopped with no reason recorded."""
    record = record_of(after_tdxd(*triplet(trastuzumab_last=92, tucatinib_end=61)), AS_OF)
    findings = check_orders(record, [order("vinorelbine")], load_knowledge())
    off = [f for f in findings if f.rule == "off-sequence"]
    assert off, [f.rule for f in findings]
    assert "trastuzumab and tucatinib stopped: ask why first" in off[0].summary
    assert "continue" not in off[0].summary.lower()
    assert "start line 3" in off[0].detail and "resume trastuzumab + tucatinib" in off[0].detail


def test_hormone_receptor_status_not_recorded_is_said_so() -> None:
    """Issue: "HR-negative or unknown" in the CLI report and timeline page: say what is
    recorded (CLINICAL.md section 1)."""
    a = assess_story(her2_story(drug(TDXD, "2024-10-20", status="active"), er=None), AS_OF)
    report = describe(a, render_assessment(a, "t"))
    assert "negative or unknown" not in report and "(HR not recorded)" in report
    page = timeline_page(a.record, a.knowledge_version)
    assert "negative or unknown" not in page and "not recorded" in page
    negative = assess_story(her2_story(drug(TDXD, "2024-10-20", status="active")), AS_OF)
    assert "(not HR-positive; PR not recorded)" in describe(negative, [])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trastuzumab_last=st.one_of(st.none(), st.integers(min_value=1, max_value=150)),
    tucatinib_end=st.one_of(st.none(), st.integers(min_value=1, max_value=150)),
)
def test_no_card_says_continue_while_a_her2_drug_of_the_line_is_reported_stopped(
    trastuzumab_last: int | None, tucatinib_end: int | None
) -> None:
    """Invariant: whenever a HER2-directed drug of the current line is reported stopped with
    no reason, no card says "continue line N" or "continue it until progression", and the
    stopped drug is named with its last dose."""
    a = assess_story(after_tdxd(*triplet(trastuzumab_last, tucatinib_end)), AS_OF)
    alert = lapse_alert(a)
    text = all_text(a)
    line = a.record.lines[-1]
    if alert is not None and "reason not recorded" in alert.summary:
        assert f"Continue line {line.number}" not in text
        assert "continue it until progression" not in text
        assert "last dose on" in alert.detail
    stopped_her2 = [
        e
        for e in a.record.exposures
        if e.drug in ("trastuzumab", "tucatinib")
        and e.end is not None
        and set(e.source_ids) & set(line.source_ids)
    ]
    if line.ongoing and stopped_her2:
        assert alert is not None and "reason not recorded" in alert.summary
        assert f"Continue line {line.number}" not in text


def test_stopped_drug_with_ild_on_record_asks_whether_pneumonitis_stopped_it() -> None:
    """00149 (N16): T-DM1 stopped after two doses, reason not recorded, ILD on record."""
    story = her2_story(
        *(drug(d, "2021-02-01", "2024-06-01") for d in (*HP, "docetaxel")),
        b.progression("2024-06-05"),
        *b.doses("1371041", "ado-trastuzumab emtansine", day(100), 2),
        b.ild("2023-01-01"),
        b.lvef(60, day(20)),
    )
    a = assess_story(story, AS_OF)
    alert = lapse_alert(a)
    assert alert is not None and alert.summary.startswith("HER2-directed therapy stopped")
    assert "ask whether it was the reason; if so, do not resume T-DM1" in alert.detail


def test_a_recorded_stop_reason_is_quoted_not_called_missing() -> None:
    """The card says the recorded reason (CLINICAL.md 2.5: a line records its stop reason)."""
    tucatinib = drug("tucatinib", "2024-10-20", day(41), status="stopped")
    tucatinib["statusReason"] = [{"text": "grade 3 diarrhoea"}]
    story = after_tdxd(drug("capecitabine", "2024-10-20", status="active"), tucatinib)
    story += trastuzumab_doses(7)
    alert = lapse_alert(assess_story(story, AS_OF))
    assert alert is not None
    assert "stop reason recorded: grade 3 diarrhoea" in alert.detail
    assert "reason not recorded" not in alert.detail + alert.summary


def _whole_line_stopped() -> list[dict[str, Any]]:
    return her2_story(
        drug("docetaxel", "2024-01-10", "2024-05-01"),
        drug("pertuzumab", "2024-01-10", day(60)),
        drug("trastuzumab", "2024-01-10", day(55)),
        b.lvef(60, day(20)),
        met="2023-12-01",
    )


@pytest.mark.parametrize(
    "ordered", ["fam-trastuzumab deruxtecan", "lapatinib", "ado-trastuzumab emtansine"]
)
def test_orders_while_the_stop_reason_is_asked_say_so_and_offer_no_fix(ordered: str) -> None:
    """Fourth outside review N2 (00010, 00149): the patient view asks why the line stopped and
    offers no one-click order; every order set then says the same, with no one-click fix."""
    record = record_of(_whole_line_stopped(), AS_OF)
    findings = check_orders(record, [order(ordered)], load_knowledge())
    asked = [f for f in findings if f.rule == "her2-blockade-stopped"]
    assert len(asked) == 1 and asked[0].severity == "warning"
    assert asked[0].summary == (
        "Line 1 stopped with the reason not recorded: record why before ordering"
    )
    assert "start line 2 (T-DXd) now" in asked[0].detail
    assert not [f for f in findings if f.replacement is not None], findings


def test_no_stop_reason_card_when_the_line_ended_in_progression() -> None:
    record = record_of(
        [*_whole_line_stopped(), b.progression(day(50))],
        AS_OF,
    )
    findings = check_orders(record, [order("fam-trastuzumab deruxtecan")], load_knowledge())
    assert not [f for f in findings if f.rule == "her2-blockade-stopped"]


def test_tdxd_with_ild_while_the_stop_reason_is_asked_names_no_replacement() -> None:
    """Re-check of review 4: beside "if for toxicity or a break, resume ...", the critical T-DXd
    card said "use <next line>": what replaces T-DXd depends on why the line stopped."""
    record = record_of([*_whole_line_stopped(), b.ild(day(40))], AS_OF)
    findings = check_orders(record, [order("fam-trastuzumab deruxtecan")], load_knowledge())
    (ild,) = [f for f in findings if f.rule == "tdxd-ild"]
    assert ild.severity == "critical"
    assert ild.summary.endswith("do not start T-DXd")
    assert "if it stopped for progression" in ild.detail and ild.replacement is None


@pytest.mark.parametrize("with_trastuzumab", [False, True], ids=["tdxd-alone", "tdxd-and-h"])
def test_tdxd_stopped_with_ild_on_record_is_never_offered_again(with_trastuzumab: bool) -> None:
    """Fifth outside review F1 (population synth-00034): T-DXd stopped two days after
    pneumonitis was recorded, no reason on the order. CLINICAL.md 3: with ILD ever on record
    T-DXd is not offered, also when it was given and stopped: never re-challenge. The card that
    asks why may not say 'resume T-DXd'; the other drugs it names may still be resumed."""
    story = her2_story(
        *(drug(d, "2021-02-01", "2024-06-01") for d in (*HP, "docetaxel")),
        b.progression("2024-06-05"),
        drug(TDXD, "2024-06-20", day(60)),
        *([drug("trastuzumab", "2024-06-20", day(60))] if with_trastuzumab else []),
        b.ild(day(62)),
        b.lvef(60, day(20)),
    )
    a = assess_story(story, AS_OF)
    alert = lapse_alert(a)
    assert alert is not None and alert.summary.startswith("HER2-directed therapy stopped")
    text = all_text(a)
    assert not re.search(rf"(?<!not )resum(e|ing) [^.;(:]*{TDXD}", text)
    if with_trastuzumab:
        assert "if for toxicity or a break, resume trastuzumab" in alert.detail
        assert f"(not {TDXD}: interstitial lung disease is on record)" in alert.detail
    else:
        assert (
            f"if for toxicity or a break, do not resume {TDXD}: interstitial lung disease is on "
            "record (never re-challenge)"
        ) in alert.detail
    assert a.recommendation is not None
    assert TDXD not in a.recommendation.preferred.regimen.drugs
