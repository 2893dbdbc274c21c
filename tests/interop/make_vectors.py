"""Regenerate tests/vectors/poseidon_circomlibjs.json from circomlibjs: ``python -m tests.interop.make_vectors``.

The vectors let the plain test run (no node) check every Poseidon width and the empty grant tree against
circomlibjs; the integration test asks circomlibjs directly, on more inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.interop import circomlibjs

BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
OUT = Path(__file__).resolve().parents[1] / "vectors" / "poseidon_circomlibjs.json"
ARITY, DEPTH = 4, 10  # consent_chain.state_tree's grant tree


def main() -> None:
    inputs = []
    for width in range(1, 17):
        inputs.append(list(range(1, width + 1)))
        # Fixed, spread-out values: the largest element, zero, and 2^k - 1 patterns near the field size.
        inputs.append([(BN254_R - 1, 0, 2**253 - 1, 2**64 + width)[i % 4] for i in range(width)])
    answer = circomlibjs.run({"hashes": [[str(x) for x in case] for case in inputs], "arity": ARITY, "depth": DEPTH})
    vectors = {
        "source": f"circomlibjs {answer['version']} buildPoseidon(), via tests/interop/poseidon.js",
        "regenerate": "python -m tests.interop.make_vectors",
        "poseidon": [
            {"inputs": [str(x) for x in case], "hash": h} for case, h in zip(inputs, answer["hashes"], strict=True)
        ],
        "zero_hashes_arity_4_depth_10": answer["zeros"],
    }
    # One case per line: reviewable in a diff, and still plain JSON.
    lines = ",\n".join(f"  {json.dumps(case)}" for case in vectors["poseidon"])
    zeros = ",\n".join(f"  {json.dumps(z)}" for z in vectors["zero_hashes_arity_4_depth_10"])
    OUT.write_text(
        "{\n"
        f' "source": {json.dumps(vectors["source"])},\n'
        f' "regenerate": {json.dumps(vectors["regenerate"])},\n'
        f' "poseidon": [\n{lines}\n ],\n'
        f' "zero_hashes_arity_4_depth_10": [\n{zeros}\n ]\n'
        "}\n"
    )


if __name__ == "__main__":
    main()
