"""Start-up configuration: a bad HER2CDS_ variable stops `serve` with its name; gunicorn sizing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cds_service.config import Config, ConfigError, from_env
from cds_service.server import available_cpus, default_workers, gunicorn_options
from tests.conftest import ROOT


def _serve_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HER2CDS_")}
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HER2CDS_JURISDICTION", "XYZ"),
        ("HER2CDS_WORKERS", "many"),
        ("HER2CDS_PORT", "70000"),
        ("HER2CDS_LOG_LEVEL", "LOUD"),
    ],
)
def test_serve_with_a_bad_variable_exits_nonzero_naming_it(variable: str, value: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "her2cds_cli.cli", "serve"],
        cwd=ROOT,
        env=_serve_env(**{variable: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert variable in proc.stderr
    assert "configuration error" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HER2CDS_FHIR_TIMEOUT", "0"),
        ("HER2CDS_TESTING", "maybe"),
        ("HER2CDS_TIMEOUT", "soon"),
        ("HER2CDS_WORKERS", "-1"),
        ("HER2CDS_MAX_BODY_BYTES", "0"),
    ],
)
def test_every_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        from_env({variable: value})


def test_serve_settings_come_from_the_environment() -> None:
    cfg = from_env(
        {"HER2CDS_WORKERS": "3", "HER2CDS_TIMEOUT": "45", "HER2CDS_GRACEFUL_TIMEOUT": "15"}
    )
    opts = gunicorn_options(cfg, host="0.0.0.0", port=9000, workers=None)
    assert opts["bind"] == "0.0.0.0:9000"
    assert opts["workers"] == 3
    assert (opts["timeout"], opts["graceful_timeout"]) == (45, 15)
    assert opts["accesslog"] is None  # the app's JSON request line is the access log
    assert opts["preload_app"] is True
    assert gunicorn_options(Config(), host="h", port=1, workers=5)["workers"] == 5
    with pytest.raises(ConfigError, match="HER2CDS_GRACEFUL_TIMEOUT"):
        from_env({"HER2CDS_GRACEFUL_TIMEOUT": "-1"})


def test_log_salt_is_not_in_the_config_repr() -> None:
    assert "s3cret" not in repr(from_env({"HER2CDS_LOG_SALT": "s3cret"}))


@pytest.mark.parametrize(
    ("cpu_max", "expected_cap"),
    [("max 100000", None), ("150000 100000", 2), ("50000 100000", 1), ("400000 100000", 4)],
)
def test_cpus_follow_the_cgroup_quota(tmp_path: Path, cpu_max: str, expected_cap: int) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    affinity = len(os.sched_getaffinity(0))
    expected = affinity if expected_cap is None else min(affinity, expected_cap)
    assert available_cpus(tmp_path) == expected


def test_workers_are_two_per_cpu_between_two_and_eight() -> None:
    assert [default_workers(n) for n in (1, 2, 3, 4, 16)] == [2, 4, 6, 8, 8]
    assert available_cpus(Path("/nonexistent")) >= 1


def test_serve_warns_about_a_misspelt_variable() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "her2cds_cli.cli", "serve"],
        cwd=ROOT,
        env=_serve_env(HER2CDS_JURISDICTON="EMA", HER2CDS_PORT="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "HER2CDS_JURISDICTON is not a setting" in proc.stderr
    assert "HER2CDS_PORT" in proc.stderr


def test_gunicorn_builds_no_access_line_that_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's JSON line is the access log: gunicorn's own stays off and costs nothing, but
    an operator who turns `gunicorn.access` up to INFO still gets it."""
    import logging

    from gunicorn.config import Config as GunicornConfig

    opts = gunicorn_options(Config(), host="127.0.0.1", port=9000, workers=1)
    gcfg = GunicornConfig()
    for key, value in opts.items():
        gcfg.set(key, value)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logger = opts["logger_class"](gcfg)  # applies the service's logging dict config
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    built: list[int] = []

    def atoms(*_: Any) -> dict[str, Any]:
        built.append(1)
        return {}

    monkeypatch.setattr(logger, "atoms", atoms)
    logger.access(None, None, {}, None)
    assert built == []
    logger.access_log.setLevel(logging.INFO)
    logger.access_log.addHandler(logging.NullHandler())
    logger.access(None, None, {}, None)
    assert built == [1]
