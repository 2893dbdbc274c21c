"""Regenerate tests/interop/snarkjs_vectors/ with snarkjs and circom: ``python -m tests.interop.make_snarkjs_vectors``.

The vectors let the default test run (no node) check pchr's readers, verifier and prover against files snarkjs
made: circuits/bounded_preimage.circom compiled by circom2, a powers-of-tau ceremony of power 9 and a Groth16
phase 2 with one contribution (both toy ceremonies, with fixed entropy), circom's witness for ``input.json``, and
snarkjs's proof of it. Every run makes new keys and a new proof (snarkjs adds its own randomness), so the files
change as a whole; ``source.json`` records the tool versions and a SHA-256 of each file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from tests.interop import snarkjs_cli
from tests.interop.npm import package_version

OUT = Path(__file__).resolve().parent / "snarkjs_vectors"
CIRCUIT = snarkjs_cli.CIRCUITS / "bounded_preimage.circom"
POWER = 9
INPUT = {"bound": "1000", "secret": "421", "salt": "9876543210123456789"}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pchr-snarkjs-vectors-") as tmp:
        work = Path(tmp)
        compiled = snarkjs_cli.circom(CIRCUIT, work)
        ptau = snarkjs_cli.powers_of_tau(work, POWER)
        ceremony = snarkjs_cli.groth16_ceremony(compiled.r1cs, ptau, work, "bounded_preimage")
        (work / "input.json").write_text(json.dumps(INPUT, indent=1) + "\n")
        wtns = snarkjs_cli.witness(compiled.wasm, work / "input.json", work / "witness.wtns")
        proved = snarkjs_cli.groth16_prove(ceremony.zkey, wtns, work)
        snarkjs_cli.checked(snarkjs_cli.groth16_verify(ceremony.verification_key, proved.public, proved.proof))

        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir()
        files = {
            "bounded_preimage.r1cs": compiled.r1cs,
            "bounded_preimage.zkey": ceremony.zkey,
            "verification_key.json": ceremony.verification_key,
            "input.json": work / "input.json",
            "witness.wtns": wtns,
            "proof.json": proved.proof,
            "public.json": proved.public,
        }
        for name, path in files.items():
            shutil.copyfile(path, OUT / name)
    source = {
        "made_by": "python -m tests.interop.make_snarkjs_vectors",
        "circuit": "tests/interop/circuits/bounded_preimage.circom",
        "tools": {name: package_version(name) for name in ("snarkjs", "circom2", "circomlib")},
        "powers_of_tau_power": POWER,
        "steps": [
            "circom2 bounded_preimage.circom --r1cs --wasm --O2 -l circomlib/circuits",
            f"snarkjs powersoftau new bn128 {POWER}; powersoftau contribute; powersoftau prepare phase2",
            "snarkjs groth16 setup; zkey contribute; zkey export verificationkey",
            "snarkjs wtns calculate bounded_preimage.wasm input.json witness.wtns",
            "snarkjs groth16 prove bounded_preimage.zkey witness.wtns proof.json public.json",
        ],
        "sha256": {name: hashlib.sha256((OUT / name).read_bytes()).hexdigest() for name in sorted(files)},
    }
    (OUT / "source.json").write_text(json.dumps(source, indent=1) + "\n")


if __name__ == "__main__":
    main()
