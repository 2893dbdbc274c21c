"""The vault under test as a separate uvicorn process: start on a free loopback port, wait, always stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from loadgen import cpu_seconds
from vault_app import DATABASE_URL_ENV, PUBLIC_URL_ENV, SIGNING_KEY_ENV

from ehr.api.app import load_or_create_token_key

__all__ = ["VaultProcess", "run_vault"]

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class VaultProcess:
    base_url: str
    host: str
    port: int
    pid: int
    workers: int

    def pids(self) -> list[int]:
        """The uvicorn process and its children (the workers, with ``--workers 2``)."""
        return [self.pid, *_children(self.pid)]

    def alive(self) -> bool:
        """The uvicorn process is running (not gone, not a zombie waiting to be reaped)."""
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the workers, or the single process."""
        return _workers(self.pid) if self.workers > 1 else [self.pid]


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def _workers(pid: int) -> list[int]:
    """uvicorn's worker processes (multiprocessing spawns them; its resource tracker is a child too)."""
    workers = []
    for child in _children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except OSError:
            continue
    return workers


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _uvicorn() -> str:
    candidate = Path(sys.executable).parent / "uvicorn"
    return str(candidate) if candidate.exists() else "uvicorn"


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, workers: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(base_url=base_url, timeout=2.0) as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {proc.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not answer within {START_TIMEOUT_S:.0f} s:\n{_tail(log)}")
            try:
                if http.get("/metadata").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    # With several workers the first answer comes from whichever booted first: wait until every worker has
    # finished importing, which shows as all of them going idle.
    while workers > 1 and time.monotonic() < deadline:
        pids = _workers(proc.pid)
        before = [cpu_seconds(p) for p in pids]
        time.sleep(0.3)
        if len(pids) == workers and all(cpu_seconds(p) - b < 0.03 for p, b in zip(pids, before, strict=True)):
            break


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM uvicorn (it stops its workers), wait; SIGKILL the process group we created if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)
    # Workers left behind by a supervisor that died are still in the process group we created.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def run_vault(workdir: Path, *, workers: int, host: str = "127.0.0.1") -> Iterator[VaultProcess]:
    """Serve a fresh vault (SQLite file in ``workdir``) with ``workers`` uvicorn workers until the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    key_path = workdir / "token.key"
    load_or_create_token_key(key_path)  # made once here, so every worker signs and verifies with the same key
    port = _free_port(host)
    env = {
        **os.environ,
        DATABASE_URL_ENV: f"sqlite:///{workdir / 'bench.db'}",
        SIGNING_KEY_ENV: str(key_path),
        PUBLIC_URL_ENV: f"http://{host}:{port}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    command = [
        _uvicorn(),
        "vault_app:create",
        "--factory",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
    ]
    log = workdir / f"uvicorn-{workers}w.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )
    try:
        base_url = f"http://{host}:{port}"
        _wait_ready(proc, base_url, workers, log)
        yield VaultProcess(base_url, host, port, proc.pid, workers)
    finally:
        _stop(proc)
