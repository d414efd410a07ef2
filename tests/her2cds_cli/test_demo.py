"""`her2-cds demo`: synthetic patients through the real service over HTTP, end to end."""

from __future__ import annotations

import io
from datetime import date

import pytest

from her2cds_cli.cli import main
from her2cds_cli.demo import demo


def test_demo_runs_end_to_end_over_http(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert demo(patients=3, seed=7, out=out, as_of=date(2026, 11, 1)) == 0
    text = out.getvalue()
    assert text.count("\nPatient synth-") == 3
    assert "service [" in text  # answers came back from the service
    assert "patients agree with the generator's ground truth" in text
    assert "calling her2-next-line" in capsys.readouterr().err  # the progress bar


def test_demo_command_shows_controls_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--patients", "6"]) == 0
    text = capsys.readouterr().out
    assert "her2-negative" in text and "no cards (out of scope)" in text
    assert "data-needed" in text
