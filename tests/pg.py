"""A throw-away PostgreSQL server for tests: initdb into a temporary folder, pg_ctl start on a
free port on 127.0.0.1 (unix socket in the same folder), stop and delete on exit.

    with PostgresServer() as pg:          # or: pg = PostgresServer(); pg.start(); ...; pg.stop()
        url = pg.url("her2cds")           # postgresql+psycopg://postgres@127.0.0.1:PORT/her2cds
        pg.create_database("her2cds")

`unavailable_reason()` says why no server can be started here (no binaries, no psycopg, root
without a non-root user to run as), for `pytest.skip`. As root, PostgreSQL refuses to run, so
the server runs as the `postgres` user (or HER2CDS_TEST_PG_USER) through subprocess's `user=`.
Binaries: HER2CDS_TEST_PG_BIN, else `initdb` on PATH, else /usr/lib/postgresql/<newest>/bin.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

SUPERUSER = "postgres"


def find_bin_dir() -> Path | None:
    env = os.environ.get("HER2CDS_TEST_PG_BIN")
    candidates = [Path(env)] if env else []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    return None


def _run_as() -> str | None:
    """The user to run PostgreSQL as: None for ourselves, a name when we are root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("HER2CDS_TEST_PG_USER", "postgres")
    try:
        pwd.getpwnam(name)
    except KeyError:
        return ""
    return name


def unavailable_reason() -> str | None:
    if find_bin_dir() is None:
        return "no PostgreSQL binaries (initdb, pg_ctl)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    if _run_as() == "":
        return "running as root with no non-root user to run PostgreSQL as"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, trust auth, fsync off: tests only."""

    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL binaries found")
        self.bin_dir = bin_dir
        self.user = _run_as()
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="her2cds-pg-", dir=base_dir))
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "sock"
        self.log = self.dir / "postgres.log"
        self.running = False

    def _run(self, *args: str, timeout: float = 60) -> None:
        uid = gid = None
        groups: list[int] | None = None
        if self.user:  # root: run as that user, with its group only
            entry = pwd.getpwnam(self.user)
            uid, gid, groups = entry.pw_uid, entry.pw_gid, []
        result = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            user=uid,
            group=gid,
            extra_groups=groups,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )

    def start(self) -> PostgresServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.socket_dir.mkdir()
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        )
        self.resume()

    def resume(self) -> None:
        """Start the server on its existing data directory (after `pause`)."""
        options = f"-p {self.port} -h 127.0.0.1 -k {self.socket_dir} -F -c max_connections=50"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )
        self.running = True

    def pause(self) -> None:
        """Stop the server but keep its data: a database outage that `resume` ends."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create `name` (if missing); its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.running:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            self.running = False
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
