"""`her2-cds evaluate` and `synth` through the command line: what they read, print and count,
and how they refuse bad input (exit 2, one sentence, no traceback)."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from her2cds_cli.cli import main
from her2cds_cli.progress import progress
from tests.conftest import FIXTURES, ROOT

DE_NOVO = FIXTURES / "her2_de_novo.json"


def _json(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> dict[str, Any]:
    assert main(["evaluate", "--json", *argv]) == status
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The one sentence `argv` is refused with (exit status 2)."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert err.count("\n") == 1 and "Traceback" not in err and "usage:" not in err, err
    return err


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


def test_evaluate_json_has_one_shape_for_one_patient_and_for_two(
    capsys: pytest.CaptureFixture[str],
) -> None:
    one = _json(capsys, str(DE_NOVO))
    assert set(one) == {"patients", "errors"} and one["errors"] == []
    (patient,) = one["patients"]
    assert patient["patient"] == "denovo" and patient["file"] == str(DE_NOVO)
    kinds = [c["extension"]["org.her2cds"]["kind"] for c in patient["cards"]]
    assert "next-line" in kinds and "outOfScope" not in patient
    two = _json(capsys, str(DE_NOVO), str(FIXTURES / "her2_ild_after_thp.json"))
    assert set(two) == {"patients", "errors"}
    assert [p["patient"] for p in two["patients"]] == ["denovo", "ild"]
    assert two["patients"][0] == patient


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["evaluate", "--as-of", "2026-13-01", str(DE_NOVO)], "'2026-13-01' is not a date"),
        (["evaluate", "--as-of", "2026-W47-1", str(DE_NOVO)], "YYYY-MM-DD"),
        (["synth", "--as-of", "yesterday"], "'yesterday' is not a date in the form YYYY-MM-DD"),
        (["synth", "--patients", "-3"], "--patients: -3 is out of range: give 1 to"),
        (["synth", "--patients", "many"], "--patients: 'many' is not a whole number"),
        (["population", "--in", str(FIXTURES), "--jobs", "0"], "--jobs: 0 is out of range"),
        (["demo", "--patients", "0"], "--patients: 0 is out of range"),
        (["serve", "--port", "70000"], "--port: 70000 is out of range: give 1 to 65535"),
        (["serve", "--workers", "0"], "--workers: 0 is out of range"),
        (["evaluate", "no-such-file.json"], "no-such-file.json: no such file or directory"),
        (["population", "--in", "no-such-dir"], "no-such-dir: no such file or directory"),
        (["synth", "--out", str(DE_NOVO)], "is a file, not a directory"),
        (["export", "--fhir-server", "not-a-url", "--out", "x"], "'not-a-url' is not an http(s)"),
    ],
)
def test_bad_arguments_exit_2_with_one_sentence(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(capsys, argv)
    assert says in err and err.startswith(f"her2-cds {argv[0]}: ")


def test_bad_argument_from_the_real_command_line_has_no_traceback() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "her2cds_cli.cli", "synth", "--patients", "-3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        "her2-cds synth: argument --patients: -3 is out of range: give 1 to 1000000 "
        "(see her2-cds synth --help)"
    ]


def test_unreadable_files_are_one_sentence_each_and_the_others_are_evaluated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"not gzip")
    truncated = tmp_path / "cut.json.gz"
    truncated.write_bytes(gzip.compress(DE_NOVO.read_bytes())[:40])
    files = [bad, listed, broken, truncated]
    assert main(["evaluate", "--json", *map(str, files), str(DE_NOVO)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 4 and "Traceback" not in captured.err
    assert lines[0] == (
        f"her2-cds: {bad} is not valid JSON "
        "(unexpected character, expected a string key: line 1 column 2 (char 1))"
    )
    assert lines[1] == f"her2-cds: {listed} is not a FHIR Bundle or resource (no resourceType)"
    assert lines[2].startswith(f"her2-cds: cannot read {broken}: ")
    assert lines[3].startswith(f"her2-cds: cannot read {truncated}: ")
    answer = json.loads(captured.out)
    assert [e["file"] for e in answer["errors"]] == [str(f) for f in files]
    assert [p["patient"] for p in answer["patients"]] == ["denovo"]


def _synth(capsys: pytest.CaptureFixture[str], out: Path, *extra: str) -> str:
    assert main(["synth", "--patients", "3", "--seed", "5", "--out", str(out), *extra]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar when stderr is not a terminal
    return captured.out


def test_synth_counts_every_file_it_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    said = _synth(capsys, tmp_path / "b")
    assert said == (
        f"her2-cds: wrote 3 patients (6 files: 3 Bundles, 3 answer files) to {tmp_path / 'b'}\n"
    )
    assert len(list((tmp_path / "b").iterdir())) == 6
    said = _synth(capsys, tmp_path / "n", "--ndjson")
    n = len(list((tmp_path / "n").iterdir()))
    ndjson = len(list((tmp_path / "n").glob("*.ndjson")))
    assert f"wrote 3 patients ({n} files: {ndjson} NDJSON files, 3 answer files)" in said


def test_evaluate_reads_directories_and_ndjson_and_skips_answer_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _synth(capsys, tmp_path / "b")
    _synth(capsys, tmp_path / "n", "--ndjson")
    truths = sorted(
        p.name.removesuffix(".truth.json") for p in (tmp_path / "b").glob("*.truth.json")
    )
    bundles = _json(capsys, str(tmp_path / "b"))
    assert sorted(p["patient"] for p in bundles["patients"]) == truths
    assert all(
        p["file"].endswith(".json") and ".truth." not in p["file"] for p in bundles["patients"]
    )
    ndjson = _json(capsys, str(tmp_path / "n"))
    assert sorted(p["patient"] for p in ndjson["patients"]) == truths
    by_id = {p["patient"]: p["cards"] for p in bundles["patients"]}
    assert {p["patient"]: p["cards"] for p in ndjson["patients"]}.keys() == by_id.keys()
    for p in ndjson["patients"]:  # the same record either way: the same advice
        assert [c["summary"] for c in p["cards"]] == [c["summary"] for c in by_id[p["patient"]]]
    truth = tmp_path / "b" / f"{truths[0]}.truth.json"
    answer = _json(capsys, str(truth), status=2)
    assert answer == {
        "patients": [],
        "errors": [
            {
                "file": str(truth),
                "error": f"{truth} is a ground-truth file written by synth, not a patient record",
            }
        ],
    }
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty)]) == 2
    assert "holds no FHIR Bundles" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_and_silent_otherwise() -> None:
    tty, pipe = _Terminal(), io.StringIO()
    for stream in (tty, pipe):
        with progress(4, "synth", stream) as advance:
            for _ in range(4):
                advance()
    assert "synth" in tty.getvalue() and "4/4" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_gitignore_keeps_the_default_output_directories_out() -> None:
    run = subprocess.run(
        ["git", "check-ignore", "synth/x.json", "report/report.html"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode == 128:
        pytest.skip("not a git checkout")
    assert run.stdout.split() == ["synth/x.json", "report/report.html"]
