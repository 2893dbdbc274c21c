"""Groth16 on BN254 (``zk.groth16``): setup, prove and verify for the consent circuit, on one core.

The circuit is :mod:`zk.consent_circuit` (DESIGN.md section 6): seven public inputs, a Poseidon(5) grant leaf on a
10-level Poseidon(4) Merkle path (the 4-ary grant tree), a 64-bit subset, a 64-bit less-than, the request hash bound
and the patient tag; 3,890 constraints, a 4,096-point domain. Its values are random (a random path and grant, not a
ledger's), which changes nothing for the prover: every wire of it is a field element either way. Measured:

1. the development setup, once (CPU and wall time);
2. the key's MSM bases (once per key and process), then ``prove`` (median of ``prove_runs``), including its
   self-check of the proof against the verifying key; one extra proof is taken apart into its phases (quotient on
   the odd coset, the three MSMs) for the breakdown;
3. ``verify`` with a prepared key (median of ``verify_runs``), each run on a fresh proof's values: public-input
   checks, point checks (G2 subgroup included), the public-input MSM, three Miller loops and one final
   exponentiation; ``prepare`` once; and, for context, py_ecc's pairing check of the same four pairs;
4. the proof's binary size;
5. side by side, snarkjs (the version pinned in tests/interop/package-lock.json) proving with the same key (written
   as a ``.zkey``) and witness (a ``.wtns``): ``groth16.prove`` in one node process (tests/interop/groth16_prove.js),
   on one core (``taskset -c 0``) and on both; each of its proofs is checked with our verifier.

Timings are CPU time of this process (``time.process_time``: the machine is shared, so wall time is noisier) with
wall time beside it. Everything runs in this one process, on one core.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from report import Summary, number, ratio, table

# This file's name is the package's: run as a script, bench/ comes first on sys.path and ``import zk`` would find
# this file. Put the repository first so that ``zk`` is the package (bench/run.py loads this file by path).
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consent_chain.state_tree import ARITY, DEPTH, MerklePath, compute_root  # noqa: E402
from zk import boundary  # noqa: E402
from zk.consent_circuit import ConsentStatement, ConsentWitness, build_consent_circuit, patient_tag  # noqa: E402
from zk.curve import g1_add_mixed, g1_neg, g1_to_affine  # noqa: E402
from zk.field import CURVE_ORDER  # noqa: E402
from zk.groth16 import _quotient_on_odd_coset, prepare, prove, setup, verify  # noqa: E402
from zk.keys import Proof  # noqa: E402
from zk.msm import msm_g1_jacobian, msm_jacobian  # noqa: E402
from zk.poseidon import poseidon  # noqa: E402
from zk.r1cs import ConstraintSystem  # noqa: E402
from zk.snarkjs import proof_from_json, public_signals_from_json, wtns_to_bytes, zkey_to_bytes  # noqa: E402

__all__ = ["ZkPlan", "ZkResults", "headline_rows", "measure_zk", "zk_sections"]

PROVE_GOAL_S = 3.0
VERIFY_GOAL_S = 0.4
PROOF_SIZE_GOAL = 256
Log = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class ZkPlan:
    prove_runs: int = 5
    verify_runs: int = 20
    reference_runs: int = 3
    snarkjs_runs: int = 5
    seed: int = 5500


@dataclass(frozen=True)
class Timing:
    """One measurement's samples, CPU and wall seconds side by side."""

    cpu: list[float]
    wall: list[float]


