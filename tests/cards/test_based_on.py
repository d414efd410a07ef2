"""A card's "Based on" (issue 18): grouped by fact, the deciding resources first, per-cycle
resources collapsed with a count, natural order, nothing decisive hidden, every id kept in the
extension. Real FHIR bundles through the HTTP service and the cards API."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards import render_assessment
from engine import assess, load_knowledge
from engine.safety import alerts
from fhir_mappers import build_record
from tests import builders as b
from tests.builders import LOINC
from tests.conftest import her2_ext, hook_request
from tests.golden.scenarios import AS_OF, scenarios


def based_on(card: dict[str, Any]) -> list[str]:
    """The lines of the card's "Based on" section."""
    detail: str = card["detail"]
    assert "### Based on" in detail, card["summary"]
    return detail.split("### Based on", 1)[1].strip().splitlines()


def ext_ids(card: dict[str, Any]) -> list[str]:
    return [s for g in her2_ext(card).get("basedOn", []) for s in g["ids"]]


def doses(
    text: str, rxnorm: str, first: date, n: int, prefix: str, kind: str = "administration"
) -> list[dict[str, Any]]:
    """One MedicationAdministration (or MedicationRequest) per 21-day cycle, ids prefix1 .. N."""
    make = b.administration if kind == "administration" else b.request
    out = []
    for i in range(n):
        r = make(rxnorm, text, (first + timedelta(days=21 * i)).isoformat())
        r["id"] = f"{prefix}{i + 1}"
        out.append(r)
    return out


def after_thp(cycles: int, progressions: int = 1, kind: str = "administration") -> dict[str, Any]:
    """THP recorded one administration per cycle, then progression: line 2 is due now."""
    start = date(2024, 1, 5)
    her2 = b.her2(True, "2023-12-10")
    her2["id"] = "her2-liver"
    her2["specimen"] = {"display": "Core biopsy of liver metastasis"}
    res = [
        b.patient(),
        b.breast_cancer("2023-11-01"),
        b.metastasis(onset="2023-12-01"),
        her2,
        *doses("trastuzumab", "224905", start, cycles, "c", kind),
        *doses("pertuzumab", "1298944", start, cycles, "p", kind),
        *doses("docetaxel", "72962", start, min(cycles, 6), "d", kind),
        b.lvef(60, "2026-10-01"),  # keeps the record current at AS_OF (a stale one gets no regimen)
    ]
    last = start + timedelta(days=21 * (cycles - 1))
    for k in range(progressions):
        prog = b.progression((last + timedelta(days=7 - 30 * k)).isoformat())
        prog["id"] = f"progression-{k + 1}"
        res.append(prog)
    return b.bundle(*res)


def next_line(cards: list[dict[str, Any]]) -> dict[str, Any]:
    (card,) = [c for c in cards if her2_ext(c)["kind"] == "next-line"]
    return card


@pytest.mark.usefixtures("at_scenario_date")
def test_thirty_cycles_read_as_facts_with_the_deciding_ones_first(client: FlaskClient) -> None:
    body = hook_request(after_thp(30), patient_id="p1")
    resp = client.post("/cds-services/her2-next-line", json=body)
    assert resp.status_code == 200
    card = next_line(resp.get_json()["cards"])
    lines = based_on(card)
    # The HER2 result and the progression, by name, before any therapy.
    assert lines[0].startswith("- **HER2 result:** positive")
    assert "decides the status" in lines[0] and "`Observation/her2-liver`" in lines[0]
    assert lines[1].startswith("- **Progression:**") and "`Observation/progression-1`" in lines[1]
    assert "ended line 1" in lines[1]
    text = "\n".join(lines)
    # One course of 30 administrations is one entry with its count, first and last id in
    # natural order (c1 ... c30, not c1 ... c9), never "and N more".
    assert (
        "trastuzumab: MedicationAdministration ×30 "
        "(`MedicationAdministration/c1` … `MedicationAdministration/c30`)" in text
    )
    assert "MedicationAdministration ×6" in text  # docetaxel's six cycles
    assert not re.search(r"and \d+ more", text)
    assert len(lines) < 15
    # Every id stays machine-readable, in natural order within a course.
    ids = ext_ids(card)
    trastuzumab = [s for s in ids if s.startswith("MedicationAdministration/c")]
    assert trastuzumab == [f"MedicationAdministration/c{i}" for i in range(1, 31)]
    assert {"Observation/her2-liver", "Observation/progression-1"} <= set(ids)


