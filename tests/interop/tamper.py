"""The tamper matrix: ways to spoil a valid (verification key, proof, public signals) triple, each refused.

Each case changes the JSON files as an attacker (or a careless tool) would, and states who must refuse it and how:
pchr's readers (:mod:`zk.snarkjs`, FormatError naming the field) or pchr's verifier (the files parse, the pairing
check fails), and snarkjs's ``groth16.verify`` with the reason it logs. snarkjs checks proof points only for being
on their curve, so a G2 point outside the subgroup gets past its parser and fails its pairing check instead.
:func:`unparsed` builds pchr's objects from the files with no check at all, so that the tests can show the
verifier refusing each case on its own too (defence in depth: keys and proofs built in code skip the readers).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from zk.curve import B2, g2_in_subgroup
from zk.field import CURVE_ORDER, FIELD_MODULUS, fq2_add, fq2_mul, fq2_sqrt, fq2_square
from zk.keys import Proof, VerifyingKey

Files = tuple[dict[str, Any], dict[str, Any], list[str]]
"""verification_key.json, proof.json, public.json, as parsed JSON."""


def g2_point_outside_subgroup() -> tuple[tuple[int, int], tuple[int, int]]:
    """A point of the twist ``y^2 = x^3 + 3/(9+i)`` that is not in G2 (the twist's order is r times a cofactor)."""
    for x0 in range(1, 100):
        x = (x0, 1)
        y = fq2_sqrt(fq2_add(fq2_mul(fq2_square(x), x), B2))
        if y is not None and not g2_in_subgroup((x, y)):
            return x, y
    raise AssertionError("no twist point outside G2 among the first 99 candidates")


def _swap_fq2(point: list[list[str]]) -> list[list[str]]:
    return [[point[0][1], point[0][0]], [point[1][1], point[1][0]], point[2]]


def _changed_public_input(files: Files) -> Files:
    vk, proof, public = files
    return vk, proof, [*public[:-1], str((int(public[-1]) + 1) % CURVE_ORDER)]


def _public_input_plus_r(files: Files) -> Files:
    vk, proof, public = files
    return vk, proof, [str(int(public[0]) + CURVE_ORDER), *public[1:]]


def _swapped_b_coordinates(files: Files) -> Files:
    vk, proof, public = files
    return vk, {**proof, "pi_b": _swap_fq2(proof["pi_b"])}, public


def _swapped_delta_coordinates(files: Files) -> Files:
    vk, proof, public = files
    return {**vk, "vk_delta_2": _swap_fq2(vk["vk_delta_2"])}, proof, public


def _swapped_a_and_c(files: Files) -> Files:
    vk, proof, public = files
    return vk, {**proof, "pi_a": proof["pi_c"], "pi_c": proof["pi_a"]}, public


def _a_off_curve(files: Files) -> Files:
    vk, proof, public = files
    x, y, z = proof["pi_a"]
    return vk, {**proof, "pi_a": [x, str((int(y) + 1) % FIELD_MODULUS), z]}, public


def _b_outside_subgroup(files: Files) -> Files:
    vk, proof, public = files
    (x0, x1), (y0, y1) = g2_point_outside_subgroup()
    return vk, {**proof, "pi_b": [[str(x0), str(x1)], [str(y0), str(y1)], ["1", "0"]]}, public


def unparsed(files: Files) -> tuple[VerifyingKey, Proof, list[int]]:
    """The key, proof and public inputs the files hold, taken as they are (``int()`` of each number, Z dropped)."""
    vk, proof, public = files

    def g1(p: list[str]) -> tuple[int, int]:
        return int(p[0]), int(p[1])

    def g2(p: list[list[str]]) -> tuple[tuple[int, int], tuple[int, int]]:
        return (int(p[0][0]), int(p[0][1])), (int(p[1][0]), int(p[1][1]))

    key = VerifyingKey(
        g1(vk["vk_alpha_1"]), g2(vk["vk_beta_2"]), g2(vk["vk_gamma_2"]), g2(vk["vk_delta_2"]), tuple(map(g1, vk["IC"]))
    )
    return key, Proof(g1(proof["pi_a"]), g2(proof["pi_b"]), g1(proof["pi_c"])), [int(x) for x in public]


@dataclass(frozen=True)
class Tamper:
    name: str
    change: Callable[[Files], Files]
    refused_by: Literal["reader", "verifier"]
    """Which part of pchr refuses it: the JSON readers (FormatError) or the verifier (the files parse)."""
    ours: str
    """A regular expression our refusal's message matches."""
    theirs: str
    """A regular expression snarkjs's logged reason (or thrown error) matches."""
    unparsed: str
    """What pchr's verifier says when handed the values without the readers' checks: ``ProofError.reason`` (or,
    for the verifying key, ``prepare``'s PointError message)."""

    def apply(self, files: Files) -> Files:
        return self.change(copy.deepcopy(files))


MATRIX = (
    Tamper(
        "changed public input",
        _changed_public_input,
        "verifier",
        "pairing check failed",
        "Invalid proof",
        "pairing check failed",
    ),
    Tamper(
        "public input + r",
        _public_input_plus_r,
        "reader",
        r"public\[0\]: .* is not below r",
        "Public inputs are not valid",
        "public input out of range",
    ),
    Tamper(
        "swapped c0/c1 of B",
        _swapped_b_coordinates,
        "reader",
        r"proof\.pi_b: point is not on the G2 twist",
        "Proof commitments are not valid",
        "point not on curve",
    ),
    Tamper(
        "swapped c0/c1 of the key's delta",
        _swapped_delta_coordinates,
        "reader",
        r"verification_key\.vk_delta_2: point is not on the G2 twist",
        "Invalid proof",
        "verifying key point delta is not in G2",
    ),
    Tamper(
        "swapped A and C",
        _swapped_a_and_c,
        "verifier",
        "pairing check failed",
        "Invalid proof",
        "pairing check failed",
    ),
    Tamper(
        "A off the curve",
        _a_off_curve,
        "reader",
        r"proof\.pi_a: point is not on the G1 curve",
        "Proof commitments are not valid",
        "point not on curve",
    ),
    Tamper(
        "B outside the G2 subgroup",
        _b_outside_subgroup,
        "reader",
        r"proof\.pi_b: point is on the G2 twist but not in its order-r subgroup",
        "Invalid proof",
        "point not in subgroup",
    ),
)