@dataclass
class ZkResults:
    plan: ZkPlan
    constraints: int = 0
    variables: int = 0
    public_inputs: int = 0
    domain: int = 0
    coefficients: int = 0
    setup: Timing = field(default_factory=lambda: Timing([], []))
    prove: Timing = field(default_factory=lambda: Timing([], []))
    prepare: Timing = field(default_factory=lambda: Timing([], []))
    verify: Timing = field(default_factory=lambda: Timing([], []))
    reference_verify: Timing = field(default_factory=lambda: Timing([], []))
    phases: dict[str, float] = field(default_factory=dict)
    """CPU seconds of the prover's phases, one proof taken apart."""
    bases: float = 0.0
    """CPU seconds to make the key's MSM bases (once per key and process, before the first proof)."""
    proof_bytes: int = 0
    snarkjs_version: str = ""
    snarkjs: dict[str, Timing] = field(default_factory=dict)
    """snarkjs's prove on the same key and witness, by configuration ("1 core", "2 cores")."""
    snarkjs_missing: str = ""
    """Why snarkjs was not measured (no node), or empty."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _timed(op: Callable[[], T]) -> tuple[float, float, T]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = op()
    return time.process_time() - cpu, time.perf_counter() - wall, value


def _runs(op: Callable[[], object], count: int) -> Timing:
    cpu, wall = [], []
    for _ in range(count):
        c, w, _ = _timed(op)
        cpu.append(c)
        wall.append(w)
    return Timing(cpu, wall)


def consent_instance(rng: random.Random) -> ConstraintSystem:
    """The consent circuit for a random grant on a random path of the grant tree (a true statement)."""
    r = CURVE_ORDER
    grantee, model, salt, request_hash = (rng.randrange(r) for _ in range(4))
    scope = rng.getrandbits(64)
    expiry = rng.randrange(2**40, 2**63)
    siblings = tuple((rng.randrange(r), rng.randrange(r), rng.randrange(r)) for _ in range(DEPTH))
    path = MerklePath(rng.randrange(ARITY**DEPTH), siblings)
    leaf = poseidon([grantee, model, scope, expiry, salt])
    statement = ConsentStatement(
        root=compute_root(leaf, path),
        grantee=grantee,
        model=model,
        used_mask=scope & rng.getrandbits(64),
        t=expiry - rng.randrange(1, 2**20),
        request_hash=request_hash,
        tag=patient_tag(salt, request_hash),
    )
    return build_consent_circuit(statement, ConsentWitness(scope, expiry, salt, path))


def measure_zk(plan: ZkPlan, log: Log) -> ZkResults:
    out = ZkResults(plan)
    rng = random.Random(plan.seed)
    circuit = consent_instance(rng)
    r1cs = circuit.r1cs()
    out.constraints, out.variables, out.public_inputs = r1cs.num_constraints, r1cs.num_variables, r1cs.num_public
    log(f"zk: {out.constraints:,} constraints, {out.variables:,} wires; development setup ...")
    cpu, wall, pk = _timed(lambda: setup(r1cs, rng=rng))
    out.setup = Timing([cpu], [wall])
    out.domain, out.coefficients = pk.domain_size, len(pk.coefficients)

    witness = circuit.witness
    public = r1cs.public_inputs(witness)
    log(f"zk: setup {cpu:.1f} s CPU; the key's MSM bases, then {plan.prove_runs} proofs ...")
    out.bases = _timed(lambda: pk.msm_bases)[0]
    proofs: list[Proof] = []
    out.prove = _runs(lambda: proofs.append(prove(pk, witness, rng=rng)), plan.prove_runs)
    out.proof_bytes = len(proofs[-1].to_bytes())

    n_pub = pk.num_public
    p_odd: list[int] = []
    out.phases["quotient on the odd coset (3 iNTT + 3 coset NTT)"] = _timed(
        lambda: p_odd.extend(_quotient_on_odd_coset(pk, witness))
    )[0]
    bases = pk.msm_bases
    out.phases[f"MSM A ({len(pk.a_query):,} G1 points)"] = _timed(lambda: msm_jacobian(bases.a, witness))[0]
    b_points = sum(1 for p in pk.b_g2_query if p != ((0, 0), (0, 0)))
    out.phases[f"MSM B ({b_points:,} G2 points)"] = _timed(lambda: msm_jacobian(bases.b_g2, witness))[0]
    c_scalars = [*witness[n_pub + 1 :], *p_odd, *(7 * x for x in witness)]
    c_count = sum(1 for p in (*pk.l_query, *pk.h_query, *pk.b_g1_query) if p != (0, 0))
    out.phases[f"MSM C: L, H and B in G1 ({c_count:,} G1 points)"] = _timed(lambda: msm_jacobian(bases.c, c_scalars))[0]

    log(f"zk: prove {statistics.median(out.prove.cpu):.2f} s CPU; prepare and {plan.verify_runs} verifications ...")
    prepared_list = []
    out.prepare = _runs(lambda: prepared_list.append(prepare(pk.vk)), 1)
    prepared = prepared_list[0]
    cycle = iter(proofs * plan.verify_runs)
    out.verify = _runs(lambda: verify(prepared, public, next(cycle)), plan.verify_runs)

    _measure_snarkjs(plan, out, pk, witness, prepared, log)

    log("zk: py_ecc's pairing check of the same equation, for context ...")
    proof = proofs[0]
    vk = pk.vk
    acc = g1_to_affine(g1_add_mixed(msm_g1_jacobian(vk.ic[1:], public), vk.ic[0]))
    pairs = [(g1_neg(proof.a), proof.b), (acc, vk.gamma_g2), (proof.c, vk.delta_g2), (vk.alpha_g1, vk.beta_g2)]
    reference = _runs(lambda: _assert(boundary.pairing_product_is_one(pairs)), plan.reference_runs)
    out.reference_verify = reference
    return out


def _measure_snarkjs(plan: ZkPlan, out: ZkResults, pk: Any, witness: list[int], prepared: Any, log: Log) -> None:
    """snarkjs's prover on this key and witness, on one core and on two; each proof checked with our verifier."""
    from tests.interop import npm

    if (why := npm.node_missing()) is not None:
        out.snarkjs_missing = why
        log(f"zk: snarkjs not measured: {why}")
        return
    npm.install()
    out.snarkjs_version = npm.package_version("snarkjs")
    with tempfile.TemporaryDirectory(prefix="pchr-bench-snarkjs-") as work:
        zkey, wtns = Path(work) / "consent.zkey", Path(work) / "consent.wtns"
        zkey.write_bytes(zkey_to_bytes(pk))
        wtns.write_bytes(wtns_to_bytes(witness))
        request = json.dumps({"zkey": str(zkey), "wtns": str(wtns), "runs": plan.snarkjs_runs})
        one_core = ["taskset", "-c", "0"] if shutil.which("taskset") else None
        for name, prefix in (("1 core", one_core), ("2 cores", [])):
            if prefix is None:
                log(f"zk: snarkjs on {name} not measured: no taskset")
                continue
            log(f"zk: snarkjs {out.snarkjs_version} proves {plan.snarkjs_runs} times on {name} ...")
            done = subprocess.run(
                [*prefix, npm.node(), str(npm.HERE / "groth16_prove.js")],
                input=request,
                capture_output=True,
                text=True,
                cwd=npm.HERE,
                timeout=600,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"snarkjs's prover failed:\n{done.stderr}")
            answer = json.loads(done.stdout)
            proof = proof_from_json(answer["proof"])
            verify(prepared, public_signals_from_json(answer["public"]), proof)
            out.snarkjs[name] = Timing(answer["cpu"], answer["wall"])


