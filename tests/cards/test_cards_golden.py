"""Golden tests: the full card JSON for the main scenarios of CLINICAL.md, pinned.

The hookInstance is fixed (so the uuids are), every scenario is evaluated as of a fixed date (so
nothing depends on today), and the timeline link uses a fixed public base URL.

Regenerate after an intended change (and review the diff like code):

    UPDATE_GOLDEN=1 /work/venv/bin/python -m pytest tests/cards/test_cards_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cds_service import pipeline
from engine import load_knowledge
from tests.golden.checks import check_response
from tests.golden.scenarios import AS_OF, GOLDEN, INSTANCE, TIMELINE_BASE, scenarios

GOLDEN_DIR = Path(__file__).parents[1] / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def render(name: str) -> list[dict[str, Any]]:
    s = scenarios()[name]
    if s.hook == "patient-view":
        # the real token is secret per process; the golden pins where the link points
        url = f"{TIMELINE_BASE}/timeline/{s.patient_id}?view=golden-view-token"
        return pipeline.patient_view(
            s.bundle, instance=INSTANCE, patient_id=s.patient_id, as_of=AS_OF, timeline_url=url
        ).cards
    return pipeline.order_check(
        s.bundle,
        s.drafts,
        instance=INSTANCE,
        patient_id=s.patient_id,
        selections=s.selections or None,
        signing=s.hook == "order-sign",
        as_of=AS_OF,
    ).cards


@pytest.mark.parametrize("name", GOLDEN)
def test_cards_match_golden(name: str) -> None:
    cards = render(name)
    check_response(cards, load_knowledge().version)
    path = GOLDEN_DIR / f"{name}.json"
    text = json.dumps({"cards": cards}, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if UPDATE or not path.exists():
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"{path.name} did not exist: written, review and commit it")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert {"cards": cards} == expected, (
        f"cards differ from {path.name}; if intended: UPDATE_GOLDEN=1 python -m pytest {__file__}"
    )


def test_main_scenarios_are_what_clinical_md_says() -> None:
    """The goldens pin these outcomes; say them here too so a careless regeneration fails."""
    ext = {n: [c["extension"]["org.her2cds"] for c in render(n)] for n in GOLDEN}
    nl = {n: next((e for e in v if e["kind"] == "next-line"), None) for n, v in ext.items()}
    assert nl["de_novo_thp"]["regimen"]["id"] == "thp"  # type: ignore[index]
    assert nl["after_thp_tdxd"]["regimen"]["id"] == "tdxd"  # type: ignore[index]
    assert nl["ild_tdm1"]["regimen"]["id"] == "tdm1"  # type: ignore[index]
    assert [e["kind"] for e in ext["her2_unknown"]] == ["data-needed"]
    assert ext["her2_unknown"][0]["rule"] == "her2-status"
    for name in ("order_select_tdxd_ild", "order_sign_tdxd_ild"):
        cards = render(name)
        (card,) = [c for c in cards if c["extension"]["org.her2cds"]["rule"] == "tdxd-ild"]
        assert cards[0] is card, "the critical ILD card comes first"
        assert card["indicator"] == "critical"
        # T-DM1 created first, then the T-DXd draft deleted (CLINICAL.md tdxd-ild, issue 19)
        actions = card["suggestions"][0]["actions"]
        assert [a["type"] for a in actions] == ["create", "delete"]
        assert actions[0]["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "1371041"
