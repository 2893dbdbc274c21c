"""`pchr serve --workers 2` as a user runs it: tokens from one worker are honoured by the other."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ehr.client import VaultClient
from ehr.identity import ActorKeys, Role
from tests.conftest import observation

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_workers_share_the_token_key(tmp_path: Path) -> None:
    port = _free_port()
    pchr = Path(sys.executable).with_name("pchr")
    env = {**os.environ, "PCHR_TOKEN_KEY": str(tmp_path / "token.key"), "PCHR_MODELS": ""}
    server = subprocess.Popen(
        [str(pchr), "serve", "--workers", "2", "--port", str(port), "--database-url", f"sqlite:///{tmp_path}/v.db"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/metadata", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            time.sleep(0.2)
        keys = ActorKeys.generate(Role.PATIENT)
        with VaultClient.connect(base, keys) as client:
            client.register()
            created = client.create(observation(keys.address, 5.5))
            token = client.access_token()
        # Fresh connections spread over both workers; every one must accept the token.
        statuses = set()
        for _ in range(30):
            with httpx.Client(base_url=base) as fresh:
                statuses.add(
                    fresh.get(f"/Observation/{created['id']}", headers={"Authorization": f"Bearer {token}"}).status_code
                )
        assert statuses == {200}
        assert (tmp_path / "token.key").stat().st_mode & 0o777 == 0o600
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stdout:
            server.stdout.close()
