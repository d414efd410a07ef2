"""`her2-cds synth`: write the cohort, one Bundle and one answer file per patient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from engine.knowledge import load_knowledge
from synthetic.draw_journey import draw
from synthetic.fhir import render
from synthetic.progress import Progress
from synthetic.truth import truth

DEFAULT_AS_OF = date(2026, 11, 1)  # fixed, so that the same seed gives the same bytes any day


def patient_bundle(
    seed: int, index: int, as_of: date, kind: str | None = None, shape: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Bundle, truth) of patient `index` of the cohort `seed`; `kind` and `shape` force the
    patient kind and the issue-18 shape ("" for none) instead of drawing them."""
    journey = draw(seed, index, as_of, kind, shape)
    bundle = render(journey, seed)  # first: the truth reads what the rendering wrote down
    return bundle, truth(journey, seed, load_knowledge())


def cohort(
    seed: int,
    n: int,
    as_of: date,
    kinds: list[str] | None = None,
    shapes: list[str] | None = None,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for i in range(n):
        kind = kinds[i] if kinds and i < len(kinds) else None
        shape = shapes[i] if shapes and i < len(shapes) else None
        yield patient_bundle(seed, i, as_of, kind, shape)


def _dump(obj: Any, indent: bool = False) -> bytes:
    opts = orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(obj, option=opts)


def generate_cohort(
    out: Path,
    n: int,
    seed: int,
    as_of: date = DEFAULT_AS_OF,
    *,
    ndjson: bool = False,
    kinds: list[str] | None = None,
    progress: bool = True,
    shapes: list[str] | None = None,
    on_patient: Callable[[], None] | None = None,
) -> list[Path]:
    """Write the cohort to `out`: <id>.json + <id>.truth.json, or a bulk-export style NDJSON set
    (one file per resource type, one resource per line) + the answer files. Returns the bundles
    (or NDJSON files) written. `kinds` / `shapes` force the first patients' kind and shape;
    `on_patient` is called after each patient (the command line's progress bar)."""
    out.mkdir(parents=True, exist_ok=True)
    bar = (
        Progress(
            n,
            "synth",
        )
        if progress
        else None
    )
    written: list[Path] = []
    streams: dict[str, list[bytes]] = {}
    for bundle, answer in cohort(seed, n, as_of, kinds, shapes):
        pid = answer["patient_id"]
        (out / f"{pid}.truth.json").write_bytes(_dump(answer, indent=True))
        if ndjson:
            for entry in bundle["entry"]:
                res = dict(entry["resource"])
                subj = res.get("subject")
                if isinstance(subj, dict) and str(subj.get("reference", "")).startswith(
                    "urn:uuid:"
                ):
                    res["subject"] = {"reference": f"Patient/{pid}"}  # bulk data uses Type/id
                streams.setdefault(res["resourceType"], []).append(orjson.dumps(res))
        else:
            path = out / f"{pid}.json"
            path.write_bytes(_dump(bundle))
            written.append(path)
        if bar:
            bar.update()
        if on_patient is not None:
            on_patient()
    if bar:
        bar.close()
    for rtype, lines in sorted(streams.items()):
        path = out / f"{rtype}.ndjson"
        path.write_bytes(b"\n".join(lines) + b"\n")
        written.append(path)
    return written
