"""The Poseidon hash over the BN254 scalar field, compatible with circomlib / circomlibjs.

Spec: Grassi, Khovratovich, Rechberger, Roy, Schofnegger, "Poseidon: A New Hash Function for Zero-Knowledge
Proof Systems" (USENIX Security 2021, ePrint 2019/458), and its reference parameter script
``generate_parameters_grain.sage``. Parameters as circomlib uses them: S-box x^5, 8 full rounds, partial rounds
by width from :data:`PARTIAL_ROUNDS`, state ``[0, inputs...]`` (capacity first), output ``state[0]``.

Round constants and MDS matrices are *derived* here, with the Grain LFSR of the paper (appendix F), not pasted:
the LFSR is seeded with the parameters (field type, S-box, field size, width, rounds), its first 160 bits are
discarded, and bits are drawn in self-shrinking pairs. Constants are 254-bit draws below the modulus (rejection);
the MDS matrix is the Cauchy matrix ``1 / (x_i + y_j)`` over the next ``2t`` draws, reduced mod r.

Pure Python, no I/O. Width t = 2..17 (1..16 inputs).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

__all__ = ["BN254_R", "FULL_ROUNDS", "PARTIAL_ROUNDS", "PoseidonParams", "params", "poseidon"]

# The BN254 (alt_bn128) scalar field modulus r: the order of the curve's prime subgroup (EIP-196).
BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
FIELD_BITS = 254
FULL_ROUNDS = 8
# circomlib poseidon.circom: N_ROUNDS_P for t = 2..17 (from the paper's security margin for x^5, 128 bits).
PARTIAL_ROUNDS = (56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68)


def _grain_bits(t: int, partial_rounds: int) -> Iterator[int]:
    """The Grain LFSR bit stream of the Poseidon reference script, seeded for (BN254, x^5, width t)."""
    seed = "".join(
        (
            format(1, "02b"),  # field: GF(p)
            format(0, "04b"),  # S-box: x^alpha
            format(FIELD_BITS, "012b"),
            format(t, "012b"),
            format(FULL_ROUNDS, "010b"),
            format(partial_rounds, "010b"),
            "1" * 30,
        )
    )
    state = [int(b) for b in seed]
    assert len(state) == 80

    def step() -> int:
        bit = state[62] ^ state[51] ^ state[38] ^ state[23] ^ state[13] ^ state[0]
        state.pop(0)
        state.append(bit)
        return bit

    for _ in range(160):
        step()
    while True:
        # Self-shrinking: draw pairs; output the second bit when the first is 1.
        first = step()
        second = step()
        if first == 1:
            yield second


def _draw(bits: Iterator[int], n: int = FIELD_BITS) -> int:
    value = 0
    for _ in range(n):
        value = (value << 1) | next(bits)
    return value


@dataclass(frozen=True)
class PoseidonParams:
    t: int
    partial_rounds: int
    round_constants: tuple[int, ...]  # (FULL_ROUNDS + partial_rounds) * t
    mds: tuple[tuple[int, ...], ...]  # t x t


@cache
def params(t: int) -> PoseidonParams:
    """Derive the parameters for width ``t`` (inputs + 1) from the Grain LFSR."""
    if not 2 <= t <= len(PARTIAL_ROUNDS) + 1:
        raise ValueError(f"Poseidon width must be 2..{len(PARTIAL_ROUNDS) + 1}, not {t}")
    partial = PARTIAL_ROUNDS[t - 2]
    bits = _grain_bits(t, partial)
    constants = []
    for _ in range((FULL_ROUNDS + partial) * t):
        value = _draw(bits)
        while value >= BN254_R:
            value = _draw(bits)
        constants.append(value)
    while True:
        draws = [_draw(bits) % BN254_R for _ in range(2 * t)]
        while len(set(draws)) != len(draws):
            draws = [_draw(bits) % BN254_R for _ in range(2 * t)]
        xs, ys = draws[:t], draws[t:]
        if all((x + y) % BN254_R for x in xs for y in ys):
            break
    mds = tuple(tuple(pow(x + y, -1, BN254_R) for y in ys) for x in xs)
    return PoseidonParams(t, partial, tuple(constants), mds)


def _permute(state: list[int], p: PoseidonParams) -> list[int]:
    r, t, c, m = BN254_R, p.t, p.round_constants, p.mds
    half = FULL_ROUNDS // 2
    for rnd in range(FULL_ROUNDS + p.partial_rounds):
        state = [(s + c[rnd * t + i]) % r for i, s in enumerate(state)]
        if rnd < half or rnd >= half + p.partial_rounds:
            state = [pow(s, 5, r) for s in state]
        else:
            state[0] = pow(state[0], 5, r)
        state = [sum(m[i][j] * state[j] for j in range(t)) % r for i in range(t)]
    return state


def poseidon(inputs: Sequence[int]) -> int:
    """Poseidon hash of 1..16 field elements, as circomlibjs ``poseidon(inputs)``; inputs must be < r."""
    if not inputs:
        raise ValueError("Poseidon needs at least one input")
    for value in inputs:
        if not 0 <= value < BN254_R:
            raise ValueError("Poseidon inputs must be field elements (0 <= x < r)")
    p = params(len(inputs) + 1)
    return _permute([0, *inputs], p)[0]
