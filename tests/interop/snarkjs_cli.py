"""snarkjs and circom (pinned in package-lock.json) on the command line, for the interop tests.

Each function runs one ``snarkjs`` or ``circom2`` command in a subprocess and returns its exit status and output;
those that make files raise RuntimeError with the tool's output when it fails. Nothing here parses a file: the
tests read what the tools write with :mod:`zk.snarkjs`, which is what is under test.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.interop.npm import HERE, NODE_MODULES, install, node

SNARKJS = NODE_MODULES / "snarkjs" / "build" / "cli.cjs"
CIRCOM = NODE_MODULES / "circom2" / "cli.js"
CIRCOMLIB = NODE_MODULES / "circomlib" / "circuits"
CIRCUITS = Path(__file__).resolve().parent / "circuits"


@dataclass(frozen=True)
class Run:
    """A finished command: its exit status and its stdout and stderr together."""

    args: tuple[str, ...]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _run(args: list[str], cwd: Path | None, timeout: float) -> Run:
    install()
    done = subprocess.run([node(), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    return Run(tuple(args), done.returncode, done.stdout + done.stderr)


def snarkjs(*args: str | Path, timeout: float = 600) -> Run:
    """``snarkjs <args>``; the exit status is 0 for success (a valid proof, a correct witness)."""
    return _run([str(SNARKJS), *map(str, args)], None, timeout)


def checked(run: Run) -> Run:
    if not run.ok:
        raise RuntimeError(f"{' '.join(run.args)} failed ({run.returncode}):\n{run.output}")
    return run


@dataclass(frozen=True)
class Compiled:
    r1cs: Path
    wasm: Path


def circom(source: Path, out_dir: Path) -> Compiled:
    """Compile ``source`` with circom2 (``--O2``, circomlib on the include path) into ``out_dir``.

    circom2 runs under WASI with the current directory's ancestors as its only preopened directories, so it is run
    from ``/`` with every path made relative to it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)

    def rel(p: Path) -> str:
        return str(p.resolve().relative_to("/"))

    checked(
        _run(
            [str(CIRCOM), rel(source), "--r1cs", "--wasm", "--O2", "-l", rel(CIRCOMLIB), "-o", rel(out_dir)],
            Path("/"),
            600,
        )
    )
    name = source.stem
    return Compiled(out_dir / f"{name}.r1cs", out_dir / f"{name}_js" / f"{name}.wasm")


def powers_of_tau(work: Path, power: int) -> Path:
    """A phase-1 ceremony of one contribution, prepared for phase 2: ``work/pot<power>.ptau``."""
    work.mkdir(parents=True, exist_ok=True)
    start, contributed, final = (work / f"pot{power}_{step}.ptau" for step in ("0", "1", "final"))
    checked(snarkjs("powersoftau", "new", "bn128", str(power), start))
    checked(snarkjs("powersoftau", "contribute", start, contributed, "--name=pchr test", "-e=pchr phase 1"))
    checked(snarkjs("powersoftau", "prepare", "phase2", contributed, final))
    return final


@dataclass(frozen=True)
class Ceremony:
    zkey: Path
    verification_key: Path


def groth16_ceremony(r1cs: Path, ptau: Path, work: Path, name: str) -> Ceremony:
    """``groth16 setup``, one phase-2 contribution, and the verification key exported from the result."""
    work.mkdir(parents=True, exist_ok=True)
    initial, final, vk = work / f"{name}_0.zkey", work / f"{name}.zkey", work / f"{name}_vk.json"
    checked(snarkjs("groth16", "setup", r1cs, ptau, initial))
    checked(snarkjs("zkey", "contribute", initial, final, "--name=pchr phase 2", "-e=pchr phase 2"))
    checked(snarkjs("zkey", "export", "verificationkey", final, vk))
    return Ceremony(final, vk)


def witness(wasm: Path, inputs: Path, out: Path) -> Path:
    """``snarkjs wtns calculate``: circom's witness calculator on an input JSON."""
    checked(snarkjs("wtns", "calculate", wasm, inputs, out))
    return out


@dataclass(frozen=True)
class Proved:
    proof: Path
    public: Path


def groth16_prove(zkey: Path, wtns: Path, out_dir: Path, name: str = "snarkjs") -> Proved:
    out_dir.mkdir(parents=True, exist_ok=True)
    proved = Proved(out_dir / f"{name}_proof.json", out_dir / f"{name}_public.json")
    checked(snarkjs("groth16", "prove", zkey, wtns, proved.proof, proved.public))
    return proved


def groth16_verify(vk: Path, public: Path, proof: Path) -> Run:
    """``snarkjs groth16 verify``: ``ok`` and "OK!" in the output for a valid proof."""
    return snarkjs("groth16", "verify", vk, public, proof)


def groth16_verify_many(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """snarkjs's ``groth16.verify`` on each ``{"vk", "public", "proof"}`` (parsed JSON) in one node process.

    The answer (see groth16_verify.js) holds snarkjs's version and, per case, ``valid`` and what snarkjs logged
    (its reason) or the exception it threw.
    """
    install()
    done = subprocess.run(
        [node(), str(HERE / "groth16_verify.js")],
        input=json.dumps({"cases": cases}),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"node groth16_verify.js failed:\n{done.stderr}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer
