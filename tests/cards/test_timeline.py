"""The timeline view: served after a patient-view call through the card's link, or built from a
posted Bundle; an HTML page with an inline SVG and nothing external. Rendered in headless
Chromium when the machine has it (skipped otherwise)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from cards.timeline import timeline_page, timeline_record
from engine import record_json
from fhir_mappers import build_record
from tests.conftest import hook_request
from tests.golden.scenarios import AS_OF, scenarios

ROOT = Path(__file__).resolve().parents[2]


def smart_link(client: FlaskClient, name: str) -> str:
    s = scenarios()[name]
    body = hook_request(s.bundle, patient_id=s.patient_id)
    cards = client.post("/cds-services/her2-next-line", json=body).get_json()["cards"]
    links = [link for c in cards for link in c.get("links", []) if "/timeline/" in link["url"]]
    assert links and all(link["type"] == "absolute" for link in links)
    url: str = links[0]["url"]
    return url


def test_card_link_opens_the_timeline_of_that_patient(client: FlaskClient) -> None:
    url = smart_link(client, "ild_tdm1")
    resp = client.get(url.removeprefix("http://localhost"))
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    assert "<svg" in page and "patient ild" in page
    assert "metastatic 2023-09-20" in page
    assert "progression 2025-11-15" in page
    assert "ILD 2021-06-01" in page
    assert "LVEF 58% on 2024-06-10" in page
    assert "THP (pertuzumab + trastuzumab + taxane)" in page
    assert "no-store" in resp.headers["Cache-Control"]


def test_no_external_scripts_fonts_or_resources(client: FlaskClient) -> None:
    page = client.get(smart_link(client, "after_thp_tdxd").removeprefix("http://localhost"))
    html = page.get_data(as_text=True)
    assert "<script" not in html and "@font-face" not in html and "<link" not in html
    assert not re.search(r'(src|href)="https?://', html)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_timeline_needs_the_token_from_the_card(client: FlaskClient) -> None:
    url = smart_link(client, "after_thp_tdxd").removeprefix("http://localhost")
    assert client.get("/timeline/thp-prog").status_code == 404
    assert client.get("/timeline/thp-prog?view=guess").status_code == 404
    assert client.get(url.replace("/thp-prog?", "/other?")).status_code == 404


def test_posted_bundle_gives_the_page(client: FlaskClient) -> None:
    s = scenarios()["no_blockade"]
    resp = client.post(f"/timeline?as_of={AS_OF.isoformat()}", json=s.bundle)
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "Line 2" in page and "capecitabine" in page and "as of 2026-11-01" in page


@pytest.mark.parametrize("name", sorted(scenarios()))
def test_the_stored_picture_draws_the_same_page_as_the_record(name: str) -> None:
    """A card's link shows the page drawn from the picture kept at call time: exactly the page
    of the full record (the kept part is all the page draws, and it survives JSON)."""
    s = scenarios()[name]
    record = build_record(s.bundle, patient_id=s.patient_id, as_of=AS_OF)
    kept = record_json.loads(record_json.dumps(timeline_record(record)))
    assert kept == timeline_record(record)
    assert timeline_page(kept, "v") == timeline_page(record, "v")


def test_the_link_page_is_the_page_of_the_call(client: FlaskClient) -> None:
    s = scenarios()["ild_tdm1"]
    url = smart_link(client, "ild_tdm1").removeprefix("http://localhost")
    page = client.get(url).get_data(as_text=True)
    posted = client.post(f"/timeline?as_of={date.today().isoformat()}", json=s.bundle)
    assert page == posted.get_data(as_text=True)


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b'{"patient_id": 1, "as_of": "2026-01-01"}', b'{"as_of": "not a date"}']
)
def test_a_picture_that_does_not_fit_the_model_is_refused(raw: bytes) -> None:
    with pytest.raises((ValueError, TypeError)):
        record_json.loads(raw)


@pytest.mark.parametrize("body", [b"not json", b"{}", b"[1"])
def test_posted_garbage_is_a_400_operation_outcome(client: FlaskClient, body: bytes) -> None:
    resp = client.post("/timeline", data=body, content_type="application/json")
    assert resp.status_code == 400
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_patient_text_is_escaped(client: FlaskClient) -> None:
    s = scenarios()["after_thp_tdxd"]
    bundle: dict[str, Any] = s.bundle
    bundle = {**bundle, "entry": [*bundle["entry"]]}
    bundle["entry"][1] = {
        "resource": {
            **bundle["entry"][1]["resource"],
            "code": {"text": "<script>alert(1)</script> breast cancer"},
        }
    }
    page = client.post("/timeline", json=bundle).get_data(as_text=True)
    assert "<script>" not in page


# --- headless Chromium ---------------------------------------------------------------------

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
)


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def screenshot(url: str, out: Path) -> subprocess.CompletedProcess[bytes]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                f"--screenshot={out}",
                "--window-size=1200,700",
                url,
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (CI installs it: .ci/system-deps)")
def test_timeline_renders_in_headless_chromium(
    client: FlaskClient, live_server: str, tmp_path: Path
) -> None:
    path = smart_link(client, "on_tdxd_with_ild").removeprefix("http://localhost")
    out = tmp_path / "timeline.png"
    result = screenshot(live_server + path, out)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1200, 700)
    # a blank page compresses to almost nothing; the drawn timeline does not
    assert len(png) > 20_000
    if os.environ.get("UPDATE_SCREENSHOT") == "1":  # refresh the README's picture
        (ROOT / "docs" / "timeline.png").write_bytes(png)


def test_smart_launch_parameters_do_not_get_in_the_way(client: FlaskClient) -> None:
    url = smart_link(client, "after_thp_tdxd").removeprefix("http://localhost")
    resp = client.get(url + "&launch=abc123&iss=https%3A%2F%2Fehr.example.org%2Ffhir")
    assert resp.status_code == 200


def test_without_a_public_base_url_links_follow_each_request_host(client: FlaskClient) -> None:
    s = scenarios()["after_thp_tdxd"]
    for host, scheme in (("cds.example.test:8443", "https"), ("other.example.test", "http")):
        body = hook_request(s.bundle, patient_id=s.patient_id)
        cards = client.post(
            "/cds-services/her2-next-line", json=body, base_url=f"{scheme}://{host}"
        ).get_json()["cards"]
        urls = [
            link["url"] for c in cards for link in c.get("links", []) if "/timeline/" in link["url"]
        ]
        assert urls and urls[0].startswith(f"{scheme}://{host}/timeline/thp-prog?view=")


def test_links_use_the_public_base_url_behind_a_proxy(tmp_path: Path) -> None:
    from cds_service import create_app

    app = create_app(
        {
            "database_url": f"sqlite:///{tmp_path / 't.db'}",
            "testing": True,
            "public_base_url": "https://cds.example.org/her2/",
        }
    )
    url = smart_link(app.test_client(), "after_thp_tdxd")
    assert url.startswith("https://cds.example.org/her2/timeline/thp-prog?view=")
