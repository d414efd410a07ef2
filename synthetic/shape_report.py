"""Disagreements per issue-18 shape, from a population run (results.csv + the answer files).

    python -m synthetic.shape_report --in COHORT_DIR --results REPORT_DIR/results.csv

reads each compared patient's disagreements from the population's CSV and its shape from its
answer file, and prints the Markdown table of synthetic/DISAGREEMENTS.md (one row per shape,
with the CLINICAL.md rule the shape is about). Needs nothing but the two files.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from synthetic.compare import Disagreement, ShapeScore, by_shape, shape_table
from synthetic.shapes import shapes

_DISAGREEMENT = re.compile(r"^(?P<field>.+?): expected (?P<expected>.*), got (?P<got>.*)$")


def parse(text: str) -> Disagreement:
    """A disagreement back from its string form ("field: expected x, got y")."""
    m = _DISAGREEMENT.match(text.strip())
    if m is None:
        return Disagreement(text.strip(), "", "")
    return Disagreement(m["field"], m["expected"], m["got"])


def rows(cohort: Path, results: Path) -> Iterator[tuple[dict[str, Any], list[Disagreement]]]:
    with results.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("compared") != "yes":
                continue
            pid = row["patient"] or row["name"].split(".json")[0]
            answer = cohort / f"{pid}.truth.json"
            if not answer.exists():
                continue
            truth = orjson.loads(answer.read_bytes())
            found = [parse(d) for d in row["disagreements"].split(" | ") if d.strip()]
            if row.get("error"):
                found.append(Disagreement("error", "no error", row["error"]))
            yield truth, found


def scores(cohort: Path, results: Path) -> dict[str, ShapeScore]:
    rules = {name: str(spec.get("rule", "")) for name, spec in shapes().items()}
    return by_shape(rows(cohort, results), rules)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synthetic.shape_report", description=__doc__)
    ap.add_argument("--in", dest="inp", required=True, help="the cohort (synth --out)")
    ap.add_argument("--results", required=True, help="results.csv of `population`")
    args = ap.parse_args(argv)
    sys.stdout.write(shape_table(scores(Path(args.inp), Path(args.results))))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
