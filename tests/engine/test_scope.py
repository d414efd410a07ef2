"""Who is in scope at all (CLINICAL.md section 1 "in scope at all"): deceased, under 18 and
stale records, through the HTTP hooks, the engine, the CLI and the population run, with real
FHIR resources. Pregnancy is in tests/engine/test_pregnancy.py."""

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

from cds_service.pipeline import patient_view
from engine import assess, load_knowledge
from fhir_mappers import build_record
from her2cds_cli.cli import main
from tests import builders as b
from tests.conftest import SYNTHEA, her2_ext, needs_shared
from tests.scope_builders import (
    AS_OF,
    call,
    drafts,
    kinds,
    pinned_today,
    rules,
    story,
    tdxd_draft,
)

__all__ = ["pinned_today"]  # the autouse fixture: today pinned to AS_OF

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
    # died after the newest clinical data (2026-05-01): a consistent record
    a = assess(build_record(story(deceasedDateTime="2026-05-20"), as_of=AS_OF))
    assert not a.in_scope
    assert (
        a.out_of_scope_reason == "deceased (the Patient record says the patient died on 2026-05-20)"
    )
    assert not [i for i in a.record.data_issues if "inconsistent" in i.message]


def test_clinical_data_after_the_death_is_a_data_issue_not_a_card(
    client: FlaskClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outside review 2 (synth-00103: died 2011, data from 2026): still no cards, but the
    contradiction is said in the data issues, the out-of-scope reason (CLI, population)."""
    bundle = story(deceasedDateTime="2001-01-01")
    record = build_record(bundle, as_of=AS_OF)
    issues = [i for i in record.data_issues if i.message.startswith("inconsistent record")]
    assert [i.source_id for i in issues] == [record.patient_source_id]
    assert "2001-01-01" in issues[0].message and "2026-05-01" in issues[0].message
    a = assess(record)
    assert not a.in_scope
    assert "inconsistent: clinical data is dated up to 2026-05-01" in a.out_of_scope_reason
    assert call(client, bundle) == []
    path = tmp_path / "dead.json"
    path.write_text(json.dumps(bundle))
    assert main(["evaluate", str(path), "--as-of", AS_OF.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "Data issues (1)" in out and "inconsistent record: deceasedDateTime 2001-01-01" in out
    assert "Cards (0)" in out


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
    assert her2_ext(card)["missing"] == "stale-record"
    assert newest in card["summary"] and newest in card["detail"]
    assert "suggestions" not in card
    lvef_id = next(
        e["resource"]["id"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == "10230-1"
    )
    assert f"Observation/{lvef_id}" in card["detail"]  # the resource the date is on
    signed = call(
        client, story(b.ild(), shift_days=730), "order-sign", draftOrders=drafts(tdxd_draft())
    )
    assert kinds(signed) == ["data-needed"]  # the T-DXd order is not checked on a stale record
    assert "suggestions" not in signed[0]
    assert "orders are not checked" in signed[0]["detail"]


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
    (patient,) = json.loads(captured.out)["patients"]
    assert patient["cards"] == [] and patient["outOfScope"].startswith("deceased")
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
    assert "inconsistent: clinical data is dated up to" in rows["dead.json"]["out_of_scope"]
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
