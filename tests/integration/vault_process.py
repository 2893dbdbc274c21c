"""Run the vault as a user does, ``pchr serve`` in its own process, for tests that need a real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class VaultProcess:
    base: str
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        """What the server printed so far (after it stopped)."""
        return self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_serving(base: str, server: subprocess.Popen[bytes], *, seconds: float) -> None:
    """Poll ``base``/metadata until it answers 200; fails with the server's output if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/metadata", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        time.sleep(0.2)


@contextmanager
def pchr_serve(tmp_path: Path, *, workers: int = 1) -> Iterator[VaultProcess]:
    """``pchr serve`` on a free loopback port with a SQLite database in ``tmp_path``; stopped on exit."""
    port = _free_port()
    pchr = Path(sys.executable).with_name("pchr")
    env = {**os.environ, "PCHR_TOKEN_KEY": str(tmp_path / "token.key"), "PCHR_MODELS": ""}
    server = subprocess.Popen(
        [
            str(pchr),
            "serve",
            "--workers",
            str(workers),
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{tmp_path}/v.db",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, server, seconds=30)
        yield VaultProcess(base, server)
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stdout:
            server.stdout.close()
