"""Who is in scope at all, and pregnancy (CLINICAL.md section 1 "in scope at all" and
"pregnancy"; section 4 pregnancy-her2), through the HTTP hooks, the engine, the CLI and the
population run, with real FHIR resources."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.cli import main
from cds_service.pipeline import patient_view
from engine import assess, load_knowledge
from fhir_mappers import build_record
from tests import builders as b
from tests.conftest import SYNTHEA, her2_ext, hook_request, needs_shared

AS_OF = date(2026, 6, 1)
TDXD_RXNORM = "2267579"  # an Enhertu product code (CLINICAL.md drug table)


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's today, so that 'current' and 'stale' do not move with the calendar."""
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: AS_OF)


def person(**fields: Any) -> dict[str, Any]:
    p = b.patient()
    p.update(fields)
    return {k: v for k, v in p.items() if v is not None}


def story(*extra: dict[str, Any], shift_days: int = 0, **patient: Any) -> dict[str, Any]:
    """HER2+ metastatic, progressed on THP in 2025: T-DXd is the line-2 recommendation.
    `shift_days` moves every clinical date that many days earlier (a stale record)."""

    def d(iso: str) -> str:
        return (date.fromisoformat(iso) - timedelta(days=shift_days)).isoformat()

    return b.bundle(
        person(**patient),
        b.breast_cancer(d("2024-01-01")),
        b.her2(True, d("2024-01-10")),
        b.metastasis(onset=d("2024-02-01")),
        *b.thp(d("2024-02-15"), d("2025-10-01")),
        b.progression(d("2025-10-01")),
        b.lvef(60, d("2026-05-01")),
        *extra,
    )


def drafts(*orders: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]}


def tdxd_draft() -> dict[str, Any]:
    return b.request(TDXD_RXNORM, "Enhertu", "2026-06-01", status="draft", rid="draft-tdxd")


def trastuzumab_draft() -> dict[str, Any]:
    return b.request("224905", "trastuzumab", "2026-06-01", status="draft", rid="draft-t")