def _assert(condition: bool) -> None:
    if not condition:
        raise AssertionError("py_ecc refused a proof that zk.groth16 accepted")


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _met(median: float, goal: float) -> str:
    return "yes" if median <= goal else "**no**"


def headline_rows(results: ZkResults) -> list[list[str]]:
    """Rows for the headline table: measurement, median, goal, ratio, goal met (lower is better for all three)."""
    prove_s = _median(results.prove.cpu)
    verify_s = _median(results.verify.cpu)
    return [
        [
            f"Groth16 prove, consent circuit ({results.constraints:,} constraints, 1 core, CPU s)",
            number(prove_s, 2),
            f"≤ {PROVE_GOAL_S:g} s",
            ratio(prove_s, PROVE_GOAL_S),
            _met(prove_s, PROVE_GOAL_S),
        ],
        [
            "Groth16 verify, prepared key (1 core, CPU ms)",
            number(verify_s * 1000, 1),
            f"≤ {VERIFY_GOAL_S * 1000:g} ms",
            ratio(verify_s, VERIFY_GOAL_S),
            _met(verify_s, VERIFY_GOAL_S),
        ],
        [
            "Groth16 proof size (bytes)",
            str(results.proof_bytes),
            f"≤ {PROOF_SIZE_GOAL}",
            ratio(results.proof_bytes, PROOF_SIZE_GOAL),
            _met(results.proof_bytes, PROOF_SIZE_GOAL),
        ],
        *_snarkjs_headline(results, prove_s),
    ]


def _snarkjs_headline(results: ZkResults, prove_s: float) -> list[list[str]]:
    one_core = results.snarkjs.get("1 core")
    if one_core is None:
        return []
    theirs = _median(one_core.cpu)
    return [
        [
            f"snarkjs {results.snarkjs_version} prove, same key and witness (1 core, CPU s); pchr ÷ snarkjs "
            f"{prove_s / theirs:.2f}",
            number(theirs, 2),
            "— (side by side)",
            "—",
            "—",
        ]
    ]


