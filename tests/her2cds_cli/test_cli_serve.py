"""`her2-cds serve` before gunicorn starts: the plain start-up line, a busy port in one sentence,
--allow-no-auth (and its old name --dev), and the Docker image's documented command."""

from __future__ import annotations

import os
import re
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cds_service.config import ConfigError
from cds_service.security import auth
from cds_service.security.auth import serve_config
from cds_service.server import _Gunicorn
from her2cds_cli.cli import build_parser, main
from tests.cds_service.test_ops_deploy import dockerfile_stages
from tests.conftest import ROOT


@pytest.fixture
def gunicorn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records gunicorn's start (its options) instead of serving."""
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(_Gunicorn, "run", lambda self: started.append(self.options))
    return started


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_busy_port_is_one_sentence_and_exit_1_before_gunicorn(
    busy_port: int, gunicorn: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--host", "127.0.0.1", "--port", str(busy_port)]) == 1
    assert capsys.readouterr().err == (
        f"her2-cds: port {busy_port} is in use on 127.0.0.1; try --port\n"
    )
    assert gunicorn == []


def test_serve_prints_one_plain_line_first_without_the_database_password(
    gunicorn: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HER2CDS_DATABASE_URL", "postgresql+psycopg://her2cds:s3cret@db:5432/cds")
    monkeypatch.delenv("HER2CDS_AUTH", raising=False)
    port = _free_port()
    assert main(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "3"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        f"her2-cds: serving http://127.0.0.1:{port}/cds-services; authentication OFF; "
        "database postgresql+psycopg://her2cds:***@db:5432/cds; 3 workers x 4 threads"
    )
    assert "s3cret" not in err
    (options,) = gunicorn
    assert options["bind"] == f"127.0.0.1:{port}" and options["workers"] == 3


def test_allow_no_auth_is_the_name_and_dev_a_hidden_alias(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    assert parser.parse_args(["serve", "--allow-no-auth"]).allow_no_auth is True
    assert capsys.readouterr().err == ""
    assert parser.parse_args(["serve", "--dev"]).allow_no_auth is True
    assert capsys.readouterr().err == (
        "her2-cds: --dev is deprecated: it only allows serving without authentication; "
        "use --allow-no-auth\n"
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--help"])
    shown = capsys.readouterr().out
    assert "--allow-no-auth" in shown and "--dev" not in shown
    assert "development server" not in shown
    with pytest.raises(ConfigError, match="pass --allow-no-auth"):
        serve_config("0.0.0.0", auth="off", env={})


def _documented_docker_runs() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    found = re.findall(r"^(?:#\s+)?(docker run .*)$", readme + "\n" + dockerfile, re.M)
    assert found, "the README and the Dockerfile show `docker run`"
    return [shlex.split(line, comments=True) for line in found]


def _image() -> tuple[dict[str, str], dict[str, Path], str]:
    """The final stage's ENV, its files COPY'd from the repository (image path -> repository
    path), and its WORKDIR."""
    _, stages = dockerfile_stages()
    env: dict[str, str] = {}
    files: dict[str, Path] = {}
    workdir = "/"
    for op, rest in stages[-1]:
        if op == "ENV":
            env.update(dict(shlex.split(word)[0].split("=", 1) for word in rest.split()))
        elif op == "COPY":
            parts = rest.split()
            src = parts[-2]
            if src.startswith("/src/"):  # the build stage's copy of the repository
                files[parts[-1]] = ROOT / src.removeprefix("/src/")
        elif op == "WORKDIR":
            workdir = rest
    return env, files, workdir


def test_the_documented_docker_run_commands_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each documented `docker run` is the image's ENTRYPOINT (`her2-cds serve`) with the image's
    ENV, the -e variables and the arguments after the image name: its configuration must be
    accepted, and any file it names must be in the image."""
    env, files, _ = _image()
    for argv in _documented_docker_runs():
        run_env = dict(env)
        args: list[str] = []
        i = 1
        while i < len(argv):
            if argv[i] in ("-p", "-e"):
                if argv[i] == "-e":
                    name, _, value = argv[i + 1].partition("=")
                    assert value in files, f"{value} is not in the image"
                    run_env[name] = str(files[value])
                i += 2
            elif argv[i] == "her2-cds":
                args = argv[i + 1 :]
                break
            else:
                i += 1
        parsed = build_parser().parse_args(["serve", *args])
        cfg = serve_config(parsed.host, auth=parsed.auth, dev=parsed.allow_no_auth, env=run_env)
        assert cfg.host == "0.0.0.0", argv
        if "--allow-no-auth" in args:
            assert cfg.auth == "off"
            assert "-p 127.0.0.1:" in shlex.join(argv), "without auth, publish on loopback only"
        else:
            assert cfg.auth == "required"


def test_plain_docker_run_says_which_file_of_the_image_to_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without HER2CDS_TRUSTED_CLIENTS the image refuses to start; its hint names the copy of
    the sandbox's trusted-clients file the image holds."""
    env, files, _ = _image()
    (image_path,) = [p for p in files if p.endswith("trusted-clients.sandbox.json")]
    assert image_path in auth.SANDBOX_CLIENTS_EXAMPLES
    monkeypatch.chdir(tmp_path)  # the image's WORKDIR has no examples/ directory
    real = os.path.isfile
    monkeypatch.setattr(os.path, "isfile", lambda p: p == image_path or real(p))
    with pytest.raises(ConfigError) as error:
        serve_config(None, env=env)
    assert f"(to try it: {image_path})" in str(error.value)
