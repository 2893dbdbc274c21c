"""Run circomlibjs (the version pinned in package-lock.json) through ``poseidon.js``: one node process per request.

The npm dependencies are installed on first use with ``npm ci`` (again whenever the lockfile is newer than the
install); install scripts are not run, since circomlibjs needs none of them (blake-hash falls back to plain JS).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "poseidon.js"


def node_missing() -> str | None:
    """Why circomlibjs cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed: the circomlibjs interop tests need Node.js 20 (CI has it)"
    return None


def install() -> None:
    """``npm ci`` into tests/interop/node_modules, unless it already holds what package-lock.json pins."""
    installed = HERE / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= (HERE / "package-lock.json").stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("node is installed but npm is not: install npm to fetch circomlibjs into tests/interop")
    done = subprocess.run(
        [npm, "ci", "--prefix", str(HERE), "--ignore-scripts", "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm ci --prefix {HERE} failed:\n{done.stdout}\n{done.stderr}")


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Send ``request`` (see poseidon.js) to circomlibjs and return its answer."""
    install()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(node_missing())
    done = subprocess.run(
        [node, str(SCRIPT)],
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
