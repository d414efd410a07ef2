"""The timeline page in headless Chromium (issue 22, "The timeline page"): served by the real
route (POST /timeline, with its Content-Security-Policy), read with scripts disabled, at 360,
800 and 1400 px and in print. It must fit the width (no horizontal scroll), no two labels may
overlap, no text may be drawn under 11 px, and the current line and the as-of marker must be
inside the viewport. Screenshots go to $HER2CDS_ARTIFACTS (default test-artifacts/).

Skipped cleanly without /usr/bin/chromium or playwright (tests/sandbox_support.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import ARTIFACTS
from tests.sandbox_support import CHROMIUM, HOST_RULES, browser_missing
from tests.timeline_records import (
    DENSE_AS_OF,
    DUPLICATES_AS_OF,
    dense,
    duplicate_progressions,
    synthea,
)

REASON = browser_missing()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")
URL = "http://timeline.test/timeline"

# Every visible text of the picture and of the page's labels, with its box and drawn size.
MEASURE = """() => {
  const out = [];
  for (const svg of document.querySelectorAll('svg.tl')) {
    const r = svg.getBoundingClientRect();
    if (!r.width) continue;
    const scale = r.width / svg.viewBox.baseVal.width;
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBoundingClientRect();
      if (!b.width) continue;
      out.push({text: t.textContent, x: b.x, y: b.y, w: b.width, h: b.height,
                size: parseFloat(t.getAttribute('font-size')) * scale});
    }
  }
  return out;
}"""
BOXES = """(sel) => Array.from(document.querySelectorAll(sel)).map(e => e.getBoundingClientRect())
  .filter(b => b.width > 0 || b.height > 0).map(b => ({x: b.x, y: b.y, w: b.width, h: b.height}))"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[f"--host-resolver-rules={HOST_RULES}"]
        )
        try:
            yield b
        finally:
            b.close()


Record = tuple[dict[str, Any], str | None, date | None]


def _records() -> dict[str, Callable[[], Record | None]]:
    def from_synthea() -> Record | None:
        data = synthea()
        return None if data is None else (data, None, None)

    return {
        "dense": lambda: (dense(), "p1", DENSE_AS_OF),
        "duplicates": lambda: (duplicate_progressions(), "p1", DUPLICATES_AS_OF),
        "synthea": from_synthea,
    }


class Served:
    """The page as the route answers it, and what the browser asked for while showing it."""

    def __init__(self, client: FlaskClient, record: Record) -> None:
        data, pid, as_of = record
        query = "&".join(
            f"{k}={v}" for k, v in (("patient", pid), ("as_of", as_of and as_of.isoformat())) if v
        )
        resp = client.post(f"/timeline?{query}", json=data)
        assert resp.status_code == 200
        self.body = resp.get_data()
        self.headers = dict(resp.headers)
        self.requests: list[str] = []

    def open(self, browser: Any, width: int, *, media: str = "screen") -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": 900}, java_script_enabled=False
        )
        page = context.new_page()

        def route(r: Any) -> None:
            self.requests.append(r.request.url)
            if r.request.url == URL:
                r.fulfill(status=200, headers=self.headers, body=self.body)
            else:
                r.abort()

        page.route("**/*", route)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.emulate_media(media=media)
        page.goto(URL)
        page.errors = errors
        return page


def _overlaps(boxes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if (
                a["x"] + a["w"] - 0.5 > b["x"]
                and b["x"] + b["w"] - 0.5 > a["x"]
                and a["y"] + a["h"] - 0.5 > b["y"]
                and b["y"] + b["h"] - 0.5 > a["y"]
            ):
                found.append((a["text"], b["text"]))
    return found


def _inside(box: dict[str, Any], width: float) -> bool:
    return bool(box["x"] >= 0 and box["x"] + box["w"] <= width)


@pytest.mark.parametrize("width", [360, 800, 1400])
@pytest.mark.parametrize("name", ["dense", "duplicates", "synthea"])
def test_the_page_fits_and_no_label_overlaps(
    browser: Any, client: FlaskClient, name: str, width: int
) -> None:
    record = _records()[name]()
    if record is None:
        pytest.skip("the Synthea records are not at /work/shared/data/synthea-mcode")
    served = Served(client, record)
    page = served.open(browser, width)
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"timeline-{name}-{width}.png"), full_page=True)
        inner, scroll = page.evaluate("[innerWidth, document.documentElement.scrollWidth]")
        assert scroll <= inner, f"horizontal scroll at {width} px: {scroll} > {inner}"
        shown = page.evaluate(BOXES, "svg.tl")
        assert len(shown) == 1, "exactly one picture is shown at a time"
        texts = page.evaluate(MEASURE)
        assert len(texts) > 10
        assert not _overlaps(texts), _overlaps(texts)
        small = [(t["text"], round(t["size"], 1)) for t in texts if t["size"] < 10.95]
        assert not small, small
        assert all(_inside(t, inner) for t in texts), [t for t in texts if not _inside(t, inner)]
        for marker in (".marker.as-of", ".bar.current-line"):
            boxes = page.evaluate(BOXES, marker)
            assert boxes, marker
            assert all(_inside(b, inner) for b in boxes), (marker, boxes)
        metastatic = page.evaluate(BOXES, ".marker.metastatic line")
        assert len(metastatic) == 1  # every record here is metastatic
        for caption in page.evaluate(BOXES, "text.line-caption"):  # never across the line
            assert all(caption["x"] >= m["x"] + m["w"] for m in metastatic), (caption, metastatic)
        assert served.requests == [URL], "the page fetches nothing"
        assert not page.errors, page.errors  # a CSP violation is logged as an error
    finally:
        page.context.close()


