"""A real `pchr serve` process survives deeply nested JSON wherever a request carries JSON, and refuses it.

py_ecc raises the interpreter's recursion limit when the vault imports it, so before the depth check each of
these requests overflowed the C stack and killed the server (exit 139), unauthenticated. The test client runs
the app in the test process, where a crash would stop the whole run; here the server is the process a user runs.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.vault_process import pchr_serve

pytestmark = pytest.mark.integration

DEEP = b"[" * 200_000 + b"]" * 200_000  # 400 KB, well under the default 4 MiB body limit


def test_the_vault_process_refuses_deep_json_and_keeps_serving(tmp_path: Path) -> None:
    with pchr_serve(tmp_path) as vault, httpx.Client(base_url=vault.base, timeout=30) as http:
        register = http.post("/auth/register", content=DEEP, headers={"Content-Type": "application/json"})
        alive = http.get("/metadata").status_code
        running = vault.process.poll() is None
        printed = "" if running else vault.output()

    assert register.status_code == 400
    assert register.json()["issue"][0]["diagnostics"].startswith("body is nested deeper than 64 levels")
    assert alive == 200
    assert running, printed
