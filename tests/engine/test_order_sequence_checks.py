"""Order checks against the sequence (CLINICAL.md sections 3 and 4, second outside review N1, N2,
N7, N10; first-pass findings 6 and 7): re-ordering an agent that failed, off-sequence orders
whatever else is flagged, the next line ordered while the current one goes on, and HER2-directed
orders while HER2 is not confirmed. Through the order-select / order-sign hooks with FHIR data."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import check_orders, load_knowledge
from engine.model import ReceptorStatus
from tests import builders as b
from tests.conftest import her2_ext, hook_request
from tests.engine_builders import direct_line, direct_record, drug, her2_story, order, regimen

AS_OF = date(2022, 6, 15)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
THP = ["pertuzumab", "trastuzumab", "docetaxel"]
TDXD = "fam-trastuzumab deruxtecan"
TRIPLET = ["tucatinib", "trastuzumab", "capecitabine"]
FLAGGED = ("warning", "critical")
# how an EHR sends each drafted drug (RxNorm where CLINICAL.md gives a verified code, else text)
DRAFT = {
    "tdxd": (None, "fam-trastuzumab deruxtecan 5.4 mg/kg IV q3w"),
    "tdm1": ("1371041", "ado-trastuzumab emtansine 3.6 mg/kg IV q3w"),
    "lapatinib": ("480167", "lapatinib 1250 mg PO daily"),
    "capecitabine": ("194000", "capecitabine 1000 mg/m2 PO BID"),
    "pertuzumab": ("1298944", "pertuzumab 420 mg IV q3w"),
    "trastuzumab": ("224905", "trastuzumab 6 mg/kg IV q3w"),
    "tucatinib": ("2361290", "tucatinib 300 mg PO BID"),
}

pytestmark = pytest.mark.usefixtures("at_as_of")


@pytest.fixture
def at_as_of(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: AS_OF)


def _draft(key: str, rid: str) -> dict[str, Any]:
    code, text = DRAFT[key]
    concept: dict[str, Any] = {"text": text}
    if code:
        concept["coding"] = [{"system": RXNORM, "code": code}]
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": concept,
    }


def _hook(client: FlaskClient, story: list[dict[str, Any]], hook: str, *keys: str) -> list[Any]:
    drafts = [_draft(k, f"d{i}") for i, k in enumerate(keys)]
    ctx: dict[str, Any] = {
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": d} for d in drafts]}
    }
    if hook == "order-select":
        ctx["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts]
    body = hook_request(b.bundle(*story), hook, extra_context=ctx)
    resp = client.post(f"/cds-services/her2-{hook}", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cards: list[Any] = resp.get_json()["cards"]
    for card in cards:  # summaries carry non-breaking hyphens (T\u2011DXd): compare the words
        card["summary"] = card["summary"].replace("\u2011", "-")
    return cards


def _both(client: FlaskClient, story: list[dict[str, Any]], *keys: str) -> list[list[Any]]:
    return [_hook(client, story, hook, *keys) for hook in ("order-select", "order-sign")]


def _rule(cards: list[Any], rule: str) -> list[Any]:
    return [c for c in cards if her2_ext(c)["rule"] == rule]


def _tdxd_failed_then(*more: dict[str, Any]) -> list[dict[str, Any]]:
    """THP to progression, then T-DXd to progression on 2022-01-15 (line 2)."""
    return her2_story(
        *regimen(THP, "2021-02-01", "2021-06-01"),
        b.progression("2021-06-01"),
        drug(TDXD, "2021-06-10", "2022-01-10"),
        b.progression("2022-01-15"),
        b.lvef(60, "2022-06-01"),
        *more,
    )


def test_tdxd_reordered_while_a_later_line_goes_on_says_it_progressed_on_tdxd(
    client: FlaskClient,
) -> None:
    """N1 (00058, 00084): T-DXd re-ordered after progression on it, the tucatinib triplet of
    line 3 ongoing, passed with no card. First-pass 6: the card says progressed on T-DXd."""
    story = _tdxd_failed_then(*regimen(TRIPLET, "2022-01-25"))
    for cards in _both(client, story, "tdxd"):
        (card,) = [c for c in cards if "disease progressed on" in c["summary"]]
        assert card["indicator"] == "warning"
        assert card["summary"] == (
            "fam-trastuzumab deruxtecan (T-DXd) ordered: disease progressed on T-DXd "
            "(line 2, progression 2022-01-15)"
        )
        assert "Line 3" in card["detail"] and "on progression, line 4 is" in card["detail"]
        assert "suggestions" not in card  # the current line goes on: nothing in its place


def test_tdxd_reordered_when_the_next_line_is_due_names_and_offers_the_recommended_one(
    client: FlaskClient,
) -> None:
    story = _tdxd_failed_then()
    for cards in _both(client, story, "tdxd"):
        (card,) = [c for c in cards if "disease progressed on" in c["summary"]]
        assert "The regimen recommended for line 3 is tucatinib" in card["detail"]
        (fix,) = card["suggestions"]
        created = [a["resource"] for a in fix["actions"] if a["type"] == "create"]
        texts = " ".join(r["medicationCodeableConcept"]["text"] for r in created)
        assert "tucatinib" in texts
        assert [a["type"] for a in fix["actions"]][-1] == "delete"


def test_pertuzumab_after_progression_on_thp_is_flagged_trastuzumab_is_not(
    client: FlaskClient,
) -> None:
    """Trastuzumab continues beyond progression (section 3 rows 2-3); pertuzumab does not."""
    story = her2_story(
        *regimen(THP, "2021-02-01", "2022-05-20"),
        b.progression("2022-05-20"),
        b.lvef(60, "2022-06-01"),
    )
    for cards in _both(client, story, "pertuzumab"):
        assert [c for c in cards if "disease progressed on pertuzumab (line 1" in c["summary"]]
    for cards in _both(client, story, "tucatinib", "trastuzumab", "capecitabine"):
        assert not [c for c in cards if "progressed on" in c["summary"]], cards
        assert not [c for c in cards if c["indicator"] in FLAGGED]


def test_lapatinib_alone_is_off_sequence_beside_a_cardiac_warning_without_a_one_click(
    client: FlaskClient,
) -> None:
    """N2 (00034): with heart failure on record only the cardiac warning appeared; the
    off-sequence card is given too, and the recommended T-DXd (itself flagged) is no one-click."""
    story = her2_story(
        *regimen(THP, "2021-02-01", "2022-05-20"),
        b.progression("2022-05-20"),
        b.condition("84114007", "Heart failure", "2022-01-01"),
        b.lvef(60, "2022-06-01"),
    )
    for cards in _both(client, story, "lapatinib"):
        (card,) = _rule(cards, "off-sequence")
        assert card["summary"].startswith("lapatinib alone is not a recommended regimen")
        assert "trastuzumab deruxtecan (T-DXd)" in card["summary"]
        assert "suggestions" not in card and "No one-click fix is offered" in card["detail"]
        assert _rule(cards, "cardiac-lvef")


def test_lapatinib_alone_at_order_select_is_flagged_where_lapatinib_capecitabine_is_offered(
    client: FlaskClient,
) -> None:
    """N2 (00059, 00141): lapatinib + capecitabine among the alternatives hid the card at
    order-select; now it says which regimen lapatinib is part of and what is recommended."""
    story = _tdxd_failed_then()
    for cards in _both(client, story, "lapatinib"):
        (card,) = _rule(cards, "off-sequence")
        assert "tucatinib + trastuzumab + capecitabine is" in card["summary"]
        assert "part of lapatinib + capecitabine" in card["detail"]


def test_capecitabine_alone_names_the_recommended_regimen_not_add_trastuzumab(
    client: FlaskClient,
) -> None:
    """Issue 19 item 7: capecitabine alone got only "add trastuzumab"."""
    story = her2_story(
        *regimen(THP, "2021-02-01", "2022-05-20"),
        b.progression("2022-05-20"),
        b.lvef(60, "2022-06-01"),
    )
    for cards in _both(client, story, "capecitabine"):
        (card,) = _rule(cards, "off-sequence")
        assert "trastuzumab deruxtecan (T-DXd) is" in card["summary"]
        assert not _rule(cards, "her2-blockade-stopped")


def _hp_ongoing() -> list[dict[str, Any]]:
    """THP from 2021-11-01, docetaxel stopped, HP goes on; no progression recorded."""
    return her2_story(
        drug("docetaxel", "2021-11-01", "2022-03-01"),
        drug("pertuzumab", "2021-11-01"),
        drug("trastuzumab", "2021-11-01"),
        b.lvef(60, "2022-06-01"),
    )


def test_next_line_ordered_on_top_of_running_hp_asks_to_document_progression_and_stop_it(
    client: FlaskClient,
) -> None:
    """N7 (00024): T-DXd could be signed on top of active HP maintenance with no card."""
    for cards in _both(client, _hp_ongoing(), "tdxd"):
        (card,) = _rule(cards, "off-sequence")
        assert card["indicator"] == "warning"
        assert "ongoing, no progression recorded: document progression and stop" in card["summary"]
        assert "pertuzumab, trastuzumab" in card["summary"] + card["detail"]
        assert "suggestions" not in card
    # the triplet keeps trastuzumab: only pertuzumab is to stop
    cards = _hook(client, _hp_ongoing(), "order-sign", "tucatinib", "trastuzumab", "capecitabine")
    (card,) = _rule(cards, "off-sequence")
    assert "stop pertuzumab first" in card["summary"]


def test_next_line_keeping_every_running_drug_asks_only_to_document_progression(
    client: FlaskClient,
) -> None:
    """00014: lapatinib added to a running capecitabine line makes lapatinib + capecitabine;
    nothing is to stop, so the card does not say "stop capecitabine"."""
    story = _tdxd_failed_then(drug("capecitabine", "2022-01-25"))
    cards = _hook(client, story, "order-sign", "lapatinib")
    (card,) = _rule(cards, "off-sequence")
    assert card["summary"].endswith("no progression recorded: document progression first")


def test_tdm1_after_an_early_relapse_on_adjuvant_tdm1_is_flagged(client: FlaskClient) -> None:
    """Section 2 rule 6: a relapse within 12 months of adjuvant T-DM1 counts it as failed."""
    story = her2_story(
        drug("ado-trastuzumab emtansine", "2020-01-15", "2020-09-01"), b.lvef(60, "2022-06-01")
    )
    for cards in _both(client, story, "tdm1"):
        (card,) = _rule(cards, "off-sequence")
        assert (
            "T-DM1) ordered: metastatic relapse 4.0 months after (neo)adjuvant T-DM1"
            in (card["summary"])
        )
        assert "trastuzumab deruxtecan (T-DXd)" in card["detail"]


def test_re_ordering_the_running_line_is_not_flagged(client: FlaskClient) -> None:
    for cards in _both(client, _hp_ongoing(), "pertuzumab", "trastuzumab"):
        assert not [c for c in cards if c["indicator"] in FLAGGED], cards


def test_tki_after_tki_offers_no_next_line_order_while_the_line_goes_on(
    client: FlaskClient,
) -> None:
    """First-pass 7: the lapatinib card replaced it with T-DM1 *now* while the patient-view said
    continue the current line until progression."""
    story = _tdxd_failed_then(*regimen(TRIPLET, "2022-01-25"))
    for cards in _both(client, story, "lapatinib"):
        (tki,) = _rule(cards, "tki-after-tki")
        assert "suggestions" not in tki and "no replacement is offered" in tki["detail"]


def _equivocal() -> dict[str, Any]:
    return b.observation("85319-2", when="2021-01-05", value_code="LA11842-4", value_system=LOINC)


@pytest.mark.parametrize(
    ("her2", "words"),
    [
        ("equivocal", "HER2 status equivocal (no ISH): confirm before HER2-directed therapy"),
        ("missing", "HER2 status not found: confirm before HER2-directed therapy"),
    ],
)
def test_her2_directed_order_with_her2_unconfirmed_is_a_warning(
    client: FlaskClient, her2: str, words: str
) -> None:
    """N10 (00090, 00047): only a baseline-LVEF info card, which reads as a go-ahead."""
    extra = [_equivocal()] if her2 == "equivocal" else []
    story = her2_story(*extra, b.lvef(60, "2022-06-01"), her2=None)
    for key in ("tdxd", "lapatinib"):
        for cards in _both(client, story, key):
            (card,) = [c for c in cards if c["summary"].startswith(words)]
            assert card["indicator"] == "warning"
    for cards in _both(client, story, "capecitabine"):
        assert not _rule(cards, "her2-status")


# --- property: an agent the disease progressed on never passes in silence ---------------------

_KB = load_knowledge()
_REGIMENS = [
    ("pertuzumab", "trastuzumab", "docetaxel"),
    (TDXD,),
    ("ado-trastuzumab emtansine",),
    ("tucatinib", "trastuzumab", "capecitabine"),
    ("lapatinib", "capecitabine"),
    ("neratinib", "capecitabine"),
    ("margetuximab", "vinorelbine"),
]


@st.composite
def _histories(draw: st.DrawFn) -> tuple[Any, str]:
    picks = draw(st.lists(st.sampled_from(_REGIMENS), min_size=1, max_size=4, unique=True))
    progressed = draw(st.lists(st.booleans(), min_size=len(picks), max_size=len(picks)))
    last_ongoing = draw(st.booleans())
    lines, start = [], date(2021, 2, 1)
    for i, (drugs, prog) in enumerate(zip(picks, progressed, strict=True)):
        ongoing = last_ongoing and i == len(picks) - 1
        end = None if ongoing else start + timedelta(days=150)
        lines.append(direct_line(i + 1, drugs, start, end, prog and not ongoing))
        start += timedelta(days=170)
    # given now in a line started after that progression: a re-challenge going on, not a re-order
    running = set(lines[-1][0].drugs) if lines[-1][0].ongoing else set()
    failed = {
        d
        for ln, _ in lines
        if ln.ended_in_progression
        for d in ln.drugs
        if d != "trastuzumab" and d not in running
    }
    if not failed:
        first = next(r for r in _REGIMENS if not running & set(r) - {"trastuzumab"})
        failed = set(first) - {"trastuzumab"}
        lines.insert(0, direct_line(0, first, date(2020, 6, 1), date(2020, 12, 1), True))
    ordered = draw(st.sampled_from(sorted(failed)))
    record = direct_record(lines=lines, her2=ReceptorStatus.POSITIVE, as_of=start)
    return record, ordered


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_histories(), st.booleans())
def test_an_order_of_an_agent_that_failed_always_gets_a_warning_or_critical(
    history: tuple[Any, str], signing: bool
) -> None:
    record, ordered = history
    found = check_orders(record, [order(ordered)], _KB, complete=signing)
    assert [f for f in found if f.severity in FLAGGED and f.order_id.endswith("draft-1")], (
        ordered,
        [(ln.number, ln.drugs, ln.ended_in_progression, ln.end) for ln in record.lines],
        found,
    )


def test_tdxd_with_ild_while_hp_goes_on_offers_no_next_line_order_now(
    client: FlaskClient,
) -> None:
    """Cards agree (N7): the ILD card names T-DM1, but while HP goes on without progression
    its one-click would be flagged itself (the next line on top of a running line)."""
    story = her2_story(
        drug("docetaxel", "2021-11-01", "2022-03-01"),
        drug("pertuzumab", "2021-11-01"),
        drug("trastuzumab", "2021-11-01"),
        b.ild("2020-03-01"),
        b.lvef(60, "2022-06-01"),
    )
    for cards in _both(client, story, "tdxd"):
        (card,) = _rule(cards, "tdxd-ild")
        assert card["indicator"] == "critical" and "suggestions" not in card
        assert "document progression and stop pertuzumab, trastuzumab first" in card["detail"]
