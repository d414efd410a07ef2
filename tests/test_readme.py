"""The README stays true for a newcomer: its example output is what the command prints."""

from __future__ import annotations

import re

import pytest

from cds_service.cli import main
from tests.conftest import ROOT


def test_readme_evaluate_example_is_what_evaluate_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cmd = re.search(r"\.venv/bin/her2-cds (evaluate tests/fixtures/\S+ --as-of \S+)\n", readme)
    assert cmd, "the README shows an evaluate command with --as-of"
    block = re.search(r"```\n(Patient thp-prog.*?)```", readme, re.S)
    assert block, "the README shows evaluate's output"
    monkeypatch.chdir(ROOT)
    assert main(cmd.group(1).split()) == 0
    assert capsys.readouterr().out.strip() == block.group(1).strip()


def test_readme_names_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ".venv/bin/her2-cds serve" in readme
    assert "python -m pytest" in readme and "-m pytest" in ci
