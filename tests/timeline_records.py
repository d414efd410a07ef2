"""Patient bundles for the timeline page tests: real FHIR resources (tests/builders.py)."""

from __future__ import annotations

import gzip
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.builders import (
    NO_RESPONSE,
    RXNORM,
    SNOMED,
    breast_cancer,
    bundle,
    coded,
    condition,
    er,
    her2,
    ild,
    lvef,
    med_resource,
    metastasis,
    patient,
    progression,
    statement,
    thp,
)

SYNTHEA = Path("/work/shared/data/synthea-mcode")
SYNTHEA_PATIENT = "Lasonya941_Carroll471"  # three metastatic lines over two decades
DENSE_AS_OF = date(2024, 12, 1)
DUPLICATES_AS_OF = date(2024, 6, 1)


def dense() -> dict[str, Any]:
    """Early setting, four metastatic lines (the last ongoing), progressions close together,
    ILD, and an LVEF every six weeks for four years with dips under 50% and 40%."""
    out: list[dict[str, Any]] = [patient(), breast_cancer("2018-03-01"), her2(), er(True)]
    out += [statement("224905", "trastuzumab", "2018-04-01", "2019-03-01")]
    out += [statement("72962", "docetaxel", "2018-04-01", "2018-08-01")]
    out += [metastasis(onset="2020-06-15"), condition("94225005", "Brain metastasis", "2023-01-10")]
    out += thp("2020-07-01", "2022-02-10")
    out += [progression("2022-02-10"), progression("2022-02-10"), progression("2022-02-20")]
    out += [statement(None, "fam-trastuzumab deruxtecan", "2022-03-01", "2023-01-05")]
    out += [ild("2022-12-20"), progression("2023-01-05")]
    out += [statement("1371041", "ado-trastuzumab emtansine", "2023-01-20", "2024-05-01")]
    out += [progression("2024-05-01"), progression("2024-05-09")]
    out += [
        statement(None, "tucatinib", "2024-05-20"),
        statement("224905", "trastuzumab", "2024-05-20"),
    ]
    out += [statement("194000", "capecitabine", "2024-05-20")]
    day, values = date(2020, 6, 20), [62, 60, 58, 61, 55, 52, 48, 51, 57, 59, 44, 38, 41, 47]
    for i in range(38):
        out.append(lvef(values[i % len(values)] + (i % 3), day.isoformat()))
        day += timedelta(days=42)
    return bundle(*out)


def duplicate_progressions() -> dict[str, Any]:
    """The same progression recorded three times (two disease-status Observations and a stop
    for no response on the same day): drawn once, as "(3 records)"."""
    stopped = med_resource(
        "MedicationStatement",
        coded(RXNORM, "224905", "trastuzumab"),
        "2022-02-01",
        "2024-03-24",
        status="stopped",
        status_reason=coded(SNOMED, NO_RESPONSE, "no response"),
    )
    return bundle(
        patient(),
        breast_cancer(),
        her2(),
        metastasis(onset="2022-01-10"),
        *thp("2022-02-01", "2024-03-24"),
        stopped,
        progression("2024-03-24"),
        progression("2024-03-24"),
        lvef(58, "2022-01-20"),
        lvef(56, "2024-04-02"),
        statement(None, "fam-trastuzumab deruxtecan", "2024-04-10"),
    )


def synthea() -> dict[str, Any] | None:
    """A Synthea mCODE record with metastatic lines, or None where the data is not present."""
    found = sorted(SYNTHEA.glob(f"{SYNTHEA_PATIENT}_*.json.gz"))
    if not found:
        return None
    with gzip.open(found[0]) as fh:
        data: dict[str, Any] = json.load(fh)
    return data