def test_every_source_id_of_every_warning_is_in_its_card_extension() -> None:
    """Nothing a rule cites is dropped: the extension's groups hold exactly the alert's ids,
    and the Markdown names every group."""
    kb = load_knowledge()
    seen = 0
    for s in scenarios().values():
        if s.hook != "patient-view":
            continue
        assessment = assess(build_record(s.bundle, as_of=AS_OF), kb)
        cards = render_assessment(assessment, "t")
        by_rule = {her2_ext(c).get("rule"): c for c in cards if her2_ext(c)["kind"] == "warning"}
        for alert in alerts(assessment.record, kb, assessment.recommendation):
            card = by_rule.get(alert.rule)
            if card is None or not alert.source_ids:
                continue
            seen += 1
            assert sorted(ext_ids(card)) == sorted(set(alert.source_ids)), alert.rule
            for group in her2_ext(card)["basedOn"]:
                assert f"**{group['label']}:**" in card["detail"]
    assert seen >= 3


@pytest.mark.usefixtures("at_scenario_date")
def test_order_cards_group_their_sources_too(client: FlaskClient) -> None:
    """order-sign: a T-DXd draft for a patient with ILD names the ILD by its words."""
    bundle = b.bundle(
        b.patient(),
        b.breast_cancer("2023-11-01"),
        b.metastasis(onset="2023-12-01"),
        b.her2(True, "2023-12-10"),
        b.ild("2024-03-01"),
        *b.thp("2024-01-05", "2026-06-01"),
        b.progression("2026-06-10"),
    )
    draft = b.request("2267576", "fam-trastuzumab deruxtecan", "2026-10-20")
    draft["status"] = "draft"
    draft["id"] = "draft-tdxd"
    extra = {"draftOrders": b.bundle(draft)}
    body = hook_request(bundle, "order-sign", patient_id="p1", extra_context=extra)
    resp = client.post("/cds-services/her2-order-sign", json=body)
    assert resp.status_code == 200
    cards = [c for c in resp.get_json()["cards"] if her2_ext(c).get("rule") == "tdxd-ild"]
    assert cards, resp.get_json()
    lines = based_on(cards[0])
    assert any(line.startswith("- **Interstitial lung disease / pneumonitis:**") for line in lines)
    assert any(s.startswith("Condition/") for s in ext_ids(cards[0]))


def test_data_needed_card_puts_the_deciding_her2_result_first() -> None:
    """An equivocal IHC 2+ decides (no ISH): it comes first, the older results after it."""
    older = b.observation(
        "85319-2", when="2021-05-01", value_code="LA11841-6", value_system=LOINC, rid="ihc-old"
    )
    latest = b.observation(
        "85319-2", when="2026-05-01", value_code="LA11842-4", value_system=LOINC, rid="ihc-new"
    )
    bundle = b.bundle(
        b.patient(), b.breast_cancer("2021-01-01"), b.metastasis(onset="2026-04-01"), older, latest
    )
    cards = render_assessment(assess(build_record(bundle, as_of=AS_OF)), "t")
    (card,) = [c for c in cards if her2_ext(c)["kind"] == "data-needed"]
    lines = based_on(card)
    assert lines[0] == "- **HER2 results:**"
    assert lines[1].startswith("  - equivocal (IHC") and "`Observation/ihc-new`" in lines[1]
    assert "decides the status" in lines[1]
    assert "`Observation/ihc-old`" in lines[2]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cycles=st.integers(1, 60),
    progressions=st.integers(1, 3),
    kind=st.sampled_from(["administration", "request"]),
)
def test_her2_basis_and_every_progression_are_always_named(
    cycles: int, progressions: int, kind: str
) -> None:
    """Whatever the number of per-cycle resources, the HER2 result that decides and every
    progression of the record are written out in the rendered Based on, not only counted."""
    record = build_record(after_thp(cycles, progressions, kind), as_of=AS_OF)
    assessment = assess(record)
    card = next_line(render_assessment(assessment, "t"))
    text = "\n".join(based_on(card))
    assert record.her2.basis is not None
    assert f"`{record.her2.basis.source_id}`" in text
    assert record.progressions
    for p in record.progressions:
        assert f"`{p.source_id}`" in text
