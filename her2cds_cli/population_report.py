"""The population report page: plain HTML with inline SVG bar charts (no scripts, no network)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import orjson

from synthetic.compare import Disagreement, by_shape
from synthetic.shape_report import parse
from synthetic.shapes import shapes


@dataclass
class Result:
    """One patient's outcome in a population run: a row of the CSV and of this report."""

    name: str
    patient: str
    outcome: str = ""
    line: int | None = None
    timing: str | None = None
    regimen: str | None = None
    warnings: list[str] = field(default_factory=list)
    data_needed: list[str] = field(default_factory=list)
    lines_found: int = 0
    ms: float = 0.0
    error: str = ""
    compared: bool = False
    disagreements: list[str] = field(default_factory=list)
    kind: str = ""
    expected_regimen: str | None = None
    reason: str = ""  # why out of scope (deceased, under 18, stale record, HER2-negative, ...)


def bar_chart(counts: Counter[str] | dict[str, int], title: str, colour: str = "#3b6ea5") -> str:
    """A horizontal bar chart as an inline SVG element."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return f"<h2>{escape(title)}</h2><p><em>none</em></p>"
    label_w, bar_w, row_h = 300, 420, 22
    top = max(v for _, v in items) or 1
    height = row_h * len(items) + 10
    rows = []
    for i, (label, value) in enumerate(items):
        y = 5 + i * row_h
        w = max(1, round(bar_w * value / top))
        rows.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 6}" fill="{colour}">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{label_w + w + 5}" y="{y + 15}">{value}</text>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 60}" height="{height}" '
        f'font-family="sans-serif" font-size="12" role="img" aria-label="{escape(title)}">'
        + "".join(rows)
        + "</svg>"
    )
    return f"<h2>{escape(title)}</h2>{svg}"


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


def write_html(
    results: list[Result], summary: dict[str, Any], path: Path, source: str = ""
) -> None:
    compared = summary["compared"]
    agree = summary["agree"]
    pct = f"{100 * agree / compared:.1f}%" if compared else "n/a"
    head = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>her2-cds population report</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}"
        ".bad{color:#a33}.good{color:#286428}</style></head><body>"
    )
    parts = [
        head,
        "<h1>her2-cds population report</h1>",
        f"<p>Input: <code>{escape(source)}</code>. Patients: <b>{summary['patients']}</b>; "
        f"errors: <b class='{'bad' if summary['errors'] else 'good'}'>{summary['errors']}</b>; "
        f"run time {summary.get('seconds', 0):.1f} s, median {summary['ms_median']:.0f} ms per patient.</p>",
    ]
    if compared:
        parts.append(
            f"<p>Agreement with the generator's ground truth: <b class='{'good' if agree == compared else 'bad'}'>"
            f"{agree} / {compared} ({pct})</b>.</p>"
        )
    parts.append(
        bar_chart(summary["next_line"], "Next-line recommendation (regimen id, or outcome)")
    )
    parts.append(bar_chart(summary["warnings"], "Warnings per rule", "#b5651d"))
    if summary.get("out_of_scope"):
        parts.append(bar_chart(summary["out_of_scope"], "Out of scope, or data only (reason)"))
    if compared:
        parts.append(
            bar_chart(
                Counter({"agree": agree, "disagree": compared - agree}),
                "Agreement with ground truth",
                "#286428",
            )
        )
        parts.append(
            "<h2>Agreement per patient kind</h2><table><tr><th>kind</th><th>agree</th><th>patients</th></tr>"
        )
        parts += [
            f"<tr><td>{escape(k)}</td><td>{a}</td><td>{n}</td></tr>"
            for k, (a, n) in summary["by_kind"].items()
        ]
        parts.append("</table>")
        parts.append(shape_section(results, source))
        parts.append(bar_chart(summary["disagreement_fields"], "Disagreements per field", "#a33"))
        cats = summary["disagreements"].most_common(40)
        if cats:
            parts.append(
                "<h2>Disagreement categories</h2><table><tr><th>count</th><th>disagreement</th></tr>"
            )
            parts += [f"<tr><td>{n}</td><td>{escape(c)}</td></tr>" for c, n in cats]
            parts.append("</table>")
    bad = [r for r in results if r.error or r.disagreements][:200]
    if bad:
        parts.append(
            "<h2>Patients to look at (first 200)</h2><table><tr><th>patient</th><th>kind</th><th>got</th><th>problem</th></tr>"
        )
        for r in bad:
            got = f"{r.outcome} line {r.line} {r.timing or ''} {r.regimen or ''}; warnings {', '.join(r.warnings) or '-'}"
            got += f"; out of scope: {r.reason}" if r.reason else ""
            problem = r.error or "; ".join(r.disagreements)
            parts.append(
                f"<tr><td>{escape(r.name)}</td><td>{escape(r.kind)}</td><td>{escape(got)}</td><td>{escape(problem)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>\n")
    path.write_text("".join(parts), encoding="utf-8")
