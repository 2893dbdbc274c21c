"""Where a request's CPU time goes: cProfile on every thread of an in-process uvicorn server under load.

Not part of ``make bench``. Run ``.venv/bin/python bench/profile_server.py [reads|creates] [seconds]``: the vault
runs under uvicorn in this process (every thread profiled: the event loop and the thread pool), the load comes
from ``bench/loadgen.py`` in another process, and the hottest functions are printed, by own time and by
cumulative time, with ``ehr/`` functions listed separately. cProfile roughly doubles the cost of Python code,
so read the shares, not the absolute times; times are per-thread CPU time (waits for the GIL or a lock
do not count).
"""

from __future__ import annotations

import cProfile
import dataclasses
import io
import json
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from httpbench import LOADGEN, resource_ids
from loadgen import Spec
from workload import observation

from ehr._serve import listen, serve_in_thread
from ehr.api import create_app
from ehr.client import VaultClient
from ehr.identity import ActorKeys, Role
from ehr.settings import Settings

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _start_thread_profile(_frame: FrameType, _event: str, _arg: Any) -> None:
    """Installed with threading.setprofile: the first event in a new thread switches it to its own cProfile."""
    profile = cProfile.Profile(time.thread_time)  # CPU time: wall time would count waits for the GIL
    with _lock:
        _profiles.append(profile)
    profile.enable()


def _load(base: str, token: str, method: str, paths: list[str], body: str | None, expect: int, seconds: float) -> Any:
    host, port = base.removeprefix("http://").split(":")
    spec = Spec(host, int(port), token, method, paths, [body] if body else None, False, expect, 16, 0.5, seconds)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        path = Path(handle.name)
    spec.dump(path)
    try:
        done = subprocess.run([sys.executable, str(LOADGEN), str(path)], capture_output=True, text=True, check=True)
    finally:
        path.unlink(missing_ok=True)
    return json.loads(done.stdout)


def _print(order: str, pattern: str, limit: int) -> None:
    out = io.StringIO()
    pstats.Stats(*_profiles, stream=out).sort_stats(order).print_stats(pattern, limit)
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def main() -> None:
    scenario = sys.argv[1] if len(sys.argv) > 1 else "reads"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    with tempfile.TemporaryDirectory(prefix="pchr-profile-") as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/profile.db")
        keys = ActorKeys.generate(Role.PATIENT)
        body = json.dumps(observation(keys.address))
        listener = listen()
        served = create_app(dataclasses.replace(settings, public_url=listener.url))
        with serve_in_thread(served, listener=listener) as base, httpx.Client(base_url=base, timeout=30) as http:
            client = VaultClient(http, keys)  # set-up on an unprofiled server: the patient and 300 records
            client.register()
            headers = {"Authorization": f"Bearer {client.access_token()}", "Content-Type": "application/fhir+json"}
            ids = resource_ids(
                [http.post("/Observation", content=body, headers=headers).headers["location"] for _ in range(300)]
            )
        threading.setprofile(_start_thread_profile)  # every thread started from here on is profiled
        listener = listen()
        profiled = create_app(dataclasses.replace(settings, public_url=listener.url))
        with serve_in_thread(profiled, listener=listener) as base, httpx.Client(base_url=base, timeout=30) as http:
            token = VaultClient(http, keys).access_token()
            if scenario == "reads":
                outcome = _load(base, token, "GET", [f"/Observation/{i}" for i in ids], None, 200, seconds)
            else:
                outcome = _load(base, token, "POST", ["/Observation"], body, 201, seconds)
        threading.setprofile(None)
    print(f"{scenario}: {outcome['rate']:.0f}/s under cProfile, errors {outcome['errors']}, {len(_profiles)} threads")
    _print("tottime", "", 25)
    _print("cumulative", r"/ehr/", 30)
    _print("cumulative", r"fastapi/|starlette/|anyio/|uvicorn/", 25)


if __name__ == "__main__":
    main()
