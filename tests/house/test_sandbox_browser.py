"""The real CDS Hooks sandbox in headless Chromium against the service over HTTP (issue 19).

One browser, one FHIR server and one service (JWT verification required, the sandbox trusted
through the trusted-clients file with its local key set) for the module. The patient: HER2+
metastatic, ILD on record, progressed on THP (tests/fixtures/her2_ild_after_thp, dates moved so
that the record is current). CLINICAL.md decides what is expected: section 3, ILD modifier (T-DXd
not offered, T-DM1 takes its place at line 2, say why) and section 4, `tdxd-ild` (a warning when
it explains a replaced recommendation) and `off-sequence` (lapatinib alone or capecitabine alone
where T-DM1 is due: a warning that names the recommended regimen and offers it).

The sandbox shows every failed call as "All clear!", so each test checks the HTTP exchange too.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.conftest import ARTIFACTS, ROOT, load_fixture
from tests.sandbox_support import (
    CHROMIUM,
    HOST_RULES,
    SANDBOX_DIR,
    SANDBOX_ISS,
    CorsFhirServer,
    Service,
    made_current,
    sandbox_url,
    skip_reason,
    static_site,
)

REASON = skip_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

PATIENT = "ild"
SCREENSHOT = ARTIFACTS / "sandbox-patient-view.png"
README_PICTURE = ROOT / "docs" / "sandbox-patient-view.png"  # refreshed with UPDATE_SCREENSHOT=1
TDM1_RXNORM = "1371041"  # ado-trastuzumab emtansine (engine/knowledge/drugs.yaml)
NB = "\u2011"  # the non-breaking hyphen of "T‑DM1" in summaries and labels
TIMEOUT_MS = 20_000


@dataclass
class Stack:
    site: str
    fhir: CorsFhirServer
    service: Service
    browser: Any

    @property
    def url(self) -> str:
        return sandbox_url(self.site, self.fhir.url, PATIENT, self.service.url)

    def hook(self, service_id: str) -> Callable[[Any], bool]:
        url = f"{self.service.url}/cds-services/{service_id}"
        return lambda r: r.url == url and r.request.method == "POST"

    def feedback(self, card: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The feedback rows stored for `card` (waits for the after-response write)."""
        deadline = time.monotonic() + timeout
        while True:
            with sqlite3.connect(self.service.database) as db:
                db.row_factory = sqlite3.Row
                rows = [
                    dict(r) for r in db.execute("SELECT * FROM feedback WHERE card = ?", (card,))
                ]
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from playwright.sync_api import sync_playwright

    bundle = made_current(load_fixture("her2_ild_after_thp"))
    fhir = CorsFhirServer([e["resource"] for e in bundle["entry"]]).start()
    service = Service(tmp_path_factory.mktemp("sandbox"), fhir.url)
    try:
        service.start()
        with static_site(SANDBOX_DIR) as site, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[f"--host-resolver-rules={HOST_RULES}"],
            )
            s = Stack(site, fhir, service, browser)
            try:
                yield s
            finally:
                browser.close()
    finally:
        service.stop()
        fhir.stop()


@pytest.fixture
def exchange() -> list[Any]:
    """Every response the service gave the sandbox during one test (page.on("response"))."""
    return []


@pytest.fixture
def page(stack: Stack, exchange: list[Any]) -> Iterator[Any]:
    context = stack.browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    ours = stack.service.url + "/"
    page.on("response", lambda r: exchange.append(r) if r.url.startswith(ours) else None)
    yield page
    context.close()


def every_call_ok(exchange: list[Any], stack: Stack, hooks: dict[str, int]) -> None:
    """Each call the sandbox made to the service succeeded, each signed with its JWT (auth is
    required, so a 200 is a verified token), and each hook was called at least that often."""
    assert exchange
    for r in exchange:
        assert r.status == 200, (r.request.method, r.url, r.status)
        assert r.request.headers.get("authorization", "").startswith("Bearer "), r.url
    for service_id, least in hooks.items():
        calls = [r for r in exchange if stack.hook(service_id)(r)]
        assert len(calls) >= least, (service_id, len(calls))


def answered(response: Any, stack: Stack) -> list[dict[str, Any]]:
    """The cards of a hook call that reached the service with a JWT that verified."""
    assert response.status == 200, (response.url, response.status, response.text()[:300])
    assert response.request.headers.get("authorization", "").startswith("Bearer ")
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def verified_in_log(stack: Stack, path: str) -> None:
    """The service logged a 200 for `path` from the sandbox's issuer (its JWT verified)."""
    for line in stack.service.log.read_text(encoding="utf-8").splitlines():
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        if rec.get("path") == path and rec.get("status") == 200 and rec.get("method") == "POST":
            assert rec.get("client") == SANDBOX_ISS, rec
            return
    raise AssertionError(f"no verified call to {path} in the service log")


