"""The population report page: plain HTML with inline SVG charts (no scripts, no network),
and the timeline page of each patient to look at beside it (patients/<id>.html)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from her2cds_cli.population_charts import (
    BLUE,
    RED,
    agreement,
    bar_chart,
    binned,
    histogram,
    time_on_line,
)
from synthetic.compare import Disagreement, by_shape
from synthetic.shape_report import parse
from synthetic.shapes import shapes

# Why a row has no regimen: the engine's codes (engine.scope.REASON_CODES) and the run's own.
REASON_LABELS = {
    "deceased": "deceased",
    "under-age": "under 18",
    "not-breast-cancer": "not breast cancer",
    "her2-negative": "HER2-negative",
    "early-stage": "early-stage (not metastatic)",
    "not-her2-positive-metastatic": "not known HER2+ metastatic",
    "stale-record": "stale record",
    "her2-unknown": "HER2 status unknown",
    "her2-equivocal": "HER2 equivocal (ISH needed)",
    "metastatic-unknown": "metastatic status not recorded",
    "knowledge-gap": "no regimen fits (knowledge gap)",
    "no-regimen-card": "in scope, but no regimen on the cards",
    "error": "data issue: the run failed",
}
RUN_MS_EDGES = (0, 10, 20, 50, 100, 200, 500, 1000, 2000)


@dataclass
class Result:
    """One patient's row (results.csv and the report), from `population.evaluate_patient`.

    name: the input (Bundle file name, or the patient id for NDJSON); patient: Patient.id;
    outcome: what the cards say (`recommendation`, `data-needed:<missing>`, `none`, ...);
    line, timing, regimen, regimen_name: the next-line card (name from regimens.yaml);
    warnings: warning rules on the cards; data_needed: the data-needed cards' `missing`;
    lines_found: metastatic lines reconstructed; line_days: (line number, days on it, ended),
    an ongoing line counted to the as-of date and not ended (censored);
    reason_code, reason: why no regimen (a REASON_LABELS key and its text; "" with a regimen);
    out_of_scope: the engine's out_of_scope_reason; compared, kind, expected_regimen(_name),
    disagreements: against the answer file; error: why the run failed on this patient;
    ms: run time, set by the caller (not in results.csv: timings.csv);
    timeline_html: the timeline page, only for a patient to look at (not in results.csv).
    """

    name: str
    patient: str
    outcome: str = ""
    line: int | None = None
    timing: str | None = None
    regimen: str | None = None
    regimen_name: str = ""
    warnings: list[str] = field(default_factory=list)
    data_needed: list[str] = field(default_factory=list)
    lines_found: int = 0
    line_days: list[tuple[int, int, bool]] = field(default_factory=list)
    reason_code: str = ""
    reason: str = ""
    out_of_scope: str = ""
    ms: float = 0.0
    error: str = ""
    compared: bool = False
    disagreements: list[str] = field(default_factory=list)
    kind: str = ""
    expected_regimen: str | None = None
    expected_regimen_name: str = ""
    timeline_html: str = ""

    @property
    def to_look_at(self) -> bool:
        return bool(self.error or self.disagreements or self.reason_code == "no-regimen-card")


def reason_label(code: str) -> str:
    return REASON_LABELS.get(code, code)


def page_names(results: list[Result]) -> dict[str, str]:
    """A file name per patient to look at with a timeline page: safe, unique, from the id."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for r in results:
        if r.to_look_at and r.timeline_html and r.name not in names:
            base = re.sub(r"[^A-Za-z0-9._-]", "_", r.patient)[:80] or "patient"
            name, k = f"{base}.html", 1
            while name in used:
                k += 1
                name = f"{base}-{k}.html"
            used.add(name)
            names[r.name] = name
    return names


def shape_section(results: list[Result], source: str) -> str:
    """Agreement per issue-18 shape, the shape read from each patient's answer file."""
    if not source:
        return ""
    folder = Path(source) if Path(source).is_dir() else Path(source).parent
    rows = []
    for r in results:
        answer = folder / f"{r.patient}.truth.json"
        if r.compared and answer.exists():
            found = [parse(d) for d in r.disagreements]
            if r.error:
                found.append(Disagreement("error", "no error", r.error))
            rows.append((orjson.loads(answer.read_bytes()), found))
    if not rows:
        return ""
    rules = {name: str(spec.get("rule", "")) for name, spec in shapes().items()}
    out = [
        "<h2>Agreement per shape (issue 18)</h2><table><tr><th>shape</th><th>CLINICAL.md rule</th>"
        "<th>agree</th><th>patients</th><th>disagreements (field: count)</th></tr>"
    ]
    for sc in by_shape(rows, rules).values():
        fields = ", ".join(f"{f}: {n}" for f, n in sorted(sc.fields.items(), key=lambda kv: -kv[1]))
        out.append(
            f"<tr><td>{escape(sc.shape)}</td><td>{escape(sc.rule)}</td><td>{sc.agree}</td>"
            f"<td>{sc.patients}</td><td>{escape(fields or '-')}</td></tr>"
        )
    return "".join(out) + "</table>"


