"""The Poseidon hash over the BN254 scalar field, compatible with circomlib / circomlibjs.

Spec: Grassi, Khovratovich, Rechberger, Roy, Schofnegger, "Poseidon: A New Hash Function for Zero-Knowledge
Proof Systems" (USENIX Security 2021, ePrint 2019/458), and its reference parameter script
``generate_parameters_grain.sage``. Parameters as circomlib uses them: S-box x^5, 8 full rounds, partial rounds
by width from :data:`PARTIAL_ROUNDS`, state ``[0, inputs...]`` (capacity first), output ``state[0]``.

Round constants and MDS matrices are *derived* here, with the Grain LFSR of the paper (appendix F), not pasted:
the LFSR is seeded with the parameters (field type, S-box, field size, width, rounds), its first 160 bits are
discarded, and bits are drawn in self-shrinking pairs. Constants are 254-bit draws below the modulus (rejection);
the MDS matrix is the Cauchy matrix ``1 / (x_i + y_j)`` over the next ``2t`` draws, reduced mod r.

:class:`PoseidonParams` holds the parameters as the paper states them (each round: add constants, S-box, MDS).
The hash itself runs an equivalent form of the same permutation, the one of the paper's appendix B and of
circomlib's ``poseidon_constants_opt`` (derived here too, not pasted): constants of the partial rounds are folded
into one scalar per round, and each partial round's MDS matrix is factored into a sparse matrix (first row, first
column and the identity) times a matrix that commutes with the partial S-box and so moves into the round before.
A partial round then costs ``2t - 1`` multiplications instead of ``t^2``. The tests check both forms against each
other and against circomlibjs for every width.

Pure Python, no I/O. Width t = 2..17 (1..16 inputs).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import compress
from operator import mul

__all__ = ["BN254_R", "FULL_ROUNDS", "PARTIAL_ROUNDS", "PoseidonParams", "params", "poseidon"]

# The BN254 (alt_bn128) scalar field modulus r: the order of the curve's prime subgroup (EIP-196).
BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
FIELD_BITS = 254
FULL_ROUNDS = 8
# circomlib poseidon.circom: N_ROUNDS_P for t = 2..17 (from the paper's security margin for x^5, 128 bits).
PARTIAL_ROUNDS = (56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68)

Vector = tuple[int, ...]
Matrix = tuple[Vector, ...]

# The Grain LFSR of the reference script: b[n + 80] = b[n + 62] ^ b[n + 51] ^ b[n + 38] ^ b[n + 23] ^ b[n + 13] ^ b[n].
# Over GF(2), p(x)^64 = p(x^64) for its feedback polynomial p, so the stream also obeys the same recurrence with every
# distance times 64: b[n + 5120] = b[n + 3968] ^ ... ^ b[n]. There the nearest tap is 1152 bits behind the new bit, so
# one shift-and-xor of a 5120-bit int yields 1152 bits. The first 5120 bits come from the plain recurrence, whose
# nearest tap (18 behind) allows 16 bits per step.
_GRAIN_TAPS = (0, 13, 23, 38, 51, 62)
_GRAIN_LENGTH = 80
_GRAIN_WARMUP = 160
_WIDE = 64


def _lfsr_step(window: int, length: int, taps: Sequence[int], block: int) -> tuple[int, int]:
    """Advance by ``block`` bits: the new bits (earliest lowest) and the new window (oldest bit lowest)."""
    new = 0
    for tap in taps:
        new ^= window >> tap
    new &= (1 << block) - 1
    return new, (window >> block) | (new << (length - block))


def _grain_stream(seed: str) -> Iterator[str]:
    """The LFSR's output after the warm-up, as '0'/'1' strings in stream order, each of even length."""
    bits, window = seed, int(seed[::-1], 2)
    while len(bits) < _GRAIN_LENGTH * _WIDE:
        new, window = _lfsr_step(window, _GRAIN_LENGTH, _GRAIN_TAPS, 16)
        bits += format(new, "016b")[::-1]
    # The seed itself is not output; the first 160 output bits are discarded.
    yield bits[_GRAIN_LENGTH + _GRAIN_WARMUP :]
    length, taps, block = _GRAIN_LENGTH * _WIDE, [tap * _WIDE for tap in _GRAIN_TAPS], 18 * _WIDE
    window = int(bits[::-1], 2)
    while True:
        new, window = _lfsr_step(window, length, taps, block)
        yield format(new, f"0{block}b")[::-1]


_FIRST_BIT_IS_ONE = bytes.maketrans(b"01", b"\x00\x01")


