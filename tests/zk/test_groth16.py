"""Groth16: completeness on small circuits, and the verifier's refusals, each with its reason."""

from __future__ import annotations

import random

import pytest

from zk import gadgets
from zk.groth16 import is_valid, prepare, prove, setup, verify
from zk.keys import Proof, ProvingKey
from zk.r1cs import ConstraintSystem


def cube_circuit(x: int) -> ConstraintSystem:
    """Public y = x^3 + x + 5 for a private x (Vitalik's QAP example), plus a Poseidon of x and y."""
    cs = ConstraintSystem()
    y = cs.public(x**3 + x + 5)
    xv = cs.private(x)
    x2 = cs.mul(xv, xv)
    x3 = cs.mul(x2, xv)
    cs.assert_equal(x3 + xv + 5, y)
    gadgets.poseidon(cs, [xv, y])
    return cs


@pytest.fixture(scope="module")
def key() -> ProvingKey:
    return setup(cube_circuit(3).r1cs(), rng=random.Random(2016))


def test_an_honest_proof_verifies(key: ProvingKey) -> None:
    cs = cube_circuit(3)
    proof = prove(key, cs.witness, rng=random.Random(1))
    verify(prepare(key.vk), [35], proof)
    assert not is_valid(prepare(key.vk), [36], proof)
    assert len(proof.to_bytes()) == Proof.SIZE == 256
