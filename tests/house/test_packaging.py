"""The wheel carries every knowledge, terminology and schema file the code reads.

An editable install (what the tests run on) reads them from the work tree, so only a built
wheel shows whether a deployment (`pip install .`, the Docker image) would have them.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA_DIRS = (
    "engine/knowledge",
    "fhir_mappers/terminology",
    "cds_service/api/schemas",
    "cds_service/warmup.json",
)


def _tracked_data_files() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", *DATA_DIRS], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return {f for f in out.stdout.split() if not f.endswith(".py")}


def test_wheel_contains_every_data_file(tmp_path: Path) -> None:
    wanted = _tracked_data_files()
    assert wanted, "no data files found: the layout changed, update DATA_DIRS"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip()[-200:]}")
    (wheel,) = tmp_path.glob("her2_cds-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert wanted - names == set()