def view(page: Any) -> Any:
    """The EHR screen of the current tab (Patient View, Rx View, Rx Sign) without the developer
    panel, which repeats the response's JSON."""
    return page.locator("[class*='main-view__container'] > div:not([class*='context-view'])")


def card_box(page: Any, summary: str) -> Any:
    """The innermost element holding the card with this summary and its Dismiss button."""
    return (
        view(page)
        .locator("div")
        .filter(has=page.get_by_text(summary, exact=True))
        .filter(has=page.get_by_role("button", name="Dismiss", exact=True))
        .last
    )


def on_screen(page: Any, cards: list[dict[str, Any]]) -> None:
    """Every card the service answered is on screen (summary and Dismiss), and no other."""
    screen = view(page)
    for card in cards:
        screen.get_by_text(card["summary"], exact=True).wait_for()
    assert screen.get_by_role("button", name="Dismiss", exact=True).count() == len(cards)
    assert screen.get_by_text("All clear!").count() == (0 if cards else 1)


def choose_medication(page: Any, typed: str, option: str) -> None:
    box = page.locator("input[name=medication-input]")
    box.click()
    box.fill(typed)
    page.get_by_text(option, exact=True).click()


def test_auth_is_on_a_call_without_the_sandbox_jwt_is_refused(stack: Stack) -> None:
    url = f"{stack.service.url}/cds-services/her2-next-line"
    assert requests.post(url, json={}, timeout=10).status_code == 401


def test_patient_view_shows_the_ild_warning_and_t_dm1_and_stores_an_override(
    stack: Stack, page: Any, exchange: list[Any]
) -> None:
    with page.expect_response(stack.hook("her2-next-line"), timeout=TIMEOUT_MS) as call:
        page.goto(stack.url)
    cards = answered(call.value, stack)
    verified_in_log(stack, "/cds-services/her2-next-line")
    on_screen(page, cards)
    # CLINICAL.md section 3 (ILD modifier) and section 4 tdxd-ild: T-DXd is not offered, T-DM1
    # takes its place at line 2, and a warning says why
    ild = view(page).get_by_text(f"T{NB}DXd not recommended", exact=False)
    assert ild.count() == 1 and "interstitial lung disease" in ild.inner_text()
    line2 = view(page).get_by_text("Line 2:", exact=False)
    assert line2.count() == 1 and f"(T{NB}DM1)" in line2.inner_text()
    offered = view(page).get_by_role("button", name="Order ", exact=False).all_inner_texts()
    assert offered and offered[0] == f"Order ado-trastuzumab emtansine (T{NB}DM1, recommended)"
    assert not [label for label in offered if "DXd" in label or "deruxtecan" in label]
    # the timeline link is an absolute link: enabled, no SMART launch needed
    timeline = view(page).get_by_role("button", name="Therapy timeline", exact=False)
    assert timeline.count() == 1 and timeline.is_enabled()
    assert page.get_by_text("Cannot launch SMART link", exact=False).count() == 0
    with page.context.expect_page() as opened:  # an absolute link opens in a new tab
        timeline.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url.startswith(f"{stack.service.url}/timeline/{PATIENT}?view=")
    tab.locator("svg:visible").first.wait_for()  # one picture per width range; one is shown
    assert "Therapy timeline" in tab.title()
    tab.close()

    # the cards as the README shows them (the developer panel folded away)
    page.get_by_role("button", name="CDS Developer Panel").click()
    page.locator("[class*='context-view__context-open']").wait_for(state="detached")
    page.evaluate("document.body.style.zoom = '0.55'")  # the three cards' titles in one picture
    page.wait_for_timeout(800)  # the panel's slide-out transition
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    if os.environ.get("UPDATE_SCREENSHOT") == "1":  # the README's picture, only when asked
        README_PICTURE.write_bytes(SCREENSHOT.read_bytes())
    page.evaluate("document.body.style.zoom = ''")

    # Dismiss the ILD warning with one of its override reasons: feedback stored
    (warning,) = [c for c in cards if c["summary"].startswith(f"T{NB}DXd not recommended")]
    reasons = {r["code"]: r["display"] for r in warning["overrideReasons"]}
    box = card_box(page, warning["summary"])
    box.get_by_role("button", name="select dismiss reason", exact=True).click()
    items = page.get_by_role("menuitem")
    items.first.wait_for()
    chosen = items.first.inner_text().removeprefix("Override: ").strip()
    with page.expect_response(
        lambda r: r.url.endswith("/her2-next-line/feedback"), timeout=TIMEOUT_MS
    ) as sent:
        items.first.click()
    assert sent.value.status == 200
    (row,) = stack.feedback(warning["uuid"])
    assert row["outcome"] == "overridden" and row["service_id"] == "her2-next-line"
    assert reasons[row["override_code"]] == chosen
    view(page).get_by_text(warning["summary"], exact=True).wait_for(state="detached")
    every_call_ok(exchange, stack, {"her2-next-line": 1})


