"""`her2-cds evaluate` on fixture bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from her2cds_cli.cli import main
from tests.conftest import FIXTURES


def test_evaluate_prints_picture_lines_and_cards(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["evaluate", str(FIXTURES / "her2_after_thp_progression.json"), "--as-of", "2026-11-22"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "HER2           positive" in out
    assert "Metastatic     since 2023-09-20" in out
    assert "1. 2023-10-05" in out and "THP" in out
    assert "Line 2: trastuzumab deruxtecan" in out


def test_evaluate_json_prints_a_cds_response(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--json", str(FIXTURES / "her2_de_novo.json")]) == 0
    response = json.loads(capsys.readouterr().out)
    kinds = [c["extension"]["org.her2cds"]["kind"] for c in response["cards"]]
    assert "next-line" in kinds


def test_evaluate_unreadable_file_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["evaluate", str(bad)]) == 1
    assert "cannot read" in capsys.readouterr().err
