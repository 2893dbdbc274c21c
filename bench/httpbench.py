"""Throughput through real HTTP: the vault in its own uvicorn process, load from a separate process.

For each server configuration: start a fresh vault, register the patient, then run the plain-create runs (their
``Location`` headers give the ids the read runs fetch), the read runs and the client-sealed-create runs. Each run
gets a fresh access token (they live five minutes) and its own load-generator process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from loadgen import Outcome, Spec
from vaultproc import VaultProcess, run_vault
from workload import observation, with_id

from ehr.client import VaultClient
from ehr.identity import ActorKeys

__all__ = [
    "READS",
    "SCENARIOS",
    "SEALED_CREATES",
    "VALIDATED_CREATES",
    "ConfigResult",
    "HttpPlan",
    "Scenario",
    "SealedPool",
    "resource_ids",
    "run_config",
]

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    request: str
    goal: float | None
    expect: int


READS = Scenario("reads", "Sealed reads", "GET /Observation/{id}", 1000.0, 200)
VALIDATED_CREATES = Scenario(
    "validated_creates", "Validated + sealed creates", "POST /Observation (plain FHIR JSON)", 300.0, 201
)
SEALED_CREATES = Scenario("sealed_creates", "Client-sealed creates", "POST /Observation (sealed Binary)", None, 201)
SCENARIOS = (READS, VALIDATED_CREATES, SEALED_CREATES)


@dataclass(frozen=True)
class HttpPlan:
    runs: int
    concurrency: int
    warmup_s: float
    duration_s: float
    sealed_warmup_s: float
    sealed_duration_s: float
    read_ids: int


@dataclass
class ConfigResult:
    workers: int
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)
    worker_pids: list[int] = field(default_factory=list)
    sealed_pool_per_run: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "worker_pids": self.worker_pids,
            "sealed_pool_per_run": self.sealed_pool_per_run,
            "outcomes": {k: [asdict(o) for o in v] for k, v in self.outcomes.items()},
        }


class SealedPool:
    """Sealed Binaries with unique ids, made by the SDK; reusable across configurations (each has a fresh vault)."""

    def __init__(self, keys: ActorKeys) -> None:
        self._keys = keys
        self._bodies: list[str] = []
        self.seconds = 0.0

    def slice(self, start: int, count: int) -> list[str]:
        missing = start + count - len(self._bodies)
        if missing > 0:
            began = time.perf_counter()
            with httpx.Client() as unused:  # sealing for the patient's own record makes no request
                client = VaultClient(unused, self._keys)
                resource = observation(client.address)
                self._bodies += [json.dumps(client.seal_resource(with_id(resource), 1)) for _ in range(missing)]
            self.seconds += time.perf_counter() - began
        return self._bodies[start : start + count]


def _loadgen(spec: Spec, workdir: Path) -> Outcome:
    """Run one load-generator process; a failed one counts as a run with an error."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=workdir, delete=False) as handle:
        path = Path(handle.name)
    spec.dump(path)
    limit = spec.warmup_s + spec.duration_s + 60
    try:
        done = subprocess.run(
            [sys.executable, str(LOADGEN), str(path)], capture_output=True, text=True, timeout=limit, check=False
        )
    except subprocess.TimeoutExpired:
        return Outcome(errors={"load generator timed out": 1})
    finally:
        path.unlink(missing_ok=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Outcome(errors={f"load generator failed: {last[:120]}": 1})
    return Outcome(**json.loads(done.stdout))


def resource_ids(locations: list[str]) -> list[str]:
    """Resource ids from ``.../Observation/{id}/_history/1`` Location headers."""
    found = []
    for location in locations:
        parts = urlsplit(location).path.strip("/").split("/")
        if len(parts) >= 2 and parts[-4:-3] == ["Observation"]:
            found.append(parts[-3])
    return found


def run_config(
    workers: int,
    plan: HttpPlan,
    keys: ActorKeys,
    pool: SealedPool,
    workdir: Path,
    log: Callable[[str], None],
) -> ConfigResult:
    """All runs of all scenarios against one fresh vault served by ``workers`` uvicorn workers."""
    result = ConfigResult(workers)
    with run_vault(workdir, workers=workers) as vault, httpx.Client(base_url=vault.base_url, timeout=30) as http:
        result.worker_pids = vault.worker_pids()
        VaultClient(http, keys).register()

        def spec(
            scenario: Scenario, paths: list[str], bodies: list[str] | None, *, unique: bool, keep: int = 0
        ) -> Spec:
            sealed = scenario is SEALED_CREATES
            return Spec(
                host=vault.host,
                port=vault.port,
                token=VaultClient(http, keys).access_token(),  # a fresh token for every run
                method="GET" if scenario is READS else "POST",
                paths=paths,
                bodies=bodies,
                unique=unique,
                expect=scenario.expect,
                concurrency=plan.concurrency,
                warmup_s=plan.sealed_warmup_s if sealed else plan.warmup_s,
                duration_s=plan.sealed_duration_s if sealed else plan.duration_s,
                watch_pids=vault.pids(),
                keep_locations=keep,
            )

        body = json.dumps(observation(keys.address))
        created: list[str] = []
        outcomes: list[Outcome] = []
        for i in range(plan.runs):
            keep = max(0, plan.read_ids - len(created))
            outcome = _loadgen(spec(VALIDATED_CREATES, ["/Observation"], [body], unique=False, keep=keep), workdir)
            created += resource_ids(outcome.locations)
            outcomes.append(_report(log, workers, VALIDATED_CREATES, i, outcome))
        result.outcomes[VALIDATED_CREATES.key] = outcomes
        if not created:
            raise RuntimeError("no resource was created, so there is nothing to read")

        paths = [f"/Observation/{rid}" for rid in created[: plan.read_ids]]
        result.outcomes[READS.key] = [
            _report(log, workers, READS, i, _loadgen(spec(READS, paths, None, unique=False), workdir))
            for i in range(plan.runs)
        ]

        per_run = _sealed_pool_size(outcomes, plan)
        result.sealed_pool_per_run = per_run
        sealed: list[Outcome] = []
        for i in range(plan.runs):
            bodies = pool.slice(i * per_run, per_run)
            paths = ["/Observation"] * len(bodies)
            outcome = _loadgen(spec(SEALED_CREATES, paths, bodies, unique=True), workdir)
            sealed.append(_report(log, workers, SEALED_CREATES, i, outcome))
        result.outcomes[SEALED_CREATES.key] = sealed
        _check_alive(vault)
    return result


def _sealed_pool_size(validated: list[Outcome], plan: HttpPlan) -> int:
    """Enough unique bodies for a run at up to twice the validated-create rate (no validation on the server)."""
    best = max((o.rate for o in validated), default=0.0)
    wanted = 2.0 * best * (plan.sealed_warmup_s + plan.sealed_duration_s)
    return int(min(4000, max(600, wanted)))


def _check_alive(vault: VaultProcess) -> None:
    if not vault.alive():
        raise RuntimeError("the vault process died during the runs")


def _report(log: Callable[[str], None], workers: int, scenario: Scenario, index: int, outcome: Outcome) -> Outcome:
    errors = sum(outcome.errors.values())
    note = f", {errors} error(s): {outcome.errors}" if errors else ""
    note += ", pool used up" if outcome.exhausted else ""
    log(f"  workers={workers} {scenario.key} run {index + 1}: {outcome.rate:,.0f}/s{note}")
    return outcome
