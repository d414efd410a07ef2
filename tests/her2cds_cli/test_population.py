"""`her2-cds population`: many patients in parallel, CSV + HTML report, agreement scored."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import pytest

from her2cds_cli.cli import main
from her2cds_cli.population import discover, population
from synthetic.compare import compare, observe
from synthetic.generate import generate_cohort, patient_bundle
from synthetic.journey import catalogue
from tests.conftest import SYNTHEA, needs_shared


def test_population_over_30_patients_writes_csv_and_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = tmp_path / "in", tmp_path / "out"
    generate_cohort(data, 30, seed=21, progress=False)
    code = main(["population", "--in", str(data), "--out", str(out), "--jobs", "2"])
    assert code == 0  # no patient failed
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert len(rows) == 30
    assert all(r["error"] == "" and r["compared"] == "yes" for r in rows)
    assert all(r["agrees"] in ("yes", "no") for r in rows)
    assert {r["outcome"] for r in rows} >= {"recommendation"}
    # controls and data-quality cases: HER2-negative and non-breast patients get no cards,
    # equivocal or missing HER2 gets a data-needed card and no regimen
    controls = [r for r in rows if r["kind"] != "her2-metastatic"]
    assert controls and all(r["agrees"] == "yes" for r in controls), controls
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 3 and "<script" not in html
    assert "Next-line recommendation" in html and "Warnings per rule" in html
    assert "agree with the ground truth" in capsys.readouterr().out


def test_population_reads_bulk_export_ndjson(tmp_path: Path) -> None:
    data, out = tmp_path / "bulk", tmp_path / "out"
    written = generate_cohort(data, 8, seed=4, ndjson=True, progress=False)
    assert {p.name for p in written} >= {"Patient.ndjson", "Condition.ndjson", "Observation.ndjson"}
    tasks = discover(data)
    assert len(tasks) == 8 and all(t.truth is not None for t in tasks)
    summary = population(data, out, jobs=1, progress=False)
    assert summary["patients"] == 8 and summary["errors"] == 0 and summary["compared"] == 8


def test_comparison_catches_a_wrong_answer() -> None:
    _, truth = patient_bundle(1, 0, catalogue_as_of(), "her2-metastatic")
    exp = truth["expected"]
    right = [_next_line_card(exp["line"], exp["timing"], exp["regimen"])] + [
        _warning_card(r) for r in truth["warnings"]["required"]
    ]
    assert compare(truth, observe(right)) == []
    wrong_regimen = "lapatinib-trastuzumab"  # EMA-only: never the FDA answer in the sequence
    wrong = [_next_line_card(exp["line"] + 1, exp["timing"], wrong_regimen)]
    fields = {d.field for d in compare(truth, observe(wrong))}
    assert {"line", "regimen"} <= fields
    _, negative = patient_bundle(1, 0, catalogue_as_of(), "her2-negative")
    assert [d.field for d in compare(negative, observe(right))] == ["outcome"]


def catalogue_as_of() -> date:
    from synthetic.generate import DEFAULT_AS_OF

    assert catalogue()["version"]
    return DEFAULT_AS_OF


def _next_line_card(line: int, timing: str, regimen: str) -> dict[str, object]:
    ext = {"kind": "next-line", "line": line, "timing": timing, "regimen": {"id": regimen}}
    return {"summary": "x", "indicator": "info", "extension": {"org.her2cds": ext}}


def _warning_card(rule: str) -> dict[str, object]:
    ext = {"kind": "warning", "rule": rule}
    return {"summary": "x", "indicator": "warning", "extension": {"org.her2cds": ext}}


@needs_shared(SYNTHEA)
def test_population_answers_real_synthea_records_without_error(tmp_path: Path) -> None:
    data = tmp_path / "synthea"
    data.mkdir()
    for src in sorted(SYNTHEA.glob("*.json.gz"))[:8]:
        shutil.copy(src, data / src.name)  # a temporary copy, never into the repository
    summary = population(data, tmp_path / "out", jobs=2, progress=False)
    assert summary["patients"] == 8 and summary["errors"] == 0 and summary["compared"] == 0
