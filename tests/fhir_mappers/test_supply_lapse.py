"""Orders whose supply ran out, partners dropped, and one-click orders while a stop is unexplained.

Third outside review, M1 (an active order's course ends when its supply runs out, CLINICAL.md 2.5
"active with no end in the past"; drugs prescribed together are judged together), M3 (margetuximab
was studied only with chemotherapy, SOPHIA), M4 and C3 (no one-click order while the card asks why
therapy stopped; T-DM1 restart with ILD on record), C8 (resume says the re-load). Real FHIR
resources through build_record, the engine API and the cards.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards import render_assessment
from engine import check_orders
from engine.model import Alert, Assessment
from tests import builders as b
from tests.engine_builders import RX, assess_story, drug, her2_story, order, record_of

AS_OF = "2025-06-01"
TDXD = "fam-trastuzumab deruxtecan"
TDM1 = "ado-trastuzumab emtansine"


def day(days_ago: int) -> str:
    return (date.fromisoformat(AS_OF) - timedelta(days=days_ago)).isoformat()


def supplied(name: str, written: str, days: int, status: str = "active") -> dict[str, Any]:
    """A MedicationRequest of an oral drug with a dispensed supply of `days` days."""
    r = b.request(RX.get(name), name, written, status=status)
    r["dispenseRequest"] = {
        "expectedSupplyDuration": {
            "value": days,
            "unit": "days",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    }
    return r


def after_tdxd(*line2: dict[str, Any]) -> list[dict[str, Any]]:
    """Line 1 T-DXd ended in progression; line 2 is `line2`."""
    return her2_story(
        drug(TDXD, "2021-02-01", "2024-10-01"),
        b.progression("2024-10-05"),
        b.lvef(60, day(20)),
        *line2,
    )


def triplet(last_written: int, trastuzumab_last: int = 7) -> list[dict[str, Any]]:
    """The tucatinib triplet from 2024-10-20: trastuzumab given every 21 days up to
    `trastuzumab_last` days ago; tucatinib and capecitabine written together every 21 days with a
    21-day supply, the last (still active) `last_written` days ago."""
    out: list[dict[str, Any]] = []
    last = date.fromisoformat(day(trastuzumab_last))
    k = (last - date.fromisoformat("2024-10-20")).days // 21
    out += b.doses(
        RX["trastuzumab"], "trastuzumab", (last - timedelta(days=21 * k)).isoformat(), k + 1
    )
    written = date.fromisoformat(day(last_written))
    for k in range((written - date.fromisoformat("2024-10-20")).days // 21, -1, -1):
        when = (written - timedelta(days=21 * k)).isoformat()
        status = "active" if k == 0 else "completed"
        out += [supplied("tucatinib", when, 21, status), supplied("capecitabine", when, 21, status)]
    return out


def lapse(a: Assessment) -> Alert | None:
    return next((x for x in a.alerts if x.rule == "her2-blockade-stopped"), None)


def test_a_supply_that_ran_out_ends_the_course_on_its_last_day_for_both_drugs() -> None:
    # written 41 days ago, supply to 20 days ago: tucatinib (30-day window) and capecitabine
    # (42-day window) had different answers on identical orders (M1)
    record = record_of(after_tdxd(*triplet(41)), AS_OF)
    ends = {e.drug: e.end for e in record.exposures if e.drug in ("tucatinib", "capecitabine")}
    assert ends == {
        "tucatinib": date.fromisoformat(day(20)),
        "capecitabine": date.fromisoformat(day(20)),
    }
    line = record.lines[-1]
    assert f"stopped {day(41)}" not in line.regimen_name
    assert f"not renewed since {day(41)}, supply to ~{day(20)}" in line.regimen_name


def test_the_lapse_card_says_not_renewed_and_asks_to_confirm() -> None:
    a = assess_story(after_tdxd(*triplet(41)), AS_OF)
    alert = lapse(a)
    assert alert is not None
    assert (
        alert.summary
        == "tucatinib not renewed in line 2, reason not recorded: confirm the course continues"
    )
    assert f"no new prescription or dose since {day(41)}, supply to ~{day(20)}" in alert.detail
    assert "last dose on" not in alert.detail.split("Still given")[0]


def test_a_supply_still_within_its_grace_is_ongoing() -> None:
    record = record_of(after_tdxd(*triplet(20)), AS_OF)
    assert all(e.ongoing for e in record.exposures if e.drug in ("tucatinib", "capecitabine"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    written=st.integers(min_value=0, max_value=150),
    supply=st.integers(min_value=7, max_value=90),
    status=st.sampled_from(["active", "completed"]),
)
def test_drugs_of_one_course_with_identical_orders_get_one_answer(
    written: int, supply: int, status: str
) -> None:
    """Two drugs written together with the same supply are ongoing or ended together, and end
    on the same day (tucatinib and capecitabine have different dosing windows)."""
    when = day(written)
    rs = after_tdxd(
        supplied("tucatinib", when, supply, status), supplied("capecitabine", when, supply, status)
    )
    record = record_of(rs, AS_OF)
    got = {
        e.drug: (e.ongoing, e.end)
        for e in record.exposures
        if e.drug in ("tucatinib", "capecitabine")
    }
    assert len(got) == 2
    assert got["tucatinib"] == got["capecitabine"]
    end = got["tucatinib"][1]
    if end is not None:
        assert end <= date.fromisoformat(AS_OF)
        assert end == min(
            date.fromisoformat(when) + timedelta(days=supply), date.fromisoformat(AS_OF)
        )


def margetuximab_line(capecitabine_written: int) -> list[dict[str, Any]]:
    """Line 2 margetuximab (active order, no supply) + capecitabine (21-day supplies, the last
    written `capecitabine_written` days ago)."""
    out = [
        b.request(None, "margetuximab", day(d), status="active" if d == 7 else "completed")
        for d in (91, 70, 49, 28, 7)
    ]
    out += [supplied("capecitabine", day(d), 21, "completed") for d in (91, 70)]
    out.append(supplied("capecitabine", day(capecitabine_written), 21, "active"))
    return out


def test_margetuximab_without_its_chemotherapy_partner_asks_not_continue() -> None:
    a = assess_story(after_tdxd(*margetuximab_line(70)), AS_OF)
    alert = lapse(a)
    assert alert is not None and alert.variant == "partner-stopped"
    assert alert.severity == "warning"
    assert alert.summary.startswith(
        f"capecitabine not recorded since {day(70)}, reason not recorded"
    )
    assert "margetuximab was studied only with chemotherapy (SOPHIA)" in alert.summary
    assert "confirm the partner continues, or review the line" in alert.summary
    cards = render_assessment(a, "t")
    assert not any(c["summary"].startswith("Continue line") for c in cards)


def test_margetuximab_with_its_partner_going_on_is_continued() -> None:
    a = assess_story(after_tdxd(*margetuximab_line(7)), AS_OF)
    assert lapse(a) is None


def tdm1_stopped_with_ild() -> list[dict[str, Any]]:
    """Line 2 T-DM1, two doses, then nothing and no reason; ILD on record."""
    return [
        *after_tdxd(*b.doses(RX[TDM1], TDM1, day(90), 2)),
        b.ild("2024-12-01"),
    ]


def test_no_one_click_order_while_the_stop_reason_is_not_recorded() -> None:
    a = assess_story(tdm1_stopped_with_ild(), AS_OF)
    alert = lapse(a)
    assert alert is not None and alert.variant == "line-stopped"
    assert a.offered == ()
    assert a.not_offered and all("reason not recorded" in why for _, why in a.not_offered)
    cards = render_assessment(a, "t")
    assert all(not c.get("suggestions") for c in cards)


def test_restarting_tdm1_with_ild_after_an_unexplained_stop_warns() -> None:
    resources = tdm1_stopped_with_ild()
    record = record_of(resources, AS_OF)
    found = [f for f in check_orders(record, [order(TDM1)]) if f.rule == "ild-restart"]
    assert len(found) == 1
    last = record.lines[-1].end
    assert last is not None
    assert found[0].severity == "warning"
    assert found[0].summary == (
        f"T-DM1 stopped {last.isoformat()}, reason not recorded; ILD on record: exclude T-DM1 "
        "pneumonitis before re-starting"
    )


def test_no_restart_warning_without_ild() -> None:
    record = record_of(after_tdxd(*b.doses(RX[TDM1], TDM1, day(90), 2)), AS_OF)
    assert not [f for f in check_orders(record, [order(TDM1)]) if f.rule == "ild-restart"]


def test_resume_says_the_trastuzumab_reload_after_a_long_gap() -> None:
    # trastuzumab last given 69 days ago, tucatinib and capecitabine go on: resume re-loads
    a = assess_story(after_tdxd(*triplet(20, trastuzumab_last=69)), AS_OF)
    alert = lapse(a)
    assert alert is not None
    assert f"resume trastuzumab, re-loading: trastuzumab last given on {day(69)}" in alert.detail
    assert "re-load 8 mg/kg, then 6 mg/kg" in alert.detail


def test_resume_without_a_reload_when_trastuzumab_is_on_schedule() -> None:
    a = assess_story(after_tdxd(*triplet(41, trastuzumab_last=7)), AS_OF)
    alert = lapse(a)
    assert alert is not None
    assert "re-load" not in alert.detail


def test_an_order_beside_a_supply_that_ran_out_asks_to_confirm_not_to_stop() -> None:
    """Fourth outside review C-n2: the order cards said "stopped ... if it goes on, record the new
    prescription ... Do not continue the line as it is" for a prescription not yet renewed."""
    record = record_of(after_tdxd(*triplet(41)), AS_OF)
    findings = check_orders(record, [order(TDXD)])
    text = " ".join(f.summary + " " + f.detail for f in findings)
    assert "not renewed" in text, text
    assert "Do not continue the line as it is" not in text
    assert "capecitabine and tucatinib stopped" not in text
