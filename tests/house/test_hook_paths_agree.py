"""One record, one picture: the CLI, the prefetched hooks and the fetched hooks (no prefetch,
everything read from a FHIR server) give the same cards (outside review 2, N8: synth-00092's
HER2 conversion card was in the CLI answer only, because no prefetch template asked for the
Specimen a HER2 Observation names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from her2cds_cli.cli import main
from her2cds_cli.local_fhir import patient_keys_of
from synthetic.generate import DEFAULT_AS_OF, patient_bundle
from tests.conftest import hook_request
from tests.protocol_support import fallback_request, fhir_server

SEED = 11
# 00092: HER2 conversion on a bone metastasis (the Specimen); 00084: conversion too; 00124:
# "? pneumonitis" and suspected brain metastases; 00123, 00024, 00058, 00010: varied lines.
RECORDS = (92, 84, 124, 123, 24, 58, 10)
SERVICES = {
    "patient-view": "/cds-services/her2-next-line",
    "order-select": "/cds-services/her2-order-select",
    "order-sign": "/cds-services/her2-order-sign",
}
TDXD_DRAFT = {
    "resourceType": "MedicationRequest",
    "id": "draft-tdxd",
    "status": "draft",
    "intent": "order",
    "medicationCodeableConcept": {"text": "fam-trastuzumab deruxtecan 5.4 mg/kg IV q3w"},
}

Picture = set[tuple[str, str]]


def _picture(cards: list[dict[str, Any]]) -> Picture:
    return {(c["indicator"], c["summary"]) for c in cards}


def _context(hook: str, pid: str) -> dict[str, Any]:
    if hook == "patient-view":
        return {}
    draft = {**TDXD_DRAFT, "subject": {"reference": f"Patient/{pid}"}}
    ctx: dict[str, Any] = {
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]}
    }
    if hook == "order-select":
        ctx["selections"] = ["MedicationRequest/draft-tdxd"]
    return ctx


def _cli_picture(
    bundle: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Picture:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    assert main(["evaluate", str(path), "--json", "--as-of", DEFAULT_AS_OF.isoformat()]) == 0
    (patient,) = json.loads(capsys.readouterr().out)["patients"]
    return _picture(patient["cards"])


@pytest.mark.parametrize("index", RECORDS)
def test_cli_prefetch_and_fetched_hooks_give_the_same_cards(
    index: int,
    client: FlaskClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: DEFAULT_AS_OF)
    bundle, _ = patient_bundle(SEED, index, DEFAULT_AS_OF)
    pid, _ = patient_keys_of(bundle)
    assert pid is not None
    resources = [e["resource"] for e in bundle["entry"]]
    cli = _cli_picture(bundle, tmp_path, capsys)
    with fhir_server(resources) as server:
        for hook, url in SERVICES.items():
            ctx = _context(hook, pid)
            prefetched = client.post(url, json=hook_request(bundle, hook, extra_context=ctx))
            fetched = client.post(url, json=fallback_request(hook, pid, server.url, "t0k3n", **ctx))
            assert prefetched.status_code == fetched.status_code == 200, hook
            pre, got = (
                _picture(prefetched.get_json()["cards"]),
                _picture(fetched.get_json()["cards"]),
            )
            assert pre == got, (
                f"{hook}: prefetch {sorted(pre - got)} vs fetched {sorted(got - pre)}"
            )
            if hook == "patient-view":
                assert pre == cli, f"hook {sorted(pre - cli)} vs CLI {sorted(cli - pre)}"


def test_the_her2_conversion_on_a_metastasis_reaches_every_hook(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """synth-00092: negative IHC on the breast (2017), amplified FISH on a bone biopsy (2020)."""
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: DEFAULT_AS_OF)
    bundle, _ = patient_bundle(SEED, 92, DEFAULT_AS_OF)
    pid, _ = patient_keys_of(bundle)
    assert pid is not None
    resources = [e["resource"] for e in bundle["entry"]]
    with fhir_server(resources) as server:
        for body in (hook_request(bundle), fallback_request("patient-view", pid, server.url, "t")):
            cards = client.post(SERVICES["patient-view"], json=body).get_json()["cards"]
            summaries = [c["summary"] for c in cards]
            assert any(s.startswith("HER2 status changed") for s in summaries), summaries
            assert not any("specimen not recorded" in c["detail"] for c in cards)


def test_a_client_without_the_specimen_prefetch_still_gets_an_answer(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that prefetches the template set from before the Specimen template and gives
    no FHIR server gets the cards it got before (the specimen said not recorded), not a 412."""
    monkeypatch.setattr("fhir_mappers.record.now_date", lambda: DEFAULT_AS_OF)
    bundle, _ = patient_bundle(SEED, 92, DEFAULT_AS_OF)
    body = hook_request(bundle)
    del body["prefetch"]["specimens"]
    resp = client.post(SERVICES["patient-view"], json=body)
    assert resp.status_code == 200
    cards = resp.get_json()["cards"]
    assert any("specimen not recorded" in c["detail"] for c in cards)
