"""A real `pchr serve` process survives deeply nested JSON wherever a request carries JSON, and refuses it.

py_ecc raises the interpreter's recursion limit when the vault imports it, so before the depth check each of
these requests overflowed the C stack and killed the server (exit 139), unauthenticated. The test client runs
the app in the test process, where a crash would stop the whole run; here the server is the process a user runs.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from ehr.tokens import ASSERTION_TYPE
from tests.integration.vault_process import pchr_serve

pytestmark = pytest.mark.integration

DEEP = b"[" * 200_000 + b"]" * 200_000  # 400 KB, well under the default 4 MiB body limit
DEEP_JWT = base64.urlsafe_b64encode(DEEP).rstrip(b"=").decode() + ".e30.c2ln"  # the JOSE header is DEEP


def test_the_vault_process_refuses_deep_json_and_keeps_serving(tmp_path: Path) -> None:
    with pchr_serve(tmp_path) as vault, httpx.Client(base_url=vault.base, timeout=30) as http:
        register = http.post("/auth/register", content=DEEP, headers={"Content-Type": "application/json"})
        bearer = http.get("/Observation", headers={"Authorization": f"Bearer {DEEP_JWT}"})
        form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
        form["client_assertion"] = DEEP_JWT
        token = http.post("/auth/token", data=form)
        alive = http.get("/metadata").status_code
        running = vault.process.poll() is None
        printed = "" if running else vault.output()

    assert register.status_code == 400
    assert register.json()["issue"][0]["diagnostics"].startswith("body is nested deeper than 64 levels")
    assert bearer.status_code == 401
    assert bearer.json()["issue"][0]["diagnostics"] == "access token is invalid"
    assert token.status_code == 401
    assert token.json()["error"] == "invalid_client"
    assert alive == 200
    assert running, printed
