"""The population report (issue 22): why no regimen, names not ids, linked timelines, charts.

Expectations come from CLINICAL.md (section 1 "in scope at all", section 5) and from the
generator's answer files, never from what the engine returned.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine import assess
from engine.model import PatientRecord
from engine.scope import REASON_CODES
from her2cds_cli.cli import main
from her2cds_cli.population import csv_row, discover, evaluate_patient, population, run_one
from her2cds_cli.population_charts import agreement, kaplan_meier
from her2cds_cli.progress import progress
from synthetic.generate import generate_cohort
from tests.engine.test_engine_properties import records

ROOT = Path(__file__).resolve().parents[2]
# CLINICAL.md's reasons a patient gets no regimen, as codes (section 1 and 5; data needed)
KNOWN_REASONS = {
    "deceased", "under-age", "not-breast-cancer", "her2-negative", "early-stage",
    "not-her2-positive-metastatic", "stale-record", "her2-unknown", "her2-equivocal",
    "metastatic-unknown", "knowledge-gap", "no-regimen-card", "error",
}  # fmt: skip
# what the answer file says -> the reason CLINICAL.md gives for no regimen
BY_SCOPE = {"deceased": "deceased", "under-18": "under-age", "stale-record": "stale-record"}
BY_KIND = {
    "her2-negative": "her2-negative",
    "non-breast": "not-breast-cancer",
    "her2-equivocal-no-ish": "her2-equivocal",
    "her2-missing": "her2-unknown",
    "early-unstaged": "metastatic-unknown",
}


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))


def _regimen_names() -> dict[str, str]:
    doc = yaml.safe_load((ROOT / "engine/knowledge/regimens.yaml").read_text(encoding="utf-8"))
    return {r["id"]: r["name"] for r in doc["regimens"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`synth` then `population` on 40 patients; one answer file made to expect a wrong
    regimen so that a patient is to be looked at, and one unreadable file with an odd name."""
    base = tmp_path_factory.mktemp("population-report")
    data, out = base / "in", base / "out"
    assert main(["synth", "--patients", "40", "--seed", "5", "--out", str(data)]) == 0
    for truth_file in sorted(data.glob("*.truth.json")):
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        if truth.get("outcome") == "recommendation":
            truth["expected"]["regimen"] = "not-the-answer"
            truth["expected"]["acceptable_regimens"] = ["not-the-answer"]
            truth_file.write_text(json.dumps(truth), encoding="utf-8")
            break
    (data / "odd <b>&'name.json").write_text("{not json", encoding="utf-8")
    assert main(["population", "--in", str(data), "--out", str(out), "--jobs", "2"]) == 1
    return data, out


