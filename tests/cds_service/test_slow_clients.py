"""Slow clients (issue 20 item 2): the default `her2-cds serve` keeps answering /healthz while two
clients trickle their request bodies, and a body that stops arriving is a 408 after
HER2CDS_BODY_TIMEOUT seconds. A real server on 127.0.0.1, started by the test."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import serving

PV = "/cds-services/her2-next-line"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    env = {
        "HER2CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'slow.db'}",
        "HER2CDS_WORKERS": "2",
        "HER2CDS_BODY_TIMEOUT": "2",
    }
    with serving(tmp_path, "serve", env) as served:
        yield served.base


class Trickler:
    """A client that declares a 1,000-byte JSON body and sends one byte every `every` seconds
    while `trickling` is set, then nothing; `answer` is what the server sent back."""

    def __init__(self, port: int, every: float = 0.4) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(
            f"POST {PV} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        self.trickling = threading.Event()
        self.trickling.set()
        self.every = every
        self.answer = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.trickling.is_set():
            time.sleep(self.every)  # a slow client
            try:
                self.sock.sendall(b" ")
            except OSError:
                return
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):  # until the server closes the connection
                self.answer += chunk

    def close(self) -> None:
        self.trickling.clear()
        self.thread.join(timeout=30)
        self.sock.close()


def test_healthz_answers_while_two_clients_trickle_their_bodies(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    slow = [Trickler(port), Trickler(port)]
    try:
        time.sleep(0.5)  # both are being read by now
        for _ in range(5):
            started = time.monotonic()
            with urllib.request.urlopen(server + "/healthz", timeout=5) as resp:
                assert resp.status == 200
            assert time.monotonic() - started < 1.0
            time.sleep(0.3)
        # they stop sending: each is answered 408 once HER2CDS_BODY_TIMEOUT (2 s) has passed
        stopped = time.monotonic()
        for s in slow:
            s.trickling.clear()
        for s in slow:
            s.thread.join(timeout=20)
            assert s.answer.startswith(b"HTTP/1.1 408"), s.answer[:200]
            assert b"OperationOutcome" in s.answer and b"HER2CDS_BODY_TIMEOUT" in s.answer
        assert time.monotonic() - stopped < 10
        with urllib.request.urlopen(server + "/healthz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        for s in slow:
            s.close()