def _grain_draws(t: int, partial_rounds: int) -> Iterator[int]:
    """The 254-bit draws (first bit most significant) of the self-shrinking Grain stream seeded for width t."""
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
    assert len(seed) == _GRAIN_LENGTH
    pending = ""
    for raw in _grain_stream(seed):
        # Self-shrinking: of each pair of bits, keep the second when the first is 1.
        pending += "".join(compress(raw[1::2], raw[0::2].encode().translate(_FIRST_BIT_IS_ONE)))
        whole = len(pending) // FIELD_BITS
        for i in range(whole):
            yield int(pending[i * FIELD_BITS : (i + 1) * FIELD_BITS], 2)
        pending = pending[whole * FIELD_BITS :]


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
    draws = _grain_draws(t, partial)
    constants = []
    for _ in range((FULL_ROUNDS + partial) * t):
        value = next(draws)
        while value >= BN254_R:
            value = next(draws)
        constants.append(value)
    while True:
        points = [next(draws) % BN254_R for _ in range(2 * t)]
        while len(set(points)) != len(points):
            points = [next(draws) % BN254_R for _ in range(2 * t)]
        xs, ys = points[:t], points[t:]
        if all((x + y) % BN254_R for x in xs for y in ys):
            break
    mds = tuple(tuple(pow(x + y, -1, BN254_R) for y in ys) for x in xs)
    return PoseidonParams(t, partial, tuple(constants), mds)


def _mat_vec(m: Matrix, v: Sequence[int]) -> Vector:
    return tuple(sum(a * b for a, b in zip(row, v, strict=True)) % BN254_R for row in m)


def _vec_mat(v: Sequence[int], m: Matrix) -> Vector:
    return tuple(sum(v[i] * m[i][j] for i in range(len(v))) % BN254_R for j in range(len(m[0])))


def _mat_mul(a: Matrix, b: Matrix) -> Matrix:
    return tuple(_vec_mat(row, b) for row in a)


def _mat_pow(m: Matrix, e: int) -> Matrix:
    result: Matrix = tuple(tuple(int(i == j) for j in range(len(m))) for i in range(len(m)))
    while e:
        if e & 1:
            result = _mat_mul(result, m)
        m = _mat_mul(m, m)
        e >>= 1
    return result


def _mat_inv(m: Matrix) -> Matrix:
    """Gauss-Jordan inverse mod r; the MDS submatrices are Cauchy matrices, so always invertible."""
    n = len(m)
    rows = [[*row, *(int(i == j) for j in range(n))] for i, row in enumerate(m)]
    for col in range(n):
        pivot = next(i for i in range(col, n) if rows[i][col])
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inv = pow(rows[col][col], -1, BN254_R)
        rows[col] = [x * inv % BN254_R for x in rows[col]]
        for i in range(n):
            if i != col and rows[i][col]:
                f = rows[i][col]
                rows[i] = [(x - f * y) % BN254_R for x, y in zip(rows[i], rows[col], strict=True)]
    return tuple(tuple(row[n:]) for row in rows)


@dataclass(frozen=True)
class _Schedule:
    """The permutation of :class:`PoseidonParams` in the equivalent sparse form (paper, appendix B).

    Full rounds ``0 .. FULL_ROUNDS/2 - 1`` add ``head[r]``, apply the S-box to every word and mix with ``mds``,
    except the last of them, which mixes with ``pre_partial`` (the MDS times the product of the dense factors the
    partial rounds pushed back). Partial round ``j`` adds ``partial_constants[j]`` to word 0, applies the S-box to
    it, then the sparse matrix whose first row is ``first_rows[j]``, whose first column below that is
    ``first_columns[j]`` and whose remaining block is the identity. Full rounds after that add
    ``tail[r]`` (the first one also carries the partial rounds' constants that moved forward).
    """

    head: tuple[Vector, ...]
    pre_partial: Matrix
    partial_constants: Vector
    first_rows: tuple[Vector, ...]  # per partial round: the sparse matrix's first row
    first_columns: tuple[Vector, ...]  # per partial round: its first column below the diagonal
    tail: tuple[Vector, ...]
    mds: Matrix


@cache
def _schedule(t: int) -> _Schedule:
    p = params(t)
    r, half, rp, m = BN254_R, FULL_ROUNDS // 2, p.partial_rounds, p.mds
    rounds = [list(p.round_constants[i * t : (i + 1) * t]) for i in range(FULL_ROUNDS + rp)]

    # A partial round's S-box touches word 0 only, so the other words of its constant pass through it and the
    # MDS unchanged (as M . (0, c[1:])) into the next round's constant; carried forward to the first full round.
    partial_constants = []
    carry = [0] * t
    for j in range(half, half + rp):
        c = [(a + b) % r for a, b in zip(rounds[j], carry, strict=True)]
        partial_constants.append(c[0])
        carry = list(_mat_vec(m, [0, *c[1:]]))
    rounds[half + rp] = [(a + b) % r for a, b in zip(rounds[half + rp], carry, strict=True)]

    # Factor M = A . B with B = diag(1, B^) (commutes with the partial S-box, so it moves into the round before)
    # and A sparse. Working back from the last partial round, the matrix to factor is B^_prev . M, which makes
    # the k-th from last: B^ = M^^k, first column M^^(k-1) m10, first row (m00, m01 . M^^-k).
    m00, m01, m10 = m[0][0], m[0][1:], tuple(row[0] for row in m[1:])
    m_hat = tuple(row[1:] for row in m[1:])
    m_hat_inv = _mat_inv(m_hat)
    first_rows: list[Vector] = []
    first_columns: list[Vector] = []
    column, row = m10, _vec_mat(m01, m_hat_inv)
    for _ in range(rp):
        first_rows.append((m00, *row))
        first_columns.append(column)
        column, row = _mat_vec(m_hat, column), _vec_mat(row, m_hat_inv)
    first_rows.reverse()
    first_columns.reverse()
    pre_partial = (m[0], *_mat_mul(_mat_pow(m_hat, rp), m[1:]))

    return _Schedule(
        head=tuple(tuple(c) for c in rounds[:half]),
        pre_partial=pre_partial,
        partial_constants=tuple(partial_constants),
        first_rows=tuple(first_rows),
        first_columns=tuple(first_columns),
        tail=tuple(tuple(c) for c in rounds[half + rp :]),
        mds=m,
    )