def test_every_row_without_a_regimen_says_why(run: tuple[Path, Path]) -> None:
    data, out = run
    rows = _rows(out)
    assert len(rows) == 41
    for r in rows:
        if r["regimen"]:
            assert r["reason_code"] == "" and r["reason"] == "", r
        else:
            assert r["reason_code"] in KNOWN_REASONS and r["reason"].strip(), r
    odd = next(r for r in rows if r["name"].startswith("odd"))
    assert odd["reason_code"] == "error" and odd["error"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "(none)" not in html
    # the answer files (CLINICAL.md section 1 and 5) say which patients have which reason
    for r in rows:
        truth_file = data / f"{r['patient']}.truth.json"
        if not truth_file.exists():
            continue
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        want = BY_SCOPE.get(truth["scope"].get("reason") or "") or BY_KIND.get(truth["kind"])
        if want is not None:
            assert r["reason_code"] == want, (r, truth["kind"], truth["scope"])


def test_regimens_are_named_from_the_knowledge_base(run: tuple[Path, Path]) -> None:
    _, out = run
    names = _regimen_names()
    rows = _rows(out)
    recommended = [r for r in rows if r["regimen"]]
    assert recommended
    for r in recommended:
        assert r["regimen_name"] == names[r["regimen"]]
    html = (out / "report.html").read_text(encoding="utf-8")
    for r in recommended:
        assert f">{names[r['regimen']]}" in html.replace("&#x27;", "'")
    bar_labels = re.findall(r'text-anchor="end">([^<]*)<title>', html)
    assert bar_labels and not set(bar_labels) & set(names), "a chart shows a regimen id"


def test_patients_to_look_at_link_their_timeline_pages(run: tuple[Path, Path]) -> None:
    data, out = run
    html = (out / "report.html").read_text(encoding="utf-8")
    links = re.findall(r"href='(patients/[^']+)'>([^<]+)</a>", html)
    wrong = next(
        json.loads(p.read_text(encoding="utf-8"))["patient_id"]
        for p in sorted(data.glob("*.truth.json"))
        if "not-the-answer" in p.read_text(encoding="utf-8")
    )
    assert f"{wrong}.json" in {name for _, name in links}, "the wrong answer is to be looked at"
    for link, _ in links:
        page = out / link
        assert page.is_file(), link
        text = page.read_text(encoding="utf-8")
        assert text.lower().startswith("<!doctype html>") and "<svg" in text
    section = html.split("Patients to look at", 1)[1]
    assert "odd &lt;b&gt;&amp;&#x27;name.json" in section  # escaped, and no page: not read
    assert "<b>&'name" not in html
    assert not list((out / "patients").glob("odd*"))


def test_the_report_has_the_analyst_charts_inline(run: tuple[Path, Path]) -> None:
    _, out = run
    html = (out / "report.html").read_text(encoding="utf-8")
    for title in (
        "Lines of therapy per patient",
        "Time on each line of therapy",
        "Warnings per rule, per 100 patients",
        "Run time per patient",
        "why no regimen",
    ):
        assert f"<h2>{title}" in html or title in html, title
    assert html.count("<svg") >= 6 and "<script" not in html
    assert "polyline" in html  # the time-on-line step curves
    external = re.findall(r"(?:src|href)=['\"]?(?:https?:)?//", html)
    assert not external, "no external resources"
    assert 'viewBox="0 0' in html and "@media print" in html
    assert "timings.csv" in {p.name for p in out.iterdir()}
    rows = _rows(out)
    for r in rows:
        for part in filter(None, r["line_days"].split(";")):
            number, days = part.split(":")
            assert int(number) >= 1 and int(days.rstrip("+")) >= 0


def test_agreement_is_a_number_and_red_only_for_a_real_problem() -> None:
    nearly = agreement(999, 1000)
    assert "99.9%" in nearly and "class='bad'" not in nearly and "#a33" not in nearly
    poor = agreement(80, 100)
    assert "80.0%" in poor and "class='bad'" in poor
    assert "class='good'" in agreement(10, 10)


def test_deceased_and_her2_negative_patients_get_those_reasons(tmp_path: Path) -> None:
    data, out = tmp_path / "in", tmp_path / "out"
    generate_cohort(
        data,
        3,
        seed=11,
        kinds=["her2-metastatic", "her2-negative", "her2-metastatic"],
        shapes=["deceased", "", ""],
        progress=False,
    )
    population(data, out, jobs=1, progress=False)
    rows = _rows(out)
    codes = {r["reason_code"] for r in rows}
    assert {"deceased", "her2-negative"} <= codes
    dead = next(r for r in rows if r["reason_code"] == "deceased")
    assert dead["reason"].startswith("deceased") and dead["outcome"] == "none"
    negative = next(r for r in rows if r["reason_code"] == "her2-negative")
    assert negative["kind"] == "her2-negative" and negative["outcome"] == "none"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "no regimen: deceased" in html and "no regimen: HER2-negative" in html


def test_evaluate_patient_is_pure_and_is_what_the_pool_runs(tmp_path: Path) -> None:
    data = tmp_path / "in"
    generate_cohort(data, 3, seed=2, progress=False)
    for task in discover(data):
        pooled = run_one(task)
        bundle = json.loads(Path(str(task.path)).read_text(encoding="utf-8"))
        resources = [e["resource"] for e in bundle["entry"]]
        direct = evaluate_patient(task.name, resources, task.truth, patient_id=pooled.patient)
        again = evaluate_patient(task.name, resources, task.truth, patient_id=pooled.patient)
        assert csv_row(direct) == csv_row(again) == csv_row(pooled)


def test_progress_shows_on_a_terminal_only() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet, tty = io.StringIO(), Tty()
    for stream in (quiet, tty):
        with progress(3, "population", stream=stream) as advance:
            for _ in range(3):
                advance()
    assert quiet.getvalue() == ""
    assert "population" in tty.getvalue() and "3/3" in tty.getvalue()
    off = Tty()
    with progress(0, "population", stream=off) as advance:  # run_population(progress=False)
        advance()
    assert off.getvalue() == ""


@given(st.lists(st.tuples(st.integers(0, 2000), st.booleans()), max_size=40))
def test_time_on_line_curve_is_a_falling_step_between_one_and_zero(
    durations: list[tuple[int, bool]],
) -> None:
    steps = kaplan_meier(durations)
    assert steps[0] == (0, 1.0)
    shares = [s for _, s in steps]
    days = [d for d, _ in steps]
    assert all(0.0 <= s <= 1.0 for s in shares) and shares == sorted(shares, reverse=True)
    assert days == sorted(days)
    if durations and not any(e for _, e in durations):
        assert steps == [(0, 1.0)]  # all censored: nobody is known to have left the line
    if durations and all(e for _, e in durations):
        assert shares[-1] == pytest.approx(0.0)  # everyone left their line


@given(
    records(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, 10, 40]),
    st.sampled_from([None, 1, 30]),
)
def test_no_regimen_always_has_a_reason_code(
    case: tuple[PatientRecord, str],
    deceased: bool,
    no_cancer: bool,
    not_metastatic: bool,
    age: int | None,
    data_months_ago: int | None,
) -> None:
    record, _ = case
    as_of = record.as_of
    record = replace(
        record,
        deceased=deceased,
        breast_cancer=() if no_cancer else record.breast_cancer,
        metastatic_since=None if not_metastatic else record.metastatic_since,
        metastatic_source_ids=() if not_metastatic else record.metastatic_source_ids,
        birth_date=None if age is None else as_of.replace(year=as_of.year - age),
        newest_data_date=(
            None if data_months_ago is None else as_of - timedelta(days=30 * data_months_ago)
        ),
    )
    a = assess(record)
    if a.recommendation is None:
        assert a.reason_code in REASON_CODES
    else:
        assert a.reason_code == ""
