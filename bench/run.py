"""pchr benchmark: sealing and validation in-process, the vault through real HTTP, the consent ledger, then
encrypted scoring, Groth16 proofs, the attestation audit and the EVM ledger; writes bench/RESULTS.md.

Run with ``make bench`` (or ``.venv/bin/python bench/run.py``). It takes about six minutes on two cores. Raw
per-run numbers go to ``bench/.runs/`` (not committed).
"""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from httpbench import (
    READS,
    SCENARIOS,
    SEALED_CREATES,
    VALIDATED_CREATES,
    ConfigResult,
    HttpPlan,
    Scenario,
    SealedPool,
    run_config,
)
from inproc import RUN_SECONDS, InprocResult, measure_crypto, measure_service
from ledger import LedgerPlan, LedgerResults, headline_rows, ledger_sections, measure_ledger
from loadgen import Outcome
from machine import Machine, code_fingerprint, describe, parallel_speedup
from report import Summary, number, ratio, table

from ehr.identity import ActorKeys, Role

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
RAW_DIR = BENCH / ".runs"

INPROC_RUNS = 7
PLAN = HttpPlan(
    runs=5,
    concurrency=32,
    warmup_s=1.0,
    duration_s=4.0,
    sealed_warmup_s=0.5,
    sealed_duration_s=3.0,
    read_ids=1000,
)
WORKER_CONFIGS = (1, 2)
LEDGER_PLAN = LedgerPlan()

