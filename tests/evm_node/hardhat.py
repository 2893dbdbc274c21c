"""Run the Hardhat 2 node pinned in package-lock.json on 127.0.0.1, for the EVM ledger's integration tests and
benchmark: a real JSON-RPC node in its own process (Hardhat 3 refuses Node 20, hence 2.x).

The npm dependencies are installed on first use with ``npm ci`` (again whenever the lockfile is newer than the
install), without install scripts: Hardhat's EVM (EDR) ships as prebuilt platform packages. The node runs from
this directory, so it reads ``hardhat.config.js`` here (chain id 31337, automine: one block per transaction).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
CLI = HERE / "node_modules" / "hardhat" / "internal" / "cli" / "cli.js"


def node_missing() -> str | None:
    """Why the Hardhat node cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed: the EVM ledger's Hardhat integration tests need Node.js 20 (CI has it)"
    return None


def install() -> None:
    """``npm ci`` into tests/evm_node/node_modules, unless it already holds what package-lock.json pins."""
    installed = HERE / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= (HERE / "package-lock.json").stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("node is installed but npm is not: install npm to fetch Hardhat into tests/evm_node")
    done = subprocess.run(
        [npm, "ci", "--prefix", str(HERE), "--ignore-scripts", "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm ci --prefix {HERE} failed:\n{done.stdout}\n{done.stderr}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chain_id(url: str) -> int | None:
    try:
        answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=2)
        return int(answer.json()["result"], 16)
    except (httpx.HTTPError, KeyError, ValueError):
        return None


@contextmanager
def hardhat_node(*, start_timeout: float = 90.0) -> Iterator[str]:
    """Start ``hardhat node`` on a free loopback port; yield its JSON-RPC URL; stop it afterwards."""
    missing = node_missing()
    if missing is not None:
        raise RuntimeError(missing)
    install()
    node = shutil.which("node")
    assert node is not None
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "NO_COLOR": "1"}
    with tempfile.TemporaryFile() as log:  # the node prints every RPC call: to a file, never a pipe that fills
        process = subprocess.Popen(
            [node, str(CLI), "node", "--hostname", "127.0.0.1", "--port", str(port)],
            cwd=HERE,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + start_timeout
            while _chain_id(url) is None:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read()[-2000:].decode(errors="replace")
                    raise RuntimeError(f"the Hardhat node did not start on {url}:\n{tail}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