def _side_by_side(results: ZkResults) -> str:
    """pchr's prover and snarkjs's on the same key and witness, with the ratio of the medians."""
    if results.snarkjs_missing:
        return f"snarkjs was not measured beside it: {results.snarkjs_missing}."
    ours = _median(results.prove.cpu)
    rows = [["pchr `zk.groth16.prove` (Python, GMP integers)", "1", *_medians(results.prove), "1.00"]]
    for name, timing in results.snarkjs.items():
        cores = name.split()[0]
        theirs = _median(timing.cpu) if cores == "1" else _median(timing.wall)
        prover = f"snarkjs {results.snarkjs_version} `groth16.prove` (WebAssembly)"
        rows.append([prover, cores, *_medians(timing), f"{ours / theirs:.2f}"])
    header = ["Prover, same key and witness", "Cores", "Runs", "CPU median s", "Wall median s", "pchr ÷ this"]
    return (
        table(header, rows)
        + "\n\n*pchr ÷ this* divides pchr's median CPU time on one core by snarkjs's median CPU time on one core, "
        "or by its median wall time on two. snarkjs runs in one node process: one untimed proof first (it builds "
        "the curve and its worker threads), then the timed ones, each `groth16.prove` on the `.zkey` and `.wtns` "
        "bytes in memory (it parses the key's sections on every call, as it does from files). *1 core* is the "
        "process under `taskset -c 0`, its worker threads sharing that core; its CPU time includes theirs. Every "
        "snarkjs proof verified under our verifier before its time was counted."
    )


def _medians(timing: Timing) -> list[str]:
    return [str(len(timing.cpu)), number(_median(timing.cpu), 2), number(_median(timing.wall), 2)]


def _row(name: str, timing: Timing, scale: float, digits: int, goal: str) -> list[str]:
    cpu, wall = Summary.of(timing.cpu), Summary.of(timing.wall)
    return [
        name,
        str(cpu.runs),
        number(cpu.median * scale, digits),
        number(cpu.low * scale, digits),
        number(cpu.high * scale, digits),
        number(wall.median * scale, digits),
        goal,
    ]


def zk_sections(results: ZkResults) -> str:
    plan = results.plan
    timings = table(
        ["Operation", "Runs", "CPU median", "CPU min", "CPU max", "Wall median", "Goal"],
        [
            _row("`setup` (development, single party), s", results.setup, 1, 2, "—"),
            _row("`prove` (incl. its self-check), s", results.prove, 1, 2, f"≤ {PROVE_GOAL_S:g} s"),
            _row("`prepare` (verifying key), ms", results.prepare, 1000, 1, "—"),
            _row("`verify` (prepared key), ms", results.verify, 1000, 1, f"≤ {VERIFY_GOAL_S * 1000:g} ms"),
            _row("py_ecc pairing check of the same 4 pairs (context), ms", results.reference_verify, 1000, 0, "—"),
        ],
    )
    phases = table(
        ["Prover phase (one proof taken apart)", "CPU s"],
        [
            *([name, number(seconds, 2)] for name, seconds in results.phases.items()),
            [
                "(once per key and process, before the first proof: the MSM bases of `ProvingKey.msm_bases`)",
                number(results.bases, 2),
            ],
        ],
    )
    return (
        "## Zero-knowledge proofs (`zk.groth16`, single core)\n\n"
        f"Circuit: `zk.consent_circuit` for a random grant on a random path (Poseidon(5) leaf, 10-level Poseidon(4) "
        f"Merkle path, 64-bit subset, 64-bit less-than, request hash bound, patient tag): "
        f"{results.constraints:,} constraints, {results.variables:,} wires, {results.public_inputs} public inputs, "
        f"domain {results.domain:,}, {results.coefficients:,} A and B coefficients in the key. Proof: "
        f"{results.proof_bytes} bytes (EIP-197 encodings of A, B, C).\n\n" + timings + "\n\n" + phases + "\n\n"
        "### Side by side with snarkjs\n\n" + _side_by_side(results) + "\n\n"
        f"How measured: one process, one core; CPU time of the process (`time.process_time`, the machine is shared) "
        f"with wall time beside it. `prove` is timed {plan.prove_runs} times on the same witness with fresh "
        "randomness, after the key's MSM bases are made (GMP coordinates, endomorphism images and negations of its "
        "points, kept with the key: a service proves many times with one key); each run includes the prover's "
        "self-check of the proof (one verification). `verify` is timed "
        f"{plan.verify_runs} times over those proofs: input and point checks (G2 subgroup included), the "
        "public-input MSM, three Miller loops with one final exponentiation (`zk.pairing`), against "
        "`e(alpha, beta)` and the lines of gamma and delta computed once by `prepare`. The py_ecc row is "
        "`zk.boundary.pairing_product_is_one` on the same four pairs, the reference the fast pairing is tested "
        "against."
    )


if __name__ == "__main__":  # the zk section alone, as Markdown on stdout: .venv/bin/python bench/groth16.py

    def _log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    print(zk_sections(measure_zk(ZkPlan(), _log)))