# No goal was set for the in-process figures; each is held to the HTTP goal of the request path it sits on.
DERIVED_GOALS = {
    "seal": VALIDATED_CREATES.goal,
    "unseal": READS.goal,
    "validate + seal": VALIDATED_CREATES.goal,
    "validate only": VALIDATED_CREATES.goal,
    "service: sealed read": READS.goal,
    "service: plain create": VALIDATED_CREATES.goal,
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- summaries --------------------------------------------------------------------------------------------
def _errors(outcomes: list[Outcome]) -> int:
    return sum(sum(o.errors.values()) for o in outcomes)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _server_cpu_ms(o: Outcome) -> float:
    return 1000 * sum(o.server_cpu_s.values()) / o.ok if o.ok else 0.0


def _busy(o: Outcome, cpus: int) -> float:
    """Share of all cores busy in the window (server and load generator)."""
    return (sum(o.server_cpu_s.values()) + o.loadgen_cpu_s) / o.window_s / cpus if o.window_s else 0.0


def _headline_config(results: list[ConfigResult]) -> ConfigResult:
    """The configuration with the best geometric mean of measured/goal over the two goals."""

    def score(result: ConfigResult) -> float:
        ratios = []
        for scenario in (READS, VALIDATED_CREATES):
            assert scenario.goal is not None
            rates = [o.rate for o in result.outcomes[scenario.key]]
            ratios.append(max(_median(rates), 1e-9) / scenario.goal)
        return math.prod(ratios) ** (1 / len(ratios))

    return max(results, key=score)


# -- RESULTS.md ---------------------------------------------------------------------------------------------
def _machine_section(
    m: Machine, started: datetime, seconds: float, speedup: tuple[float, float], fingerprints: list[tuple[str, str]]
) -> str:
    codes = {fp for _, fp in fingerprints}
    code = (
        f"`{fingerprints[0][1]}`, unchanged during the run"
        if len(codes) == 1
        else "changed during the run: " + ", ".join(f"{label} `{fp}`" for label, fp in fingerprints)
    )
    libs = ", ".join(f"{k} {v}" for k, v in m.libraries.items())
    rows = [
        ["Date", started.strftime("%Y-%m-%d %H:%M UTC")],
        ["CPU", m.cpu_model],
        ["Cores", f"{m.logical_cpus} logical ({m.usable_cpus} usable by this process)"],
        [
            "Parallel capacity",
            f"2 busy processes did {speedup[0]:.2f}x the work of one before the benchmark, {speedup[1]:.2f}x "
            "after (ideal 2.00x; a shared VM can give less)",
        ],
        ["RAM", f"{m.ram_gib:.1f} GiB"],
        ["OS", m.system],
        ["Python", m.python],
        ["Commit", f"`{m.commit[:12]}` ({m.tree}, at the start)"],
        [
            "Code fingerprint",
            f"{code} (sha256 of `ehr/`, `consent_chain/`, `zk/` sources, pyproject.toml, requirements.lock)",
        ],
        ["Libraries", libs],
        ["Benchmark wall time", f"{seconds:.0f} s"],
    ]
    return "## Machine\n\n" + table(["", ""], rows, "ll")


def _inproc_table(results: list[InprocResult]) -> str:
    rows = []
    for r in results:
        s = Summary.of(r.samples)
        goal = DERIVED_GOALS.get(r.name)
        rows.append(
            [
                r.name,
                str(s.runs),
                number(s.median),
                number(s.low),
                number(s.high),
                number(1e6 / s.median, 0) if s.median else "—",
                f"{number(goal)}*" if goal else "—",
                ratio(s.median, goal),
            ]
        )
    headers = ["Operation", "Runs", "Median ops/s", "Min", "Max", "µs/op (median)", "Goal ops/s", "Ratio"]
    return table(headers, rows)


def _http_table(scenario: Scenario, results: list[ConfigResult], cpus: int) -> str:
    rows = []
    for result in results:
        outcomes = result.outcomes[scenario.key]
        s = Summary.of([o.rate for o in outcomes])
        errors = _errors(outcomes)
        rows.append(
            [
                f"{result.workers} worker{'s' if result.workers > 1 else ''}",
                str(s.runs),
                number(s.median),
                number(s.low),
                number(s.high),
                number(scenario.goal) if scenario.goal else "— (info)",
                ratio(s.median, scenario.goal),
                str(errors) if errors == 0 else f"**{errors}**",
                number(_median([o.latency_ms.get("p50", 0.0) for o in outcomes]), 1),
                number(_median([o.latency_ms.get("p99", 0.0) for o in outcomes]), 1),
                number(_median([_server_cpu_ms(o) for o in outcomes]), 2),
                f"{100 * _median([_busy(o, cpus) for o in outcomes]):.0f} %",
            ]
        )
    headers = [
        "Server",
        "Runs",
        "Median req/s",
        "Min",
        "Max",
        "Goal req/s",
        "Ratio",
        "Errors",
        "p50 ms",
        "p99 ms",
        "Server CPU ms/req",
        "Both cores busy",
    ]
    return table(headers, rows)


def _run_lines(scenario: Scenario, results: list[ConfigResult]) -> str:
    lines = []
    for result in results:
        parts = []
        for o in result.outcomes[scenario.key]:
            flag = ""
            if o.errors:
                flag += " (errors: " + ", ".join(f"{k}: {v}" for k, v in o.errors.items()) + ")"
            if o.exhausted:
                flag += f" (pool used up after {o.window_s:.1f} s)"
            parts.append(f"{o.rate:,.0f}{flag}")
        split = ""
        if result.workers > 1:
            shares = _worker_split(result, scenario)
            split = f"; CPU split between the workers: {shares}"
        lines.append(f"- {result.workers} worker(s), each run in req/s: {', '.join(parts)}{split}")
    return "\n".join(lines)


def _worker_split(result: ConfigResult, scenario: Scenario) -> str:
    totals = dict.fromkeys(result.worker_pids, 0.0)
    for o in result.outcomes[scenario.key]:
        for pid, seconds in o.server_cpu_s.items():
            if int(pid) in totals:
                totals[int(pid)] += seconds
    whole = sum(totals.values()) or 1.0
    return " / ".join(f"{100 * v / whole:.0f} %" for v in totals.values())


def _headline_section(
    results: list[ConfigResult],
    headline: ConfigResult,
    crypto: list[InprocResult],
    validate: InprocResult,
    ledger: LedgerResults,
) -> str:
    rows = []
    for scenario in (READS, VALIDATED_CREATES, SEALED_CREATES):
        outcomes = headline.outcomes[scenario.key]
        median = _median([o.rate for o in outcomes])
        errors = _errors(outcomes)
        met = "—" if scenario.goal is None else ("yes" if median >= scenario.goal else "**no**")
        if errors:
            met += f" (**{errors} errors**)"
        rows.append(
            [
                f"{scenario.title}: `{scenario.request}`",
                number(median),
                number(scenario.goal) if scenario.goal else "— (info)",
                ratio(median, scenario.goal),
                met,
            ]
        )
    for r in [*crypto, validate]:
        goal = DERIVED_GOALS.get(r.name)
        median = _median(r.samples)
        rows.append(
            [
                f"In-process `{r.name}` (1 core)",
                number(median),
                f"{number(goal)}*" if goal else "—",
                ratio(median, goal),
                "—" if not goal else ("yes" if median >= goal else "**no**"),
            ]
        )
    rows += headline_rows(ledger)
    others = [r for r in results if r is not headline]
    other = ", ".join(f"{r.workers} worker(s)" for r in others)
    text = (
        f"## Headline (medians)\n\nHTTP figures: the vault under uvicorn with **{headline.workers} worker(s)**, "
        f"the configuration with the better measured/goal on reads and validated creates together "
        f"(the other, {other}, is in the tables below). The load generator runs on the same two cores. "
        f"Ledger rows: section 4.\n\n"
    )
    headers = ["Measurement", "Median per second", "Goal per second", "Ratio (measured / goal)", "Goal met"]
    return text + table(headers, rows, "lrrrl")


def _how_measured(m: Machine) -> str:
    p = PLAN
    return f"""## How measured

- **In-process** (sections 1-2): one Python thread, nothing else running. Each operation is looped for about
  {RUN_SECONDS} s per run, {INPROC_RUNS} runs; the table gives median, min and max operations per second.
  The plaintext is a ~1.2 KB laboratory Observation (`bench/workload.py`) as the vault seals it (validated,
  canonical JSON with id and meta). *Validate + seal* is what the vault does per plain create:
  `validate_resource`, `canonical_json`, `seal`. *Service* rows run the server's code path for one request
  without HTTP: bearer-token check, the `Vault` call on a SQLite file, the response object.
- **Through HTTP** (section 3): `uvicorn vault_app:create --factory` (`bench/vault_app.py`) on 127.0.0.1, a
  free port, `--log-level warning --no-access-log`, `--workers 1` and `--workers 2`, each on a fresh SQLite file
  (WAL) in a temporary directory. The benchmark process registers a patient and fetches an access token per
  run with `VaultClient`. A separate load-generator process (`bench/loadgen.py`: asyncio streams under uvloop,
  hand-written HTTP/1.1) keeps {p.concurrency} keep-alive connections busy, one request in flight each: a
  {p.warmup_s:g} s warm-up, then a {p.duration_s:g} s measured window ({p.sealed_warmup_s:g} s and \
{p.sealed_duration_s:g} s for client-sealed creates);
  {p.runs} runs per scenario and configuration. Only responses with the expected status (200 for reads, 201 for
  creates) count; every other status or transport failure is an error, and a run with errors says so.
- The connections are opened one at a time, 20 ms apart, so that they spread over the workers: opened in one
  burst, they all land on the worker that wakes first and the other stays idle.
- Order per configuration: validated creates (plain FHIR JSON, validated and sealed by the vault; their
  Location headers give the {p.read_ids:,} ids), sealed reads (cycling over those ids), client-sealed creates
  (each a `Binary` made beforehand by `VaultClient.seal_resource(resource_with_id, 1)` with a unique id,
  posted once).
- **The load generator competes for the same {m.usable_cpus} cores** as the server. *Server CPU ms/req* is the
  CPU time of the uvicorn process(es) in the window (from /proc) per counted response; *Both cores busy* adds
  the load generator's CPU time and divides by the window times the cores. Near 100 % means the machine, not the
  client, is the limit.
- `*` marks a goal that was not set for that figure: it is the HTTP goal of the request path the operation
  is on (reads 1,000/s, creates 300/s).
- **Consent ledger** (section 4): in-process and in worker processes after the HTTP runs, with nothing else
  running; its own notes are at the end of the section."""


def _findings(results: list[ConfigResult], service: list[InprocResult], cpus: int, speedup: tuple[float, float]) -> str:
    """Numbers derived from the runs that explain the HTTP figures."""
    lines = ["## What limits the HTTP figures", ""]
    service_ms = {r.name: 1000 / _median(r.samples) for r in service if r.samples}
    single = next((r for r in results if r.workers == 1), None)
    pairs = (("service: sealed read", READS), ("service: plain create", VALIDATED_CREATES))
    for name, scenario in pairs:
        if single is None or name not in service_ms:
            continue
        outcomes = single.outcomes[scenario.key]
        cpu = _median([_server_cpu_ms(o) for o in outcomes])
        core = _median([sum(o.server_cpu_s.values()) / o.window_s for o in outcomes if o.window_s])
        lines.append(
            f"- {scenario.title}, 1 worker: the server used {cpu:.2f} ms of CPU per request, at {100 * core:.0f} % "
            f"of one core (one Python process: the GIL holds it near one core). The same work on one "
            f"thread without HTTP takes {service_ms[name]:.2f} ms (service row in section 2); the other "
            f"{max(0.0, cpu - service_ms[name]):.2f} ms is HTTP handling and concurrency: uvicorn, FastAPI routing "
            f"and dependencies on the event loop, two thread-pool hops per request, GIL hand-offs between the "
            f"threads ({PLAN.concurrency} requests in flight). `bench/profile_server.py` shows the split."
        )
    for result in results:
        if result.workers > 1:
            for scenario in SCENARIOS:
                busy = _median([_busy(o, cpus) for o in result.outcomes[scenario.key]])
                lines.append(
                    f"- {scenario.title}, {result.workers} workers: the two cores were {100 * busy:.0f} % busy "
                    f"(server and load generator), CPU split between the workers {_worker_split(result, scenario)}."
                )
    lines.append(
        f"- The machine's two CPUs gave {min(speedup):.2f}x-{max(speedup):.2f}x the work of one in the "
        "parallel-capacity probe; a second worker cannot do better than that, and the creates of both workers "
        "also queue for SQLite's single write lock."
    )
    return "\n".join(lines)


def _code_warning(fingerprints: list[tuple[str, str]]) -> list[str]:
    if len({fp for _, fp in fingerprints}) == 1:
        return []
    steps = ", ".join(f"{label} `{fp}`" for label, fp in fingerprints)
    return [
        f"> **Warning: the code under test changed while the benchmark ran** ({steps}). The figures mix code "
        "versions, and the two server configurations may not have run the same code; run it again on a quiet tree."
    ]


def write_results(
    machine: Machine,
    started: datetime,
    seconds: float,
    plaintext_bytes: int,
    crypto: list[InprocResult],
    service: list[InprocResult],
    results: list[ConfigResult],
    speedup: tuple[float, float],
    fingerprints: list[tuple[str, str]],
    ledger: LedgerResults,
    areas: list[tuple[Area, Any, Any]],
) -> str:
    headline = _headline_config(results)
    validate = next(r for r in crypto if r.name == "validate + seal")
    sealing = [r for r in crypto if r.name in ("seal", "unseal")]
    validation = [r for r in crypto if r.name not in ("seal", "unseal")]
    cpus = machine.usable_cpus
    parts = [
        "# pchr benchmark results",
        f"Written by `make bench` (`bench/run.py`) on {started.strftime('%Y-%m-%d')}. Figures are medians of "
        f"several runs on the machine below; min and max are in the tables.",
        *_code_warning(fingerprints),
        _headline_section(results, headline, sealing, validate, ledger),
        *([_areas_headline(areas)] if areas else []),
        _machine_section(machine, started, seconds, speedup, fingerprints),
        _how_measured(machine),
        f"## 1. Sealing in-process (single core)\n\n`ehr.crypto.seal` / `unseal` of a {plaintext_bytes:,}-byte "
        "Observation: fresh AES-256-GCM data key, wrapped with X25519 + HKDF-SHA256 + AES-256-GCM.\n\n"
        + _inproc_table(sealing),
        "## 2. FHIR validation + sealing in-process (single core)\n\n`validate_resource` (fhir.resources R4B) + "
        "`canonical_json` + `seal`; validation alone for comparison; and the vault's service layer for one "
        "request without HTTP.\n\n" + _inproc_table(validation + service),
    ]
    section = ["## 3. Through HTTP (vault in its own uvicorn process, load from another process)"]
    for scenario in SCENARIOS:
        section.append(
            f"### {scenario.title}: `{scenario.request}`\n\n"
            + _http_table(scenario, results, cpus)
            + "\n\n"
            + _run_lines(scenario, results)
        )
    pool = next((r.sealed_pool_per_run for r in results), 0)
    section.append(
        f"Client-sealed creates: each run had {pool:,} prepared bodies (at most); a run that used them all "
        "measured up to its last response and says *pool used up*."
    )
    parts.append("\n\n".join(section))
    parts.append(_findings(results, service, cpus, speedup))
    parts.append(ledger_sections(ledger))
    for number_, (area, module, results_) in enumerate(areas, start=5):
        section = getattr(module, area.sections)(results_)
        parts.append(section.replace("## ", f"## {number_}. ", 1) if section.startswith("## ") else section)
    return "\n\n".join(parts) + "\n"


# -- the areas after the ledger ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Area:
    """A benchmark module of its own: ``measure(log)``, ``headline_rows(results)``, ``<name>_sections(results)``."""

    name: str
    title: str
    measure: str
    plan: str | None
    """A plan class the measure function takes before ``log`` (None: it takes ``log`` alone)."""
    sections: str


AREAS = (
    Area("he", "Encrypted scoring (CKKS)", "measure_he", None, "he_sections"),
    Area("groth16", "Groth16 proofs", "measure_zk", "ZkPlan", "zk_sections"),
    Area("attest", "Attestation audit", "measure_attest", None, "attest_sections"),
    Area("evm", "Consent ledger on an EVM chain", "measure_evm", "EvmPlan", "evm_sections"),
)


def _load(area: Area) -> Any:
    """The area's module, loaded by path under a ``bench_`` name so that it never shadows a package."""
    spec = importlib.util.spec_from_file_location(f"bench_{area.name}", BENCH / f"{area.name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no bench/{area.name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def measure_areas(log: Callable[[str], None]) -> list[tuple[Area, Any, Any]]:
    done = []
    for area in AREAS:
        if not (BENCH / f"{area.name}.py").exists():
            continue
        module = _load(area)
        log(f"{area.title.lower()} (bench/{area.name}.py)")
        measure = getattr(module, area.measure)
        results = measure(getattr(module, area.plan)(), log) if area.plan else measure(log)
        done.append((area, module, results))
    return done


def _areas_headline(areas: list[tuple[Area, Any, Any]]) -> str:
    rows = [row for _, module, results in areas for row in module.headline_rows(results)]
    headers = ["Measurement", "Median", "Goal", "Ratio (measured / goal)", "Goal met"]
    return (
        "## Headline: scoring, proofs, attestations, EVM (medians)\n\nSections 5 onward have the details. Ratios "
        "are measured / goal, so for times a ratio below 1 meets the goal.\n\n" + table(headers, rows, "lrrrl")
    )


# -- main -------------------------------------------------------------------------------------------------
def main() -> None:
    started = datetime.now(UTC)
    clock = time.monotonic()
    machine = describe(REPO)
    log(f"pchr bench on {machine.cpu_model}, {machine.usable_cpus} cores, Python {machine.python}")
    fingerprints = [("start", code_fingerprint(REPO))]
    speedup_before = parallel_speedup()
    log(f"parallel capacity: 2 processes do {speedup_before:.2f}x the work of one")

    log("in-process: seal, unseal, validation")
    plaintext_bytes, crypto = measure_crypto(INPROC_RUNS)
    for r in crypto:
        log(f"  {r.name}: {_median(r.samples):,.0f}/s")

    results: list[ConfigResult] = []
    with tempfile.TemporaryDirectory(prefix="pchr-bench-") as tmp:
        workdir = Path(tmp)
        log("in-process: the service layer without HTTP")
        service = measure_service(INPROC_RUNS, workdir)
        for r in service:
            log(f"  {r.name}: {_median(r.samples):,.0f}/s")
        patient = ActorKeys.generate(Role.PATIENT)
        pool = SealedPool(patient)
        for workers in WORKER_CONFIGS:
            fingerprints.append((f"{workers}-worker server start", code_fingerprint(REPO)))
            log(f"HTTP: uvicorn with {workers} worker(s)")
            results.append(run_config(workers, PLAN, patient, pool, workdir / f"workers-{workers}", log))
        log(f"(preparing sealed bodies took {pool.seconds:.1f} s, outside the measured windows)")

    fingerprints.append(("ledger start", code_fingerprint(REPO)))
    log("consent ledger: appends, proofs, Poseidon, grant tree, checkpoints")
    ledger = measure_ledger(LEDGER_PLAN, log)

    fingerprints.append(("areas start", code_fingerprint(REPO)))
    areas = measure_areas(log)

    speedup = (speedup_before, parallel_speedup())
    fingerprints.append(("end", code_fingerprint(REPO)))
    if len({fp for _, fp in fingerprints}) > 1:
        log(f"WARNING: the code under test changed during the run: {fingerprints}")
    log(f"parallel capacity after the runs: {speedup[1]:.2f}x")
    seconds = time.monotonic() - clock
    RESULTS.write_text(
        write_results(
            machine, started, seconds, plaintext_bytes, crypto, service, results, speedup, fingerprints, ledger, areas
        )
    )
    RAW_DIR.mkdir(exist_ok=True)
    raw = {
        "started": started.isoformat(),
        "machine": asdict(machine),
        "plan": asdict(PLAN),
        "parallel_speedup": speedup,
        "code_fingerprints": fingerprints,
        "inproc": [asdict(r) for r in crypto + service],
        "http": [r.to_json() for r in results],
        "ledger": ledger.to_json(),
        "areas": {area.name: results_.to_json() for area, _, results_ in areas},
    }
    (RAW_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json").write_text(json.dumps(raw, indent=1))
    log(f"wrote {RESULTS} in {seconds:.0f} s")


if __name__ == "__main__":
    main()
