"""Facts about the machine and the code a benchmark ran on."""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["Machine", "code_fingerprint", "describe", "parallel_speedup"]

# A pure-Python busy loop: counts iterations in one second, starting at an agreed wall-clock instant.
_SPIN = """
import sys, time
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))
end = time.perf_counter() + float(sys.argv[2])
n = 0
while time.perf_counter() < end:
    sum(range(1000))
    n += 1
print(n)
"""

CODE_UNDER_TEST = ("ehr", "consent_chain", "zk")

LIBRARIES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "fhir.resources",
    "cryptography",
    "pyjwt",
    "eth-keys",
    "eth-account",
    "coincurve",
    "pycryptodome",
)


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    logical_cpus: int
    usable_cpus: int
    ram_gib: float
    python: str
    system: str
    commit: str
    tree: str
    libraries: dict[str, str]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.rstrip()  # not lstrip: `git status --porcelain` lines start with a space


def _tree_state(repo: Path) -> str:
    changed = [line[3:] for line in _git(repo, "status", "--porcelain").splitlines() if line.strip()]
    outside = [path for path in changed if not path.startswith("bench/")]
    if outside:
        return f"uncommitted changes outside bench/: {', '.join(sorted(outside)[:5])}"
    if changed:
        return "clean apart from bench/"
    return "clean"


def code_fingerprint(repo: Path) -> str:
    """A short hash of the code under test (``ehr/``, ``consent_chain/``, ``zk/`` sources and the pins).

    Committed or not; taken before and after a benchmark, it shows whether the code changed while it ran.
    """
    digest = hashlib.sha256()
    sources = [path for package in CODE_UNDER_TEST for path in sorted((repo / package).rglob("*.py"))]
    files = [*sources, repo / "pyproject.toml", repo / "requirements.lock"]
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(repo: Path) -> Machine:
    return Machine(
        cpu_model=_cpu_model(),
        logical_cpus=os.cpu_count() or 0,
        usable_cpus=len(os.sched_getaffinity(0)),
        ram_gib=_ram_gib(),
        python=platform.python_version(),
        system=f"{platform.system()} {platform.release()}",
        commit=_git(repo, "rev-parse", "HEAD") or "unknown",
        tree=_tree_state(repo),
        libraries={name: _version(name) for name in LIBRARIES},
    )


def _spin(processes: int, seconds: float) -> int:
    start = time.time() + 0.3
    procs = [
        subprocess.Popen([sys.executable, "-c", _SPIN, str(start), str(seconds)], stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    return sum(int(p.communicate(timeout=seconds + 30)[0]) for p in procs)


def parallel_speedup(processes: int = 2, seconds: float = 1.0, repeats: int = 2) -> float:
    """Work done by ``processes`` busy processes at once over the work of one (ideal: ``processes``).

    The CPUs of a shared virtual machine can deliver less than their count suggests; this says how much less
    at the time of the benchmark.
    """
    ratios = [_spin(processes, seconds) / max(1, _spin(1, seconds)) for _ in range(repeats)]
    return statistics.median(ratios)
