"""Cards in one answer agree (CLINICAL.md): suggestions our own order checks would flag are not
offered, "continue" says what to hold, off-sequence orders name the recommended regimen, and
one-click orders are what their text says (one order per dose phase, structured dose and timing).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings

from cards.common import UuidFactory
from cards.next_line import next_line_card
from cds_service import pipeline
from engine.knowledge import load_knowledge
from engine.model import Alert
from engine.one_click import one_click
from tests import builders as b
from tests.cards.test_cards_properties import AS_OF as PROP_AS_OF
from tests.cards.test_cards_properties import stories
from tests.conftest import her2_ext, hook_request
from tests.engine_builders import assess_story, her2_story, regimen

AS_OF = date(2022, 6, 15)
THP = ["pertuzumab", "trastuzumab", "docetaxel"]
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MONITORED = {"trastuzumab", "pertuzumab", "ado-trastuzumab emtansine", "fam-trastuzumab deruxtecan"}

pytestmark = pytest.mark.usefixtures("at_as_of")


@pytest.fixture
def at_as_of(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: AS_OF)


def _after_thp(*more: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """THP from 2021-02-01, progression 2022-05-20: T-DXd is due now (CLINICAL.md row 1)."""
    story = her2_story(
        *regimen(THP, "2021-02-01", "2022-05-20"), b.progression("2022-05-20"), *more, **kw
    )
    return b.bundle(*story)


def _patient_view(client: FlaskClient, bundle: dict[str, Any]) -> list[dict[str, Any]]:
    resp = client.post("/cds-services/her2-next-line", json=hook_request(bundle))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cards: list[dict[str, Any]] = resp.get_json()["cards"]
    return cards


def _sign(
    client: FlaskClient, bundle: dict[str, Any], drafts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    orders = {"resourceType": "Bundle", "entry": [{"resource": d} for d in drafts]}
    body = hook_request(bundle, "order-sign", extra_context={"draftOrders": orders})
    resp = client.post("/cds-services/her2-order-sign", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cards: list[dict[str, Any]] = resp.get_json()["cards"]
    return cards


def _next_line(cards: list[dict[str, Any]]) -> dict[str, Any]:
    (card,) = [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    return card


def _created(suggestion: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**a["resource"], "id": f"s{i}"}
        for i, a in enumerate(suggestion["actions"])
        if a["type"] == "create"
    ]


def _drug_of(mr: dict[str, Any]) -> str:
    return str(mr["medicationCodeableConcept"]["text"])


def _draft(rxnorm: str, text: str, rid: str = "d1") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": rxnorm}],
            "text": text,
        },
    }


def test_with_heart_failure_no_suggestion_orders_a_monitored_drug_and_the_card_says_why(
    client: FlaskClient,
) -> None:
    """Heart failure on record: the cardiac check flags every trastuzumab-family order, so none
    is one click away; the next-line card still names T-DXd and says why it has no order."""
    hf = b.condition("84114007", "Heart failure", onset="2022-01-10")
    bundle = _after_thp(hf, b.lvef(60, "2022-06-01"))
    card = _next_line(_patient_view(client, bundle))
    assert "T\u2011DXd" in card["summary"]  # a non-breaking hyphen (issue 19 item 6)
    for s in card.get("suggestions", []):
        assert not {_drug_of(mr) for mr in _created(s)} & MONITORED, s["label"]
    assert "### No one-click order" in card["detail"]
    assert re.search(
        r"- trastuzumab deruxtecan \(T-DXd\): ordering it now would be flagged", card["detail"]
    )
    assert "tdxd" in her2_ext(card)["notOffered"]
    if not card.get("suggestions"):
        assert "selectionBehavior" not in card


def test_every_offered_suggestion_signs_clean(client: FlaskClient) -> None:
    """The invariant on one patient: each suggestion, signed as drafts, raises no warning."""
    bundle = _after_thp(b.lvef(60, "2022-06-01"))
    card = _next_line(_patient_view(client, bundle))
    assert card["suggestions"]
    for s in card["suggestions"]:
        flagged = [
            c["summary"]
            for c in _sign(client, bundle, _created(s))
            if c["indicator"] in ("warning", "critical")
        ]
        assert not flagged, (s["label"], flagged)


def test_continue_beside_chemotherapy_and_endocrine_says_to_hold_the_endocrine_drug(
    client: FlaskClient,
) -> None:
    """CLINICAL.md: never chemotherapy and endocrine therapy at once; a "continue line N" card
    beside that warning must not continue both."""
    story = her2_story(
        *regimen(THP, "2022-03-01"),
        *regimen(["letrozole"], "2022-04-20"),
        b.lvef(60, "2022-06-01"),
        er=True,
    )
    cards = _patient_view(client, b.bundle(*story))
    warning = next(c for c in cards if her2_ext(c).get("rule") == "chemo-endocrine-concurrent")
    assert her2_ext(warning)["withhold"] == ["letrozole"]
    card = _next_line(cards)
    assert card["summary"].startswith("Continue line 1")
    assert "holding letrozole as the chemotherapy-endocrine card says" in card["summary"]


def test_no_card_speaks_of_current_therapy_when_there_is_none(client: FlaskClient) -> None:
    cards = _patient_view(client, _after_thp(b.lvef(60, "2022-06-01")))
    assert "currentLine" not in her2_ext(_next_line(cards))
    for c in cards:
        assert not re.search(r"current (therapy|regimen)", c["summary"] + c.get("detail", ""), re.I)


@pytest.mark.parametrize(
    ("rxnorm", "text"), [("194000", "capecitabine"), ("480167", "lapatinib 1250 mg daily")]
)
def test_off_sequence_order_names_the_recommended_regimen_and_offers_it(
    client: FlaskClient, rxnorm: str, text: str
) -> None:
    """CLINICAL.md section 4 off-sequence: capecitabine alone or lapatinib alone where T-DXd is
    recommended names T-DXd and offers it, created first, the draft deleted after."""
    bundle = _after_thp(b.lvef(60, "2022-06-01"))
    cards = _sign(client, bundle, [_draft(rxnorm, text)])
    (card,) = [c for c in cards if her2_ext(c)["rule"] == "off-sequence"]
    assert card["indicator"] == "warning"
    assert "trastuzumab deruxtecan (T\u2011DXd)" in card["summary"]
    assert not [c for c in cards if her2_ext(c)["rule"] == "her2-blockade-stopped"]
    (fix,) = card["suggestions"]
    types = [a["type"] for a in fix["actions"]]
    assert types == ["create", "delete"]
    assert fix["actions"][1]["resourceId"] == "MedicationRequest/d1"
    created = fix["actions"][0]["resource"]
    assert created["medicationCodeableConcept"]["coding"][0]["code"] == "2267576"
    # and the fix itself signs clean
    after = _sign(client, bundle, _created(fix))
    assert not [c for c in after if c["indicator"] in ("warning", "critical")]


def test_a_ranked_alternative_regimen_signs_without_wrong_product(client: FlaskClient) -> None:
    bundle = _after_thp(b.lvef(60, "2022-06-01"))
    drafts = [
        _draft("2361290", "tucatinib 300 mg twice daily", "t1"),
        _draft("224905", "trastuzumab 6 mg/kg q3w", "t2"),
        _draft("194000", "capecitabine 1000 mg/m2", "t3"),
    ]
    rules = {her2_ext(c)["rule"] for c in _sign(client, bundle, drafts)}
    assert not {"wrong-product", "off-sequence"} & rules


def _orders_of(card: dict[str, Any], regimen_name: str) -> list[dict[str, Any]]:
    s = next(s for s in card["suggestions"] if regimen_name in s["label"].replace("\u2011", "-"))
    return [a["resource"] for a in s["actions"]]


def _dose(mr: dict[str, Any]) -> float:
    return float(mr["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"])


def test_one_order_per_dose_phase_with_the_dose_the_text_says(client: FlaskClient) -> None:
    """Issue 18 class 11: trastuzumab 8 mg/kg loading then 6 mg/kg; pertuzumab 840 mg then
    420 mg; each loading dose an order of one dose, the maintenance order q3w from cycle 2."""
    story = her2_story(b.lvef(60, "2022-06-01"), met="2022-05-01")
    card = _next_line(_patient_view(client, b.bundle(*story)))
    orders = _orders_of(card, "THP")
    by_drug: dict[str, list[dict[str, Any]]] = {}
    for mr in orders:
        by_drug.setdefault(_drug_of(mr), []).append(mr)
    for drug, (loading, then) in (("pertuzumab", (840, 420)), ("trastuzumab", (8, 6))):
        first, maintenance = by_drug[drug]
        assert _dose(first) == loading and _dose(maintenance) == then
        assert first["dosageInstruction"][0]["timing"]["repeat"] == {"count": 1}
        assert "loading" in first["dosageInstruction"][0]["text"]
        assert maintenance["dosageInstruction"][0]["timing"]["repeat"] == {
            "frequency": 1,
            "period": 3,
            "periodUnit": "wk",
        }
        assert f"{then:g} " in maintenance["dosageInstruction"][0]["text"]
        assert "cycle 2" in maintenance["dosageInstruction"][0]["text"]
    assert len(by_drug["docetaxel"]) == 1


def test_tucatinib_and_tdxd_orders_carry_rxnorm_product_codes_and_structured_timing(
    client: FlaskClient,
) -> None:
    bundle = _after_thp(b.lvef(60, "2022-06-01"))
    card = _next_line(_patient_view(client, bundle))
    (tdxd,) = _orders_of(card, "T-DXd")
    assert tdxd["medicationCodeableConcept"]["coding"][0]["code"] == "2267576"
    assert "UNVERIFIED" in tdxd["note"][0]["text"]
    triplet = {_drug_of(mr): mr for mr in _orders_of(card, "tucatinib")}
    tuc = triplet["tucatinib"]
    assert tuc["medicationCodeableConcept"]["coding"][0]["code"] == "2361290"
    assert "UNVERIFIED" in tuc["note"][0]["text"]
    assert tuc["dosageInstruction"][0]["timing"]["repeat"] == {
        "frequency": 2,
        "period": 1,
        "periodUnit": "d",
    }
    cape = triplet["capecitabine"]["dosageInstruction"][0]["timing"]
    assert cape["repeat"]["frequency"] == 2 and cape["repeat"]["periodUnit"] == "d"
    assert cape["repeat"]["boundsDuration"]["value"] == 14
    assert "days 1-14 of 21" in cape["code"]["text"]


def _as_drafts(suggestion: dict[str, Any], keep: list[dict[str, Any]]) -> dict[str, Any]:
    """The draft Bundle after a suggestion: `keep` minus what it deletes, plus what it creates."""
    out = list(keep)
    for i, a in enumerate(suggestion["actions"]):
        if a["type"] == "create":
            out.append({**a["resource"], "id": f"c{i}"})
        else:
            out = [d for d in out if f"MedicationRequest/{d['id']}" != a["resourceId"]]
    return {"resourceType": "Bundle", "entry": [{"resource": d} for d in out]}


def _flags(cards: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (her2_ext(c)["rule"], str(her2_ext(c).get("order")), c["summary"])
        for c in cards
        if c["indicator"] in ("warning", "critical")
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stories())
def test_no_suggestion_creates_what_our_own_checks_flag_whatever_the_story(
    story: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Property (CLINICAL.md "Cards in one answer agree"): every next-line suggestion, signed for
    the same patient, and every order-sign fix, applied to the drafts, raises no new warning."""
    bundle, drafts = story

    def sign(draft_bundle: dict[str, Any]) -> list[dict[str, Any]]:
        return pipeline.order_check(
            bundle,
            draft_bundle,
            instance="prop",
            patient_id="prop",
            selections=None,
            signing=True,
            as_of=PROP_AS_OF,
        ).cards

    pv = pipeline.patient_view(bundle, instance="prop", patient_id="prop", as_of=PROP_AS_OF)
    for card in pv.cards:
        for s in card.get("suggestions", []):
            assert not _flags(sign(_as_drafts(s, []))), s["label"]
    signed = sign(drafts)
    before = _flags(signed)
    kept = [e["resource"] for e in drafts["entry"]]
    for card in signed:
        for s in card.get("suggestions", []):
            after = _flags(sign(_as_drafts(s, kept)))
            created = {f"MedicationRequest/c{i}" for i in range(len(s["actions"]))}
            new = {f for f in after if f[1] in created or f not in before}
            assert not new, (s["label"], new)


def test_continue_beside_a_card_withholding_a_drug_of_the_line_says_holding_it() -> None:
    """CLINICAL.md: a "continue line N" card beside a card that says to withhold a drug of that
    line says "continue, holding <drug> as the cardiac card says" (any rule with `withhold`)."""
    story = her2_story(*regimen(THP[:2], "2022-03-01"), b.lvef(60, "2022-06-01"))
    assessment = assess_story(story, "2022-06-15")
    hold = Alert(
        "cardiac-lvef",
        "warning",
        "Cardiac function: hold trastuzumab",
        "detail",
        withhold=("trastuzumab",),
    )
    found = (*assessment.alerts, hold)
    assert assessment.recommendation is not None
    clicks = one_click(assessment.record, load_knowledge(), assessment.recommendation, found)
    with_hold = dataclasses.replace(assessment, alerts=found, holding=clicks.holding)
    card = next_line_card(with_hold, UuidFactory("t"))
    assert card is not None
    assert card["summary"].startswith("Continue line 1")
    assert "holding trastuzumab as the cardiac card says" in card["summary"]
    plain = next_line_card(assessment, UuidFactory("t"))
    assert plain is not None and "holding" not in plain["summary"]
