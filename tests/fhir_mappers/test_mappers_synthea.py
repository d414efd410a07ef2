"""The picture on every real-size Synthea/mCODE record, and Lasonya941_Carroll471's three lines.

Reads ../shared/data/synthea-mcode relative to the repository root (or, from a git worktree,
the nearest ancestor's shared/), and skips when it is absent.
"""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bench.shared import missing
from fhir_mappers import build_record
from tests.conftest import SYNTHEA

ROOT = Path(__file__).resolve().parents[2]


RECORDS = sorted(SYNTHEA.glob("*.json.gz")) if SYNTHEA.is_dir() else []
pytestmark = pytest.mark.skipif(not RECORDS, reason=missing(SYNTHEA))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return data


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: "_".join(p.name.split("_")[:2]))
def test_every_record_builds_a_picture(path: Path) -> None:
    rec = build_record(load(path), as_of=date(2026, 11, 22))
    assert rec.patient_id != "unknown"
    numbers = [ln.number for ln in rec.lines]
    assert numbers == list(range(1, len(rec.lines) + 1))
    for a, b in zip(rec.lines, rec.lines[1:], strict=False):
        assert a.end is not None and a.end < b.start
    for ln in rec.lines:
        assert ln.source_ids, ln


def test_lasonya_three_metastatic_lines_and_why() -> None:
    path = next(p for p in RECORDS if p.name.startswith("Lasonya941_Carroll471"))
    rec = build_record(load(path), as_of=date(2026, 11, 22))
    # Stage 4 (TNM M1 and stage group IV) from diagnosis in April 2002: every drug is metastatic.
    assert rec.metastatic_since == date(2002, 4, 2)
    assert rec.early_exposures == ()
    assert rec.her2.status.value == "positive"
    assert rec.hr_positive
    one, two, three = rec.lines

    # Line 1: paclitaxel, eight per-cycle MedicationRequests (583214) merged into one course.
    assert one.drugs == ("paclitaxel",)
    assert one.start == date(2002, 4, 11)
    assert len(one.source_ids) == 8
    assert all(s.startswith("MedicationRequest/") for s in one.source_ids)
    assert one.start_reason == "first anticancer therapy in the metastatic setting"
    assert not one.ended_in_progression  # the 2002-10-10 disease status was "improved"

    # Line 2: doxorubicin starts 2002-10-24, long after day 28 of line 1 and with no progression
    # in between: a new chemotherapy partner, so a new line (not a substitution: different family).
    assert two.drugs == ("doxorubicin",)
    assert two.start == date(2002, 10, 24)
    assert (two.start - one.start).days > 28
    assert two.start_reason == "new chemotherapy partner doxorubicin after day 28"
    assert len(two.source_ids) == 8
    assert one.end is not None and one.end < two.start

    # Line 3: trastuzumab SC (2119714) + tamoxifen + abemaciclib (Verzenio 1946840) on
    # 2003-03-20, the day progression (97509-4 = worsened) is documented: line 2 ended in
    # progression and any change after progression is a new line.
    assert [p.date for p in rec.progressions] == [date(2003, 3, 20)]
    assert two.ended_in_progression and two.stop_reason == "progression"
    assert two.progression_ids == (rec.progressions[0].source_id,)
    assert three.drugs == ("abemaciclib", "tamoxifen", "trastuzumab")
    assert three.start == date(2003, 3, 20)
    assert three.start_reason == "regimen changed after documented progression on 2003-03-20"
    assert three.her2_directed and not one.her2_directed and not two.her2_directed
    assert len(rec.lines) == 3


def test_her2_positive_records_have_her2_status() -> None:
    for name in ("Charlsie105_Smith67", "Clarice719_Kertzmann286", "Lasonya941_Carroll471"):
        path = next(p for p in RECORDS if p.name.startswith(name))
        rec = build_record(load(path), as_of=date(2026, 11, 22))
        assert rec.her2.status.value == "positive", name
        assert rec.her2.basis is not None
