"""`evaluate` shows the picture and the lines as a readable timeline (through the CLI)."""

from __future__ import annotations

import pytest

from bench.shared import missing
from her2cds_cli.cli import main
from tests.conftest import FIXTURES, SYNTHEA
from tests.fhir_mappers.test_mappers_synthea import RECORDS


def run(path: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["evaluate", path, "--as-of", "2026-11-22"]) == 0
    return capsys.readouterr().out


def test_timeline_for_a_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(str(FIXTURES / "her2_after_thp_progression.json"), capsys)
    assert "Timeline" in out
    assert "started: first anticancer therapy in the metastatic setting" in out
    timeline = out.split("Timeline", 1)[1].split("Cards", 1)[0]
    dates = [line.split()[0] for line in timeline.strip().splitlines()]
    assert dates == sorted(dates)
    assert "line 1 starts" in timeline and "metastatic disease" in timeline


@pytest.mark.skipif(not RECORDS, reason=missing(SYNTHEA))
def test_lasonya_timeline_says_why_each_line_starts(capsys: pytest.CaptureFixture[str]) -> None:
    path = next(p for p in RECORDS if p.name.startswith("Lasonya941_Carroll471"))
    out = run(str(path), capsys)
    assert "started: new chemotherapy partner doxorubicin after day 28" in out
    assert "started: regimen changed after documented progression on 2003-03-20" in out
    assert "ended: line 2 started (new chemotherapy partner doxorubicin after day 28)" in out
    assert "drugs: paclitaxel  (8 resources)" in out
    timeline = out.split("Timeline", 1)[1]
    # The progression is shown before the line it opens.
    assert timeline.index("progression: disease status: worsened") < timeline.index("line 3 starts")