def test_duplicate_progressions_are_one_marker_listing_its_records(
    browser: Any, client: FlaskClient
) -> None:
    served = Served(client, (duplicate_progressions(), "p1", DUPLICATES_AS_OF))
    page = served.open(browser, 800)
    try:
        labels = [t["text"] for t in page.evaluate(MEASURE)]
        assert labels.count("progression 2024-03-24 (3 records)") == 1, labels
        assert not [s for s in labels if s == "progression 2024-03-24"]
        tips = page.evaluate(
            """() => Array.from(document.querySelectorAll('svg.tl'))
              .filter(s => s.getBoundingClientRect().width > 0)
              .flatMap(s => Array.from(s.querySelectorAll('.event.progression > title')))
              .map(t => t.textContent)"""
        )
        assert len(tips) == 1
        assert "stopped for no response" in tips[0] and "disease status: worsened" in tips[0]
        assert tips[0].count("Observation/") == 2 and "MedicationStatement/" in tips[0]
    finally:
        page.context.close()


def test_dense_lvef_labels_only_first_last_lowest_and_out_of_range(
    browser: Any, client: FlaskClient
) -> None:
    page = Served(client, (dense(), "p1", DENSE_AS_OF)).open(browser, 1400)
    try:
        points = page.evaluate(
            """() => Array.from(document.querySelectorAll('svg.tl'))
              .filter(s => s.getBoundingClientRect().width > 0)
              .flatMap(s => Array.from(s.querySelectorAll('circle > title')))
              .map(t => t.textContent)"""
        )
        labels = page.evaluate(
            """() => Array.from(document.querySelectorAll('svg.tl'))
              .filter(s => s.getBoundingClientRect().width > 0)
              .flatMap(s => Array.from(s.querySelectorAll('text.lvef-label')))
              .map(t => t.textContent)"""
        )
        assert len(points) == 38  # every value stays on hover
        values = [float(t.split("%")[0].removeprefix("LVEF ")) for t in points]
        allowed = {values[0], values[-1], min(values)} | {v for v in values if v < 50}
        assert labels and {float(s.rstrip("%")) for s in labels} <= allowed
        assert f"{min(values):g}%" in labels and f"{values[-1]:g}%" in labels
        assert len(labels) < len(points) / 2
    finally:
        page.context.close()


def test_the_print_style_fits_a4_and_keeps_what_hover_shows(
    browser: Any, client: FlaskClient
) -> None:
    """A4 portrait less 12 mm margins is 186 mm: about 703 CSS px."""
    page = Served(client, (dense(), "p1", DENSE_AS_OF)).open(browser, 703, media="print")
    try:
        inner, scroll = page.evaluate("[innerWidth, document.documentElement.scrollWidth]")
        assert scroll <= inner
        shown = page.evaluate(
            """() => Array.from(document.querySelectorAll('svg.tl'))
              .filter(s => s.getBoundingClientRect().width > 0).map(s => s.getAttribute('class'))"""
        )
        assert shown == ["tl w600"]
        texts = page.evaluate(MEASURE)
        assert not _overlaps(texts) and min(t["size"] for t in texts) >= 10.95
        table = page.inner_text("table:last-of-type")
        assert table.count("LVEF") == 38  # every value printed, not only the labelled ones
        assert "Observation/" in table and "disease status: worsened" in table
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(255, 255, 255)"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "timeline-dense-print.pdf").write_bytes(page.pdf(format="A4"))
    finally:
        page.context.close()
