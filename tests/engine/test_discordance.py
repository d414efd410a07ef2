"""HER2 discordance and conversion (CLINICAL.md section 1): real FHIR bundles through the
mappers, the engine and the HTTP service."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards import render_assessment
from engine import assess
from engine.model import Assessment, ReceptorStatus
from fhir_mappers import build_record
from tests import builders as b
from tests.conftest import her2_ext, hook_request

AS_OF = date(2026, 11, 1)  # tests.golden.scenarios.AS_OF, which the at_scenario_date fixture pins
POS = ("10828004", "Positive")
NEG = ("260385009", "Negative")


def her2_result(
    value: tuple[str, str], when: str, rid: str, specimen: str | None
) -> dict[str, Any]:
    o = b.observation("48676-1", when=when, value_code=value[0], value_display=value[1], rid=rid)
    if specimen is not None:
        o["specimen"] = {"display": specimen}
    return o


def patient_bundle(*her2: dict[str, Any]) -> dict[str, Any]:
    return b.bundle(
        b.patient(),
        b.breast_cancer("2021-02-01"),
        b.metastasis(onset="2026-03-20"),
        *her2,
    )


def evaluated(*her2: dict[str, Any]) -> tuple[Assessment, list[dict[str, Any]]]:
    record = build_record(patient_bundle(*her2), as_of=AS_OF)
    assessment = assess(record)
    return assessment, render_assessment(assessment, "test")


def by_rule(cards: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [c for c in cards if her2_ext(c).get("rule") == rule]


PRIMARY_POS = her2_result(POS, "2021-02-10", "primary-her2", "Breast core biopsy")
PRIMARY_NEG = her2_result(NEG, "2021-02-10", "primary-her2", "Breast core biopsy")
MET_NEG = her2_result(NEG, "2026-04-02", "liver-her2", "Core biopsy of liver metastasis")
MET_POS = her2_result(POS, "2026-04-02", "liver-her2", "Core biopsy of liver metastasis")


def test_positive_primary_negative_metastasis_stays_in_scope_with_a_discordance_card() -> None:
    """Guidelines consider HER2-directed therapy when any specimen was positive: in scope, the
    card names both results and asks for tumour-board review."""
    assessment, cards = evaluated(PRIMARY_POS, MET_NEG)
    assert assessment.in_scope, assessment.out_of_scope_reason
    assert assessment.record.her2.status is ReceptorStatus.POSITIVE
    (card,) = by_rule(cards, "her2-discordance")
    assert card["indicator"] == "warning"
    assert "tumour board" in card["detail"] and "tumour-board review" in card["summary"]
    detail = card["detail"]
    assert "positive on the primary tumour" in detail and "Observation/primary-her2" in detail
    assert "negative on a metastatic lesion" in detail and "Observation/liver-her2" in detail
    # The positive primary decides the status, but the "primary only: re-biopsy" card would be
    # wrong: the metastasis was tested.
    assert not by_rule(cards, "her2-status")
    assert assessment.recommendation is not None
    assert any(her2_ext(c)["kind"] == "next-line" for c in cards)


def test_negative_primary_positive_metastasis_is_a_conversion_and_the_card_says_so() -> None:
    assessment, cards = evaluated(PRIMARY_NEG, MET_POS)
    her2 = assessment.record.her2
    assert her2.status is ReceptorStatus.POSITIVE and her2.discordance == "conversion"
    assert her2.basis is not None and her2.basis.source_id == "Observation/liver-her2"
    (card,) = by_rule(cards, "her2-discordance")
    assert "changed" in card["summary"]
    assert "negative on the primary tumour" in card["detail"]
    assert "positive on a metastatic lesion" in card["detail"]
    assert "tumour board" in card["detail"]
    assert assessment.recommendation is not None


@pytest.mark.parametrize(
    "results",
    [
        (PRIMARY_POS,),
        (MET_POS,),
        (PRIMARY_POS, MET_POS),
        (her2_result(POS, "2026-04-02", "again", None), MET_POS),
    ],
)
def test_agreeing_results_give_no_discordance_card(results: tuple[dict[str, Any], ...]) -> None:
    assessment, cards = evaluated(*results)
    assert assessment.record.her2.discordance == ""
    assert not by_rule(cards, "her2-discordance")


def test_earlier_positive_of_unstated_specimen_then_negative_metastasis_is_discordant() -> None:
    """The diagnostic result often names no specimen; dated before the metastatic biopsy it is
    another specimen, and a negative metastasis must not silently end the advice."""
    earlier = her2_result(POS, "2021-02-10", "diagnosis-her2", None)
    assessment, cards = evaluated(earlier, MET_NEG)
    assert assessment.in_scope and assessment.record.her2.discordance == "loss"
    (card,) = by_rule(cards, "her2-discordance")
    assert "a specimen whose site is not recorded" in card["detail"]
    assert "Observation/diagnosis-her2" in card["detail"]


def test_negative_result_outranking_a_positive_one_says_so_in_the_scope_reason() -> None:
    """Two results the record does not place on different specimens: the latest decides
    (HER2-negative, out of scope), and the reason names the positive one."""
    old = her2_result(POS, "2021-02-10", "old-pos", None)
    new = her2_result(NEG, "2026-04-02", "new-neg", None)
    assessment, cards = evaluated(old, new)
    assert not assessment.in_scope and cards == []
    assert assessment.out_of_scope_reason.startswith("HER2-negative")
    assert "Observation/old-pos" in assessment.out_of_scope_reason
    plain, _ = evaluated(new)
    assert plain.out_of_scope_reason == "HER2-negative"


@pytest.mark.usefixtures("at_scenario_date")
def test_discordance_card_over_http(client: FlaskClient) -> None:
    body = hook_request(patient_bundle(PRIMARY_POS, MET_NEG), patient_id="p1")
    resp = client.post("/cds-services/her2-next-line", json=body)
    assert resp.status_code == 200
    cards = resp.get_json()["cards"]
    (card,) = by_rule(cards, "her2-discordance")
    assert "Observation/primary-her2" in card["detail"]
    assert "Observation/liver-her2" in card["detail"]
    assert any(her2_ext(c)["kind"] == "next-line" for c in cards)


SPECIMENS = {
    "primary": "Breast core biopsy",
    "metastatic": "Core biopsy of liver metastasis",
    "unstated": None,
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(sorted(SPECIMENS)), st.integers(0, 1500)),
        min_size=1,
        max_size=4,
        unique_by=lambda t: t[2],  # on one day, a result of unstated site may be the same specimen
    )
)
def test_a_positive_specimen_is_never_dropped_silently(
    drawn: list[tuple[bool, str, int]],
) -> None:
    """Whatever HER2 results a record holds: a positive primary with a tested metastasis, or a
    positive metastasis, stays HER2-positive and in scope, with a discordance card naming the
    newest negative metastasis; a HER2-negative verdict always names any positive result it
    outranked."""
    start = date(2021, 2, 10)
    results = [
        her2_result(
            POS if positive else NEG,
            (start + timedelta(days=days)).isoformat(),
            f"her2-{i}",
            SPECIMENS[specimen],
        )
        for i, (positive, specimen, days) in enumerate(drawn)
    ]
    assessment, cards = evaluated(*results)
    her2 = assessment.record.her2
    by_kind = {(specimen, positive) for positive, specimen, _ in drawn}
    metastatic = [(days, i, p) for i, (p, s, days) in enumerate(drawn) if s == "metastatic"]
    if ("primary", True) in by_kind and metastatic:
        assert assessment.in_scope and her2.status is ReceptorStatus.POSITIVE
        negative = [(days, i) for days, i, p in metastatic if not p]
        positive_met = [days for days, _, p in metastatic if p]
        if negative:  # a negative metastasis is named beside a positive result
            (card,) = by_rule(cards, "her2-discordance")
            if not positive_met or max(negative)[0] > max(positive_met):
                # loss: the newest negative metastasis is the result in conflict
                assert f"Observation/her2-{max(negative)[1]}" in card["detail"]
            else:  # conversion: a positive metastasis came after; some negative is named
                negatives = [i for i, (p, _, _) in enumerate(drawn) if not p]
                assert any(f"Observation/her2-{i}" in card["detail"] for i in negatives)
    if ("metastatic", True) in by_kind:  # a positive metastasis is a positive specimen
        assert assessment.in_scope and her2.status is ReceptorStatus.POSITIVE
    if her2.status is ReceptorStatus.NEGATIVE and any(p for p, _, _ in drawn):
        assert not assessment.in_scope
        positive_ids = {f"Observation/her2-{i}" for i, (p, _, _) in enumerate(drawn) if p}
        assert any(pid in assessment.out_of_scope_reason for pid in positive_ids)