def _permute(inputs: Sequence[int], s: _Schedule) -> int:
    """Word 0 of the permutation of ``[0, *inputs]``, any width.

    Words are reduced only where they enter an S-box (``pow`` reduces its base) and at the end: the sums in
    between grow by a bit or so per round, which costs less than a modular reduction per word per round.
    """
    r = BN254_R
    state = [0, *inputs]
    last = len(s.head) - 1
    for i, constants in enumerate(s.head):
        state = [pow(x + c, 5, r) for x, c in zip(state, constants, strict=True)]
        state = [sum(map(mul, row, state)) for row in (s.pre_partial if i == last else s.mds)]
    x0, rest = state[0], state[1:]
    for k, row, column in zip(s.partial_constants, s.first_rows, s.first_columns, strict=True):
        x = pow(x0 + k, 5, r)
        x0 = row[0] * x + sum(map(mul, row[1:], rest))
        rest = [a + c * x for a, c in zip(rest, column, strict=True)]
    state = [x0, *rest]
    for constants in s.tail:
        state = [pow(x + c, 5, r) for x, c in zip(state, constants, strict=True)]
        state = [sum(map(mul, row, state)) for row in s.mds]
    return state[0] % r


@cache
def _rounds3() -> tuple[tuple[Vector, ...], tuple[Vector, ...], tuple[Vector, ...]]:
    """The width-3 schedule as flat tuples (constants, then the mixing matrix row by row), for unpacking."""
    s = _schedule(3)
    mds = sum(s.mds, ())
    mixes = [mds] * (len(s.head) - 1) + [sum(s.pre_partial, ())]
    head = tuple(c + m for c, m in zip(s.head, mixes, strict=True))
    partial = tuple(
        (k, *row, *col) for k, row, col in zip(s.partial_constants, s.first_rows, s.first_columns, strict=True)
    )
    tail = tuple(c + mds for c in s.tail)
    return head, partial, tail


def _permute3(a: int, b: int) -> int:
    """:func:`_permute` unrolled for width 3 (two inputs: every Merkle node of the grant tree)."""
    r = BN254_R
    head, partial, tail = _rounds3()
    s0, s1, s2 = 0, a, b
    for c0, c1, c2, m00, m01, m02, m10, m11, m12, m20, m21, m22 in head:
        s0, s1, s2 = pow(s0 + c0, 5, r), pow(s1 + c1, 5, r), pow(s2 + c2, 5, r)
        s0, s1, s2 = m00 * s0 + m01 * s1 + m02 * s2, m10 * s0 + m11 * s1 + m12 * s2, m20 * s0 + m21 * s1 + m22 * s2
    for k, w0, w1, w2, v1, v2 in partial:
        x = pow(s0 + k, 5, r)
        s0, s1, s2 = w0 * x + w1 * s1 + w2 * s2, s1 + v1 * x, s2 + v2 * x
    for c0, c1, c2, m00, m01, m02, m10, m11, m12, m20, m21, m22 in tail:
        s0, s1, s2 = pow(s0 + c0, 5, r), pow(s1 + c1, 5, r), pow(s2 + c2, 5, r)
        s0, s1, s2 = m00 * s0 + m01 * s1 + m02 * s2, m10 * s0 + m11 * s1 + m12 * s2, m20 * s0 + m21 * s1 + m22 * s2
    return s0 % r


def poseidon(inputs: Sequence[int]) -> int:
    """Poseidon hash of 1..16 field elements, as circomlibjs ``poseidon(inputs)``; inputs must be < r."""
    if not inputs:
        raise ValueError("Poseidon needs at least one input")
    for value in inputs:
        if not 0 <= value < BN254_R:
            raise ValueError("Poseidon inputs must be field elements (0 <= x < r)")
    if len(inputs) == 2:
        return _permute3(inputs[0], inputs[1])
    return _permute(inputs, _schedule(len(inputs) + 1))
