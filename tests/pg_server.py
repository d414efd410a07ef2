"""A throwaway PostgreSQL for tests: initdb + pg_ctl in a temporary directory on 127.0.0.1.

PostgreSQL refuses to run as root; when the tests run as root, the server runs as the
`postgres` system user (its directory is handed over to it). `PgServer.find()` is None when no
PostgreSQL binaries are installed, so tests can skip cleanly.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    candidates = [Path(found).parent] if found else []
    candidates += [Path(d) for d in _BIN_DIRS]
    for d in candidates:
        if (d / "pg_ctl").exists() and (d / "initdb").exists():
            return d
    return None


class PgServer:
    """One PostgreSQL cluster; `url` is a SQLAlchemy URL to its `postgres` database."""

    def __init__(self, bin_dir: Path, user: str | None) -> None:
        self.bin = bin_dir
        self.user = user  # OS user the server runs as (None: the current user)
        self.base = Path(tempfile.mkdtemp(prefix="her2cds-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        if user is not None:
            pw = pwd.getpwnam(user)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    @classmethod
    def find(cls) -> PgServer | None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            return None
        user = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return None
            user = "postgres"
        return cls(bin_dir, user)

    def _run(self, tool: str, *args: str) -> None:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs["user"] = self.user
        subprocess.run(
            [str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            cwd=self.base,
            timeout=120,
            **kwargs,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.base / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
