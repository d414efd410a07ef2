"""Writes the fixture patients under tests/fixtures/ (run: python -m tests.make_fixtures).

Each fixture is a small FHIR R4 collection Bundle telling one clinical story; the JSON files are
committed so the CLI examples in the README work without running this script.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests import builders as b

FIXTURES = Path(__file__).parent / "fixtures"


def stories() -> dict[str, dict[str, object]]:
    return {
        # De novo HER2+ MBC, THP from 2023-10 until progression in 2025-11: line 2 is T-DXd.
        "her2_after_thp_progression": b.bundle(
            b.patient("thp-prog"),
            b.breast_cancer("2023-09-01", pid="thp-prog"),
            b.her2(True, "2023-09-10", pid="thp-prog"),
            b.er(False, "2023-09-10", pid="thp-prog"),
            b.metastasis(onset="2023-09-20", pid="thp-prog"),
            *b.thp("2023-10-05", "2025-11-20", pid="thp-prog"),
            b.progression("2025-11-15", pid="thp-prog"),
            b.lvef(62, "2025-10-01", pid="thp-prog"),
        ),
        # De novo HER2+ MBC, no therapy yet: line 1 is THP.
        "her2_de_novo": b.bundle(
            b.patient("denovo"),
            b.breast_cancer("2026-09-01", pid="denovo"),
            b.her2(True, "2026-09-10", pid="denovo"),
            b.metastasis(
                site_code="94222008",
                display="Secondary malignant neoplasm of bone",
                onset="2026-09-15",
                pid="denovo",
            ),
        ),
        # Same as the first, with interstitial lung disease on record: T-DM1 instead of T-DXd.
        "her2_ild_after_thp": b.bundle(
            b.patient("ild"),
            b.breast_cancer("2023-09-01", pid="ild"),
            b.her2(True, "2023-09-10", pid="ild"),
            b.metastasis(onset="2023-09-20", pid="ild"),
            b.ild("2021-06-01", pid="ild"),
            *b.thp("2023-10-05", "2025-11-20", pid="ild"),
            b.progression("2025-11-15", pid="ild"),
        ),
        # HER2-negative metastatic breast cancer: out of scope, no cards.
        "her2_negative": b.bundle(
            b.patient("neg"),
            b.breast_cancer("2022-01-01", pid="neg"),
            b.her2(False, "2022-01-10", pid="neg"),
            b.metastasis(onset="2023-01-01", pid="neg"),
            b.statement("56946", "paclitaxel", "2023-01-10", "2023-06-01", pid="neg"),
        ),
    }


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    for name, bundle in stories().items():
        (FIXTURES / f"{name}.json").write_text(
            json.dumps(bundle, indent=1) + "\n", encoding="utf-8"
        )


if __name__ == "__main__":
    main()