def call(
    client: FlaskClient, bundle: dict[str, Any], hook: str = "patient-view", **ctx: Any
) -> list[dict[str, Any]]:
    service = {"patient-view": "her2-next-line", "order-sign": "her2-order-sign"}[hook]
    resp = client.post(
        f"/cds-services/{service}", json=hook_request(bundle, hook, extra_context=ctx)
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cards: list[dict[str, Any]] = resp.get_json()["cards"]
    return cards


def kinds(cards: list[dict[str, Any]]) -> list[str]:
    return [str(her2_ext(c)["kind"]) for c in cards]


def rules(cards: list[dict[str, Any]]) -> set[str]:
    return {str(her2_ext(c).get("rule")) for c in cards}


# ------------------------------------------------------------------ the in-scope control


def test_the_adult_living_current_patient_gets_her_cards_and_order_checks(
    client: FlaskClient,
) -> None:
    """The control for every test below: the same story, in scope, gets advice and checks."""
    cards = call(client, story())
    (nl,) = [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    assert her2_ext(nl)["regimen"]["id"] == "tdxd"
    assert nl["suggestions"]
    signed = call(client, story(b.ild()), "order-sign", draftOrders=drafts(tdxd_draft()))
    assert "tdxd-ild" in rules(signed)


# ------------------------------------------------------------------ deceased and children


@pytest.mark.parametrize(
    "dead",
    [{"deceasedBoolean": True}, {"deceasedDateTime": "1999-03-04T10:00:00Z"}],
    ids=["deceasedBoolean", "deceasedDateTime"],
)
def test_a_deceased_patient_gets_no_cards_in_any_hook(
    client: FlaskClient, dead: dict[str, Any]
) -> None:
    assert call(client, story(**dead)) == []
    bundle = story(b.ild(), **dead)
    assert call(client, bundle, "order-sign", draftOrders=drafts(tdxd_draft())) == []


def test_deceased_boolean_false_is_alive(client: FlaskClient) -> None:
    assert "next-line" in kinds(call(client, story(deceasedBoolean=False)))


def test_a_child_by_birth_date_gets_no_cards(client: FlaskClient) -> None:
    twelve = AS_OF.replace(year=AS_OF.year - 12).isoformat()
    assert call(client, story(birthDate=twelve)) == []
    bundle = story(b.ild(), birthDate=twelve)
    assert call(client, bundle, "order-sign", draftOrders=drafts(tdxd_draft())) == []


def test_no_birth_date_is_in_scope(client: FlaskClient) -> None:
    cards = call(client, story(birthDate=None))
    assert "next-line" in kinds(cards)


def test_eighteenth_birthday_is_adult_and_the_day_before_is_not() -> None:
    kb = load_knowledge()
    adult = AS_OF.replace(year=AS_OF.year - 18)
    for birth, in_scope in ((adult, True), (adult + timedelta(days=1), False)):
        record = build_record(story(birthDate=birth.isoformat()), as_of=AS_OF)
        a = assess(record, kb)
        assert a.in_scope is in_scope, birth
        if not in_scope:
            assert a.out_of_scope_reason.startswith("under 18 years old (aged 17")


def test_a_partial_birth_date_that_may_be_under_18_is_not_taken_for_an_adult() -> None:
    """birthDate "2008": 18 on 2026-06-01 only if born by June; the service does not guess."""
    a = assess(build_record(story(birthDate="2008"), as_of=AS_OF))
    assert not a.in_scope and "under 18" in a.out_of_scope_reason
    a = assess(build_record(story(birthDate="2007"), as_of=AS_OF))
    assert a.in_scope


def test_the_reason_names_the_death_date() -> None:
    a = assess(build_record(story(deceasedDateTime="2001-01-01"), as_of=AS_OF))
    assert not a.in_scope
    assert (
        a.out_of_scope_reason == "deceased (the Patient record says the patient died on 2001-01-01)"
    )


@settings(max_examples=40, deadline=None)
@given(age_days=st.integers(min_value=0, max_value=100 * 365))
def test_property_no_card_for_anyone_under_18(age_days: int) -> None:
    birth = AS_OF - timedelta(days=age_days)
    result = patient_view(story(birthDate=birth.isoformat()), instance="p", as_of=AS_OF)
    adult = birth <= AS_OF.replace(year=AS_OF.year - 18)
    assert bool(result.cards) is adult
    assert result.assessment.out_of_scope_reason.startswith("under 18") is not adult


@settings(max_examples=25, deadline=None)
@given(
    dead=st.one_of(
        st.just({"deceasedBoolean": True}),
        st.dates(date(1900, 1, 1), date(2030, 1, 1)).map(
            lambda d: {"deceasedDateTime": d.isoformat()}
        ),
    ),
    with_ild=st.booleans(),
)
def test_property_no_card_for_the_dead(dead: dict[str, Any], with_ild: bool) -> None:
    extra = [b.ild()] if with_ild else []
    result = patient_view(story(*extra, **dead), instance="p", as_of=AS_OF)
    assert result.cards == []
    assert result.assessment.out_of_scope_reason.startswith("deceased")


# ------------------------------------------------------------------ stale records


def test_a_record_two_years_old_gets_only_a_data_needed_card_naming_its_date(
    client: FlaskClient,
) -> None:
    bundle = story(shift_days=730)  # the newest data (LVEF 2026-05-01) is now 2024-05-01
    newest = (date(2026, 5, 1) - timedelta(days=730)).isoformat()
    cards = call(client, bundle)
    assert kinds(cards) == ["data-needed"]
    (card,) = cards
    assert her2_ext(card)["missing"] == "record-current"
    assert newest in card["summary"] and newest in card["detail"]
    assert "suggestions" not in card
    signed = call(
        client, story(b.ild(), shift_days=730), "order-sign", draftOrders=drafts(tdxd_draft())
    )
    assert kinds(signed) == ["data-needed"]
    assert "suggestions" not in signed[0]


def test_the_currency_limit_is_the_parameter() -> None:
    months = int(load_knowledge().param("scope", "record_current_months"))
    assert months == 18  # CLINICAL.md section 1
    newest = date(2026, 5, 1)
    just_in = build_record(story(), as_of=date(2027, 11, 1))  # 18 months after 2026-05-01
    just_out = build_record(story(), as_of=date(2027, 11, 2))
    assert just_in.newest_data_date == newest
    assert not assess(just_in).stale_record
    out = assess(just_out)
    assert out.stale_record and out.recommendation is None and out.alerts == ()
    assert "2026-05-01" in out.out_of_scope_reason


def test_future_dates_do_not_make_an_old_record_current() -> None:
    """A planned end date after the evaluation date is not data of today."""
    planned = b.statement("10324", "tamoxifen", "2023-01-01", "2030-01-01")
    record = build_record(story(planned, shift_days=900), as_of=AS_OF)
    assert record.newest_data_date is not None and record.newest_data_date < date(2024, 12, 1)
    assert assess(record).stale_record


def test_a_stale_record_of_a_non_breast_patient_still_gets_nothing(client: FlaskClient) -> None:
    old = b.bundle(b.patient(), b.condition("195662009", "Acute viral pharyngitis", "2019-01-01"))
    assert call(client, old) == []


# ------------------------------------------------------------------ pregnancy


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


# ------------------------------------------------------------------ CLI and population


def test_evaluate_says_why_a_patient_is_out_of_scope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dead.json"
    path.write_text(json.dumps(story(deceasedBoolean=True)))
    assert main(["evaluate", str(path), "--as-of", AS_OF.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "Out of scope   deceased" in out and "Cards (0)" in out
    assert main(["evaluate", "--json", str(path), "--as-of", AS_OF.isoformat()]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"cards": []}
    assert "deceased" in captured.err


def test_evaluate_says_a_record_is_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(story(shift_days=730)))
    assert main(["evaluate", str(path), "--as-of", AS_OF.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "Record not current: newest clinical data is from 2024-05-01" in out


def test_population_results_say_why_out_of_scope(tmp_path: Path) -> None:
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    child = AS_OF.replace(year=AS_OF.year - 10).isoformat()
    for name, bundle in (
        ("dead", story(deceasedDateTime="2001-01-01")),
        ("child", story(birthDate=child)),
    ):
        (data / f"{name}.json").write_text(json.dumps(bundle))
    assert main(["population", "--in", str(data), "--out", str(out), "--jobs", "1"]) == 0
    rows = {r["name"]: r for r in csv.DictReader((out / "results.csv").open(encoding="utf-8"))}
    assert rows["dead.json"]["out_of_scope"].startswith("deceased")
    assert rows["child.json"]["out_of_scope"].startswith("under 18")
    assert rows["dead.json"]["outcome"] == "none"
    assert "Out of scope" in (out / "report.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------ real records


def _deceased_records() -> list[Path]:
    found = []
    for path in sorted(SYNTHEA.glob("*.json.gz")) if SYNTHEA.exists() else []:
        bundle = json.loads(gzip.decompress(path.read_bytes()))
        for e in bundle.get("entry", []):
            r = e.get("resource", {})
            if r.get("resourceType") == "Patient" and (
                r.get("deceasedBoolean") is True or r.get("deceasedDateTime")
            ):
                found.append(path)
                break
    return found


@needs_shared(SYNTHEA)
def test_every_deceased_synthea_record_gets_no_cards(client: FlaskClient) -> None:
    records = _deceased_records()
    assert records, "the Synthea set has deceased patients (about one in five)"
    for path in records:
        bundle = json.loads(gzip.decompress(path.read_bytes()))
        assert call(client, bundle) == [], path.name
        signed = call(client, bundle, "order-sign", draftOrders=drafts(tdxd_draft()))
        assert signed == [], path.name


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
