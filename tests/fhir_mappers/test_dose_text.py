"""The dose check reads the dose however the order writes it (CLINICAL.md section 4 dose-check;
third outside review H2): doseAndRate.doseQuantity, else the dosage text, else the medication's
text ("Enhertu 6.4 mg/kg"); a T-DXd or T-DM1 order whose dose cannot be read is said. Through the
order-sign hook with real FHIR MedicationRequests."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappers.orders import draft_orders
from tests import builders as b
from tests.conftest import her2_ext, hook_request
from tests.engine_builders import her2_story, regimen

AS_OF = date(2022, 6, 15)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TDM1_RXNORM = "1371041"
THP = ["pertuzumab", "trastuzumab", "docetaxel"]

pytestmark = pytest.mark.usefixtures("at_as_of")


@pytest.fixture
def at_as_of(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: AS_OF)


def _story() -> list[dict[str, Any]]:
    """After THP progressed: T-DXd is the next line; LVEF recent (no cardiac card)."""
    return her2_story(
        *regimen(THP, "2021-01-15", "2022-06-01"),
        b.progression("2022-06-01"),
        b.lvef(60, "2022-06-05"),
    )


def _order(
    med_text: str,
    *,
    code: str | None = None,
    sig: str | None = None,
    dose: tuple[float, str] | None = None,
) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": med_text}
    if code:
        concept["coding"] = [{"system": RXNORM, "code": code}]
    dosage: dict[str, Any] = {}
    if sig is not None:
        dosage["text"] = sig
    if dose is not None:
        dosage["doseAndRate"] = [{"doseQuantity": {"value": dose[0], "unit": dose[1]}}]
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "d1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": concept,
    }
    if dosage:
        res["dosageInstruction"] = [dosage]
    return res


def _sign(client: FlaskClient, *orders: dict[str, Any]) -> list[dict[str, Any]]:
    ctx = {"draftOrders": {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]}}
    body = hook_request(b.bundle(*_story()), "order-sign", extra_context=ctx)
    resp = client.post("/cds-services/her2-order-sign", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cards: list[dict[str, Any]] = resp.get_json()["cards"]
    for card in cards:
        card["summary"] = card["summary"].replace("\u2011", "-")
    return cards


def _dose_cards(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cards if her2_ext(c)["rule"] == "dose-check"]


@pytest.mark.parametrize(
    "order",
    [
        _order("fam-trastuzumab deruxtecan", dose=(6.4, "mg/kg")),
        _order("fam-trastuzumab deruxtecan", sig="6.4 mg/kg IV every 3 weeks"),
        _order("Enhertu 6.4 mg/kg"),
        _order("Enhertu", sig="Enhertu 6,4mg/kg IV q3w"),
    ],
    ids=["structured", "sig-text", "medication-text", "comma-decimal"],
)
def test_tdxd_gastric_dose_warns_however_written(
    client: FlaskClient, order: dict[str, Any]
) -> None:
    (card,) = _dose_cards(_sign(client, order))
    assert card["indicator"] == "warning"
    assert "6.4 mg/kg is not the breast-cancer dose (5.4 mg/kg)" in card["summary"]


@pytest.mark.parametrize(
    "order",
    [
        _order("ado-trastuzumab emtansine", code=TDM1_RXNORM, dose=(4.8, "mg/kg")),
        _order("Kadcyla", code=TDM1_RXNORM, sig="4.8 mg/kg IV q3w"),
        _order("Kadcyla", code=TDM1_RXNORM, sig="4.8mg/kg"),
        _order("T-DM1 4,8 mg/kg", code=TDM1_RXNORM),
    ],
    ids=["structured", "sig-text", "no-space", "medication-text-comma"],
)
def test_tdm1_above_label_warns_however_written(client: FlaskClient, order: dict[str, Any]) -> None:
    (card,) = _dose_cards(_sign(client, order))
    assert "4.8 mg/kg is not the breast-cancer dose (3.6 mg/kg)" in card["summary"]


@pytest.mark.parametrize(
    "order",
    [
        _order("fam-trastuzumab deruxtecan", sig="5.4 mg/kg IV every 3 weeks"),
        _order("Enhertu 5.4 mg/kg"),
        _order("T-DM1 3,6 mg/kg", code=TDM1_RXNORM),
        _order("Kadcyla", code=TDM1_RXNORM, sig="3 mg/kg IV q3w (dose reduction)"),
    ],
    ids=["tdxd-sig", "tdxd-medication-text", "tdm1-comma", "tdm1-reduced"],
)
def test_label_dose_in_text_gives_no_dose_card(client: FlaskClient, order: dict[str, Any]) -> None:
    assert _dose_cards(_sign(client, order)) == []


def test_unreadable_tdxd_dose_is_said(client: FlaskClient) -> None:
    """Review3 H2: "T-DXd order: dose not readable: the breast-cancer dose is 5.4 mg/kg"."""
    (card,) = _dose_cards(_sign(client, _order("Enhertu", sig="IV every 3 weeks")))
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("T-DXd order: dose not readable: the breast-cancer dose")
    assert "5.4 mg/kg" in card["summary"] and "6.4 mg/kg is the gastric" in card["summary"]


def test_unreadable_tdm1_dose_is_said(client: FlaskClient) -> None:
    (card,) = _dose_cards(_sign(client, _order("Kadcyla", code=TDM1_RXNORM)))
    assert card["summary"].startswith("T-DM1 order: dose not readable")


def test_several_doses_in_the_text_are_not_guessed(client: FlaskClient) -> None:
    cards = _sign(client, _order("Enhertu", sig="5.4 mg/kg or 6.4 mg/kg IV q3w"))
    (card,) = _dose_cards(cards)
    assert "dose not readable" in card["summary"] and "several doses" in card["detail"]


def test_vial_strength_is_not_a_dose(client: FlaskClient) -> None:
    """A medication name carries its strength: 100 mg is the vial, not the ordered dose."""
    (card,) = _dose_cards(_sign(client, _order("Enhertu 100 MG Injection")))
    assert "dose not readable" in card["summary"]


def test_dose_in_mg_is_said_uncheckable(client: FlaskClient) -> None:
    (card,) = _dose_cards(_sign(client, _order("Enhertu", sig="380 mg IV q3w")))
    assert "380 mg cannot be checked" in card["summary"]


def test_oral_drug_with_a_structured_pill_dose_gets_no_dose_card(client: FlaskClient) -> None:
    """The sandbox drafts oral tablets as "1 {pill}": no dose rule, no card."""
    cards = _sign(
        client, _order("tucatinib 150 MG Oral Tablet", code="2361290", dose=(1, "{pill}"))
    )
    assert _dose_cards(cards) == []


def test_structured_dose_wins_over_text() -> None:
    (o,) = draft_orders(
        {
            "resourceType": "Bundle",
            "entry": [{"resource": _order("Enhertu 6.4 mg/kg", dose=(5.4, "mg/kg"))}],
        }
    )
    assert (o.dose_value, o.dose_unit, o.dose_from) == (5.4, "mg/kg", "doseQuantity")


_NUMBER = (
    st.decimals(min_value="0.1", max_value="20", places=1).map(float).filter(lambda v: v != 5.4)
)
_FORMS = st.sampled_from(
    [
        ("sig", "{v} mg/kg IV every 3 weeks"),
        ("sig", "{v}mg/kg"),
        ("sig", "T-DXd {vc} mg/kg q3w"),
        ("sig", "{v} mg / kg IV"),
        ("sig", "{v} MG/KG"),
        ("med", "Enhertu {v} mg/kg"),
        ("med", "fam-trastuzumab deruxtecan {vc}mg/kg"),
        ("dose", ""),
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_NUMBER, form=_FORMS)
def test_any_readable_tdxd_dose_but_5_4_warns(
    client: FlaskClient, value: float, form: tuple[str, str]
) -> None:
    """For any readable T-DXd dose d != 5.4 mg/kg written in any supported form: the warning."""
    where, pattern = form
    text = pattern.format(v=f"{value:g}", vc=f"{value:g}".replace(".", ","))
    if where == "sig":
        order = _order("Enhertu", sig=text)
    elif where == "med":
        order = _order(text)
    else:
        order = _order("Enhertu", dose=(value, "mg/kg"))
    (card,) = _dose_cards(_sign(client, order))
    if value in (4.4, 3.2):  # the label's reduction steps: said as a reduction (test below)
        assert "a label dose reduction" in card["summary"], text
        return
    assert f"{value:g} mg/kg is not the breast-cancer dose (5.4 mg/kg)" in card["summary"], text


@pytest.mark.parametrize("value", [4.4, 3.2])
@pytest.mark.parametrize("how", ["structured", "sig"])
def test_tdxd_label_dose_reduction_is_said_never_re_escalated(
    client: FlaskClient, value: float, how: str
) -> None:
    """ENHERTU label dose modifications: 5.4 -> 4.4 -> 3.2 mg/kg, do not re-escalate after a dose
    reduction (outside review 4, N1: 4.4 mg/kg got "not the breast-cancer dose" and a one-click
    back to 5.4)."""
    order = (
        _order("Enhertu", dose=(value, "mg/kg"))
        if how == "structured"
        else _order("Enhertu", sig=f"{value:g} mg/kg IV q3w")
    )
    (card,) = _dose_cards(_sign(client, order))
    assert card["indicator"] == "info"
    assert "do not re-escalate" in card["summary"]
    assert not card.get("suggestions")


def test_tdm1_below_label_dose_is_no_dose_card(client: FlaskClient) -> None:
    """KADCYLA reductions (3.0, 2.4 mg/kg) are below 3.6 mg/kg: T-DM1 is flagged only above."""
    assert not _dose_cards(_sign(client, _order("Kadcyla", code=TDM1_RXNORM, dose=(3.0, "mg/kg"))))


def test_thp_docetaxel_order_is_just_the_docetaxel_order(client: FlaskClient) -> None:
    """Review3 C6: the one-click docetaxel order says only the docetaxel order; the course
    ("4-6 months, then HP until progression", paclitaxel instead) is said in the card text."""
    body = hook_request(b.bundle(*her2_story(b.lvef(60, "2022-06-05"))), "patient-view")
    cards = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    (card,) = [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    suggestion = next(s for s in card["suggestions"] if s.get("isRecommended"))
    texts = [a["resource"]["dosageInstruction"][0]["text"] for a in suggestion["actions"]]
    docetaxel = [t for t in texts if t.startswith("docetaxel")]
    assert docetaxel == ["docetaxel 75 mg/m2 IV q3w"]
    assert all("HP" not in t and "months" not in t for t in texts)
    assert "Docetaxel for 4-6 months, then pertuzumab + trastuzumab (HP)" in card["detail"]
    assert "paclitaxel may replace docetaxel" in card["detail"]
    labels = [s["label"] for s in card["suggestions"]]
    pac = next(s for s in card["suggestions"] if "chemotherapy" in s["label"])
    pac_texts = [a["resource"]["dosageInstruction"][0]["text"] for a in pac["actions"]]
    assert "paclitaxel 80 mg/m2 IV weekly" in pac_texts, labels
    assert not any(t.startswith("docetaxel") for t in pac_texts)