def _reason_section(results: list[Result]) -> str:
    by_code: dict[str, list[Result]] = {}
    for r in results:
        if r.reason_code:
            by_code.setdefault(r.reason_code, []).append(r)
    chart = bar_chart(
        Counter({reason_label(c): len(rs) for c, rs in by_code.items()}),
        "Out of scope, data needed, or failed: why no regimen",
        note="One bar per reason (results.csv: reason_code, reason).",
    )
    if not by_code:
        return chart
    rows = "".join(
        f"<tr><td><code>{escape(c)}</code></td><td>{escape(reason_label(c))}</td>"
        f"<td>{len(rs)}</td><td>{escape(rs[0].reason)}</td></tr>"
        for c, rs in sorted(by_code.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    )
    return chart + (
        "<table><tr><th>code</th><th>reason</th><th>patients</th><th>an example, as the "
        f"engine says it</th></tr>{rows}</table>"
    )


def _analyst_charts(results: list[Result], patients: int) -> list[str]:
    done = [r for r in results if not r.error]
    top = max((r.lines_found for r in done), default=0)
    lines = Counter({str(n): 0 for n in range(top + 1)})
    lines.update(str(r.lines_found) for r in done)
    curves: dict[int, list[tuple[int, bool]]] = {}
    for r in done:
        for number, days, ended in r.line_days:
            curves.setdefault(number, []).append((days, ended))
    counts = Counter(w for r in results for w in r.warnings)
    per_100 = {w: 100 * n / patients for w, n in counts.items()} if patients else {}
    texts = {w: f"{v:.1f} ({counts[w]} cards)" for w, v in per_100.items()}
    ms = sorted(r.ms for r in results)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))] if ms else 0.0
    return [
        histogram(
            lines,
            "Lines of therapy per patient",
            "metastatic lines of therapy reconstructed",
            note="Patients (every one whose record was read) by the number of metastatic lines.",
        ),
        time_on_line(curves, "Time on each line of therapy"),
        bar_chart(
            per_100,
            "Warnings per rule, per 100 patients",
            "#b5651d",
            note="Cards of each warning rule per 100 patients of this run (and their count).",
            value_text=texts,
        ),
        histogram(
            binned(ms, RUN_MS_EDGES),
            "Run time per patient",
            "milliseconds per patient (FHIR to cards, in one worker)",
            note=f"Median {ms[len(ms) // 2] if ms else 0:.0f} ms, 95th percentile {p95:.0f} ms.",
        ),
    ]


def _look_at(bad: list[Result], pages: dict[str, str]) -> list[str]:
    parts = [
        "<h2>Patients to look at (first 200)</h2><table><tr><th>patient</th><th>kind</th>"
        "<th>got</th><th>problem</th></tr>"
    ]
    for r in bad:
        got = f"{r.outcome} line {r.line} {r.timing or ''} {r.regimen_name or ''}; warnings "
        got += ", ".join(r.warnings) or "-"
        got += f"; {reason_label(r.reason_code)}: {r.reason}" if r.reason_code else ""
        problem = r.error or "; ".join(r.disagreements) or r.reason
        page = pages.get(r.name)
        who = (
            f"<a href='patients/{escape(quote(page))}'>{escape(r.name)}</a>"
            if page
            else f"{escape(r.name)} <span class='note'>(no timeline: record not read)</span>"
        )
        parts.append(
            f"<tr><td>{who}</td><td>{escape(r.kind)}</td><td>{escape(got)}</td>"
            f"<td>{escape(problem)}</td></tr>"
        )
    return [*parts, "</table>"]


STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    ".bad{color:#a33}.good{color:#286428}.note{color:#555;font-size:13px}"
    ".agreement svg{vertical-align:middle}"
    "@media print{body{max-width:none;margin:0}h2{break-after:avoid}"
    "svg,table{break-inside:avoid}a{color:inherit}}"
)


def write_html(
    results: list[Result], summary: dict[str, Any], path: Path, source: str = ""
) -> None:
    """report.html, and patients/<id>.html for each patient to look at that has a timeline."""
    compared, agree = summary["compared"], summary["agree"]
    errors = summary["errors"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>her2-cds population report</title><style>{STYLE}</style></head><body>",
        "<h1>her2-cds population report</h1>",
        f"<p>Input: <code>{escape(source)}</code>. Patients: <b>{summary['patients']}</b>; "
        f"errors: <b class='{'bad' if errors else 'good'}'>{errors}</b>; "
        f"run time {summary.get('seconds', 0):.1f} s, median {summary['ms_median']:.0f} ms "
        "per patient.</p>",
    ]
    if compared:
        parts.append(agreement(agree, compared))
    parts.append(bar_chart(summary["next_line"], "Next-line recommendation (regimen, or why none)"))
    parts.append(_reason_section(results))
    parts += _analyst_charts(results, summary["patients"])
    if compared:
        parts.append(
            "<h2>Agreement per patient kind</h2><table><tr><th>kind</th><th>agree</th>"
            "<th>patients</th></tr>"
        )
        parts += [
            f"<tr><td>{escape(k)}</td><td>{a}</td><td>{n}</td></tr>"
            for k, (a, n) in summary["by_kind"].items()
        ]
        parts.append("</table>")
        parts.append(shape_section(results, source))
        parts.append(bar_chart(summary["disagreement_fields"], "Disagreements per field", RED))
        cats = summary["disagreements"].most_common(40)
        if cats:
            parts.append(
                "<h2>Disagreement categories</h2><table><tr><th>count</th>"
                "<th>disagreement</th></tr>"
            )
            parts += [f"<tr><td>{n}</td><td>{escape(c)}</td></tr>" for c, n in cats]
            parts.append("</table>")
    bad = [r for r in results if r.to_look_at][:200]
    pages = page_names(bad)
    if pages:
        folder = path.parent / "patients"
        folder.mkdir(parents=True, exist_ok=True)
        for r in bad:
            if r.name in pages:
                (folder / pages[r.name]).write_text(r.timeline_html, encoding="utf-8")
    if bad:
        parts += _look_at(bad, pages)
    parts.append(f"<p class='note' style='color:{BLUE}'>results.csv: one row per patient; "
                 "timings.csv: run time per patient.</p></body></html>\n")  # fmt: skip
    path.write_text("".join(parts), encoding="utf-8")
