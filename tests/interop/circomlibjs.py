"""Run circomlibjs (the version pinned in package-lock.json) through ``poseidon.js``: one node process per request.

The npm dependencies are installed on first use by :mod:`tests.interop.npm` (``npm ci --ignore-scripts``: circomlibjs
needs no install script, blake-hash falls back to plain JS).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.interop.npm import HERE, install, node, node_missing

__all__ = ["install", "node_missing", "run"]

SCRIPT = HERE / "poseidon.js"


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Send ``request`` (see poseidon.js) to circomlibjs and return its answer."""
    install()
    done = subprocess.run(
        [node(), str(SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"node {SCRIPT.name} failed:\n{done.stderr}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer
