"""Pregnancy (CLINICAL.md section 1 "pregnancy", section 4 pregnancy-her2): a critical card and
no one-click order when a HER2-directed antibody or conjugate is running, recommended or
ordered, through the HTTP hooks and the engine."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from engine import assess
from fhir_mappers import build_record
from tests import builders as b
from tests.conftest import her2_ext
from tests.scope_builders import (
    AS_OF,
    call,
    drafts,
    pinned_today,
    rules,
    story,
    tdxd_draft,
    trastuzumab_draft,
)

__all__ = ["pinned_today"]  # the autouse fixture: today pinned to AS_OF


@pytest.mark.parametrize(
    "pregnancy",
    [
        lambda: b.condition("77386006", "Pregnant", "2026-04-01"),
        lambda: b.condition("72892002", "Normal pregnancy", "2026-04-01"),
        lambda: b.condition(
            "Z33.1",
            "Pregnant state, incidental",
            "2026-04-01",
            system="http://hl7.org/fhir/sid/icd-10-cm",
        ),
        lambda: b.condition(
            "O09.891",
            "Supervision of other high risk pregnancies, first trimester",
            "2026-04-01",
            system="http://hl7.org/fhir/sid/icd-10-cm",
        ),
        lambda: b.observation(
            "82810-3", when="2026-05-01", value_code="LA15173-0", value_system="http://loinc.org"
        ),
        lambda: b.observation("2106-3", when="2026-05-01", value_code="10828004"),
    ],
    ids=["snomed-pregnant", "snomed-normal-pregnancy", "icd-z33.1", "icd-o09", "82810-3", "hcg"],
)
def test_pregnancy_with_a_her2_antibody_recommended_is_critical_and_offers_no_order(
    client: FlaskClient, pregnancy: Any
) -> None:
    cards = call(client, story(pregnancy()))
    (warning,) = [c for c in cards if her2_ext(c).get("rule") == "pregnancy-her2"]
    assert warning["indicator"] == "critical"
    assert "embryo-fetal toxicity" in warning["summary"]
    assert "fam-trastuzumab deruxtecan" in warning["summary"]
    assert "UNVERIFIED" in warning["detail"]
    (nl,) = [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    assert "suggestions" not in nl and "selectionBehavior" not in nl
    assert "No one-click order is offered" in nl["detail"]
    assert "Why this regimen" in nl["detail"]  # the card keeps its text
    assert not any(c.get("suggestions") for c in cards)


def test_pregnancy_while_on_trastuzumab_names_the_drug() -> None:
    ongoing = b.bundle(
        b.patient(),
        b.breast_cancer("2025-06-01"),
        b.her2(True, "2025-06-05"),
        b.metastasis(onset="2025-06-10"),
        *b.thp("2025-07-01", None),
        b.lvef(60, "2026-05-01"),
        b.condition("77386006", "Pregnant", "2026-05-10"),
    )
    a = assess(build_record(ongoing, as_of=AS_OF))
    (alert,) = [x for x in a.alerts if x.rule == "pregnancy-her2"]
    assert alert.severity == "critical"
    assert alert.summary.startswith("Pregnancy recorded while on pertuzumab, trastuzumab")
    assert a.orders_blocked


@pytest.mark.parametrize(
    "old",
    [
        lambda: b.condition("72892002", "Normal pregnancy", "2023-01-01"),  # years ago
        lambda: b.condition("72892002", "Normal pregnancy", "2026-04-01", clinical="resolved"),
        lambda: b.condition("77386006", "Pregnant", "2026-04-01", verification="refuted"),
        lambda: b.observation(
            "82810-3", when="2026-05-01", value_code="LA26683-5", value_system="http://loinc.org"
        ),
    ],
    ids=["years-ago", "resolved", "refuted", "not-pregnant"],
)
def test_no_current_pregnancy_no_pregnancy_card_and_orders_offered(
    client: FlaskClient, old: Any
) -> None:
    cards = call(client, story(old()))
    assert "pregnancy-her2" not in rules(cards)
    (nl,) = [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    assert nl["suggestions"]


def test_order_sign_of_trastuzumab_with_a_positive_hcg_is_critical(client: FlaskClient) -> None:
    hcg = b.observation("2118-8", when="2026-05-20", value_code="10828004")
    cards = call(client, story(hcg), "order-sign", draftOrders=drafts(trastuzumab_draft()))
    (card,) = [c for c in cards if her2_ext(c).get("rule") == "pregnancy-her2"]
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("trastuzumab ordered with pregnancy on record")
    assert "suggestions" not in card


def test_a_later_negative_hcg_overturns_an_earlier_positive(client: FlaskClient) -> None:
    pos = b.observation("2106-3", when="2026-03-01", value_code="10828004")
    neg = b.observation("2106-3", when="2026-05-01", value_code="260385009")
    cards = call(client, story(pos, neg), "order-sign", draftOrders=drafts(trastuzumab_draft()))
    assert "pregnancy-her2" not in rules(cards)


def test_no_fix_orders_an_antibody_or_conjugate_for_a_pregnant_patient(
    client: FlaskClient,
) -> None:
    """T-DXd with ILD would be replaced by T-DM1: not with pregnancy on record."""
    bundle = story(b.ild(), b.condition("77386006", "Pregnant", "2026-04-01"))
    cards = call(client, bundle, "order-sign", draftOrders=drafts(tdxd_draft()))
    assert {"tdxd-ild", "pregnancy-her2"} <= rules(cards)
    assert not any(c.get("suggestions") for c in cards)
    (ild,) = [c for c in cards if her2_ext(c).get("rule") == "tdxd-ild"]
    assert "pregnancy is on record" in ild["detail"]


def test_pregnancy_about_the_next_line_is_not_called_a_current_regimen_problem(
    client: FlaskClient,
) -> None:
    """No therapy runs (THP ended in 2025): the next-line card does not speak of a current
    regimen needing attention; on a running antibody it does, and says review, not continue."""
    cards = call(client, story(b.condition("77386006", "Pregnant", "2026-04-01")))
    (nl,) = [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    assert "Current regimen needs attention" not in nl["detail"]
    ongoing = b.bundle(
        b.patient(),
        b.breast_cancer("2025-06-01"),
        b.her2(True, "2025-06-05"),
        b.metastasis(onset="2025-06-10"),
        *b.thp("2025-07-01", None),
        b.lvef(60, "2026-05-01"),
        b.condition("77386006", "Pregnant", "2026-05-10"),
    )
    (nl,) = [c for c in call(client, ongoing) if her2_ext(c)["kind"] == "next-line"]
    assert "Current regimen needs attention" in nl["detail"]
    assert not nl["summary"].startswith("Continue")
    assert "suggestions" not in nl
