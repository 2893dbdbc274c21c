"""The pinned JavaScript tools of the interop tests: ``npm ci`` into tests/interop/node_modules, and node itself.

package-lock.json pins circomlibjs, snarkjs, circom2 (the circom compiler built to WebAssembly) and circomlib
(circom's standard circuits). They are installed on first use (again whenever the lockfile is newer than the
install) with ``npm ci --ignore-scripts``: none of them needs an install script.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"


def node_missing() -> str | None:
    """Why the JavaScript tools cannot run here, or None when they can."""
    if shutil.which("node") is None:
        return "node is not installed: the interop tests need Node.js 20 and npm (CI has them)"
    return None


def node() -> str:
    """The node executable; RuntimeError naming what to install when there is none."""
    found = shutil.which("node")
    if found is None:
        raise RuntimeError(node_missing())
    return found


def install() -> None:
    """``npm ci`` into tests/interop/node_modules, unless it already holds what package-lock.json pins."""
    installed = NODE_MODULES / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= (HERE / "package-lock.json").stat().st_mtime:
        return
    node()
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("node is installed but npm is not: install npm to fetch the pinned tools into tests/interop")
    done = subprocess.run(
        [npm, "ci", "--prefix", str(HERE), "--ignore-scripts", "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm ci --prefix {HERE} failed:\n{done.stdout}\n{done.stderr}")


def package_version(name: str) -> str:
    """The installed version of an npm package (from its package.json)."""
    install()
    version: str = json.loads((NODE_MODULES / name / "package.json").read_text())["version"]
    return version