def test_rx_view_lapatinib_alone_is_off_sequence_and_the_suggestion_leaves_t_dm1(
    stack: Stack, page: Any, exchange: list[Any]
) -> None:
    with page.expect_response(stack.hook("her2-next-line"), timeout=TIMEOUT_MS):
        page.goto(stack.url)
    with page.expect_response(stack.hook("her2-order-select"), timeout=TIMEOUT_MS) as opened:
        page.get_by_role("button", name="Rx View", exact=True).click()
    assert answered(opened.value, stack) == []  # no medication in the draft yet
    with page.expect_response(stack.hook("her2-order-select"), timeout=TIMEOUT_MS) as chosen:
        choose_medication(page, "lapatinib", "lapatinib 250 MG Oral Tablet")
    cards = answered(chosen.value, stack)
    verified_in_log(stack, "/cds-services/her2-order-select")
    on_screen(page, cards)
    # CLINICAL.md section 4 off-sequence: names the recommended regimen, offers it
    (off,) = [c for c in cards if c["extension"]["org.her2cds"].get("rule") == "off-sequence"]
    assert off["indicator"] == "warning" and "lapatinib" in off["summary"]
    assert f"(T{NB}DM1)" in off["summary"]
    button = card_box(page, off["summary"]).get_by_role("button", name="Replace with", exact=False)
    assert button.count() == 1 and f"T{NB}DM1" in button.inner_text()
    # the sandbox applies only the first action: it must be the create (issue 19 item 2)
    with page.expect_response(stack.hook("her2-order-select"), timeout=TIMEOUT_MS) as after:
        button.click()
    draft = json.loads(after.value.request.post_data)["context"]["draftOrders"]
    (ordered,) = [e["resource"] for e in draft["entry"]]
    codes = {c.get("code") for c in ordered["medicationCodeableConcept"]["coding"]}
    assert TDM1_RXNORM in codes and ordered["resourceType"] == "MedicationRequest"
    again = answered(after.value, stack)
    assert not [c for c in again if c["extension"]["org.her2cds"].get("rule") == "off-sequence"]
    on_screen(page, again)
    (row,) = stack.feedback(off["uuid"])
    assert row["outcome"] == "accepted"
    assert json.loads(row["accepted_suggestions"]) == [off["suggestions"][0]["uuid"]]
    every_call_ok(exchange, stack, {"her2-next-line": 1, "her2-order-select": 3})


def test_rx_sign_capecitabine_alone_is_off_sequence_and_the_suggestion_leaves_t_dm1(
    stack: Stack, page: Any, exchange: list[Any]
) -> None:
    with page.expect_response(stack.hook("her2-next-line"), timeout=TIMEOUT_MS):
        page.goto(stack.url)
    page.get_by_role("button", name="Rx Sign", exact=True).click()
    choose_medication(page, "capecitabine", "capecitabine 500 MG Oral Tablet")
    sign = page.get_by_role("button", name="Sign Order")
    with page.expect_response(stack.hook("her2-order-sign"), timeout=TIMEOUT_MS) as signed:
        sign.click()
    cards = answered(signed.value, stack)
    verified_in_log(stack, "/cds-services/her2-order-sign")
    on_screen(page, cards)
    (off,) = [c for c in cards if c["extension"]["org.her2cds"].get("rule") == "off-sequence"]
    assert "capecitabine" in off["summary"] and f"(T{NB}DM1)" in off["summary"]
    box = card_box(page, off["summary"])
    box.get_by_role("button", name="Replace with", exact=False).click()
    with page.expect_response(stack.hook("her2-order-sign"), timeout=TIMEOUT_MS) as resigned:
        sign.click()
    draft = json.loads(resigned.value.request.post_data)["context"]["draftOrders"]
    (ordered,) = [e["resource"] for e in draft["entry"]]
    codes = {c.get("code") for c in ordered["medicationCodeableConcept"]["coding"]}
    assert TDM1_RXNORM in codes
    again = answered(resigned.value, stack)
    # the sandbox keeps its own "1 {pill}" dose and drops the suggested one (its README): the order
    # is no longer off-sequence, and the only warning left says its dose cannot be checked
    flagged = [c for c in again if c["indicator"] in ("warning", "critical")]
    assert [c["extension"]["org.her2cds"].get("rule") for c in flagged] == ["dose-check"]
    assert "cannot be checked" in flagged[0]["summary"] and "3.6 mg/kg" in flagged[0]["summary"]
    on_screen(page, again)
    every_call_ok(exchange, stack, {"her2-next-line": 1, "her2-order-sign": 2})
