"""Rank-1 constraint systems over F_r, built together with their witness.

Specs: J. Groth, "On the Size of Pairing-based Non-interactive Arguments" (EUROCRYPT 2016), section 3: a relation
is a set of constraints ``(A_j . w) * (B_j . w) = (C_j . w)`` over the wire vector ``w``; the wire order of circom
and snarkjs (the iden3 ``r1cs`` binary format): wire 0 is the constant 1, wires ``1..num_public`` the public
inputs in declaration order, then the private wires.

A :class:`ConstraintSystem` is written to by gadgets (:mod:`zk.gadgets`). Every wire is allocated with its value,
and every :class:`LinearCombination` carries the value it takes under the witness being built, so a gadget
computes its outputs while it adds the constraints that bind them: building a circuit for a statement *is* the
witness solver. Each constraint is checked as it is added, so a false statement fails where it is false
(:class:`~zk.errors.ConstraintError` names the gadget) instead of at proving time.

The circuit's *shape* must not depend on the values (the gadgets here branch on none), so that building it for any
witness gives the same :class:`R1CS`; the trusted setup builds it once with sample values.

Multiplying by a constant, adding and subtracting are free (they only change linear combinations); a constraint is
spent only on a product of two non-constant combinations, as circom counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from zk.errors import ConstraintError
from zk.field import CURVE_ORDER

__all__ = ["ONE", "R1CS", "ConstraintSystem", "LinearCombination", "Terms", "linear_sum"]

_R: Final = CURVE_ORDER
ONE: Final = 0
"""The index of the constant-one wire."""

Terms = tuple[tuple[int, int], ...]
"""A frozen linear combination: ``(wire, coefficient)`` pairs, coefficients in ``1..r-1``, wires ascending."""


class LinearCombination:
    """``sum coefficient * wire`` over F_r, with the value it has under the witness being built.

    Combine with ``+``, ``-`` (with other combinations or ints) and ``*`` (by an int); products of two
    combinations go through :meth:`ConstraintSystem.mul`, which spends a constraint.
    """

    __slots__ = ("terms", "value")

    def __init__(self, terms: dict[int, int], value: int) -> None:
        self.terms = terms
        self.value = value

    @property
    def is_constant(self) -> bool:
        """Whether only the constant-one wire occurs (the combination is a known number)."""
        return not self.terms or (len(self.terms) == 1 and ONE in self.terms)

    def frozen(self) -> Terms:
        return tuple(sorted(self.terms.items()))

    def __add__(self, other: LinearCombination | int) -> LinearCombination:
        terms = dict(self.terms)
        if isinstance(other, int):
            return _with_constant(terms, other, self.value + other)
        for wire, coeff in other.terms.items():
            c = (terms.get(wire, 0) + coeff) % _R
            if c:
                terms[wire] = c
            else:
                terms.pop(wire, None)
        return LinearCombination(terms, (self.value + other.value) % _R)

    def __radd__(self, other: int) -> LinearCombination:
        return self + other

    def __neg__(self) -> LinearCombination:
        return LinearCombination({wire: _R - coeff for wire, coeff in self.terms.items()}, -self.value % _R)

    def __sub__(self, other: LinearCombination | int) -> LinearCombination:
        return self + (-other)

    def __rsub__(self, other: int) -> LinearCombination:
        return (-self) + other

    def __mul__(self, k: int) -> LinearCombination:
        k %= _R
        if not k:
            return LinearCombination({}, 0)
        return LinearCombination({wire: coeff * k % _R for wire, coeff in self.terms.items()}, self.value * k % _R)

    def __rmul__(self, k: int) -> LinearCombination:
        return self * k

    def __repr__(self) -> str:
        return f"LinearCombination({self.terms!r}, value={self.value})"


def _with_constant(terms: dict[int, int], constant: int, value: int) -> LinearCombination:
    c = (terms.get(ONE, 0) + constant) % _R
    if c:
        terms[ONE] = c
    else:
        terms.pop(ONE, None)
    return LinearCombination(terms, value % _R)


def linear_sum(pairs: Iterable[tuple[int, LinearCombination]]) -> LinearCombination:
    """``sum k_i * lc_i`` in one pass (cheaper than chaining ``+`` and ``*`` for long sums)."""
    terms: dict[int, int] = {}
    value = 0
    for k, lc in pairs:
        value += k * lc.value
        for wire, coeff in lc.terms.items():
            terms[wire] = terms.get(wire, 0) + k * coeff
    return LinearCombination({w: c % _R for w, c in terms.items() if c % _R}, value % _R)


@dataclass(frozen=True)
class R1CS:
    """A finished constraint system: wire counts and the constraints ``A . w * B . w = C . w``."""

    num_variables: int
    """Wires in all, the constant-one wire included."""
    num_public: int
    """Public inputs: wires ``1..num_public``."""
    constraints: tuple[tuple[Terms, Terms, Terms], ...]
    labels: tuple[str, ...]
    """For each constraint, the gadget scope that added it (``"merkle/level3/poseidon"``)."""

    @property
    def num_constraints(self) -> int:
        return len(self.constraints)

    def public_inputs(self, witness: Sequence[int]) -> list[int]:
        """The public inputs of a full witness, in declaration order."""
        return list(witness[1 : 1 + self.num_public])

    def check(self, witness: Sequence[int]) -> None:
        """Refuse a witness that does not satisfy every constraint.

        ValueError for a witness of the wrong length, with a value outside ``0..r-1`` or without 1 at wire 0;
        :class:`~zk.errors.ConstraintError` naming the first constraint that does not hold.
        """
        if len(witness) != self.num_variables:
            raise ValueError(f"a witness for this R1CS has {self.num_variables} values, not {len(witness)}")
        if witness[ONE] != 1:
            raise ValueError("wire 0 of a witness is the constant 1")
        if not all(isinstance(v, int) and 0 <= v < _R for v in witness):
            raise ValueError("witness values must be field elements (0 <= x < r)")
        r = _R
        for index, (a, b, c) in enumerate(self.constraints):
            av = sum(k * witness[i] for i, k in a)
            bv = sum(k * witness[i] for i, k in b)
            cv = sum(k * witness[i] for i, k in c)
            if (av * bv - cv) % r:
                raise ConstraintError(index, self.labels[index])

    def is_satisfied(self, witness: Sequence[int]) -> bool:
        try:
            self.check(witness)
        except (ValueError, ConstraintError):
            return False
        return True


class ConstraintSystem:
    """An R1CS under construction, with its witness; gadgets add to it (see the module docstring)."""

    def __init__(self) -> None:
        self._values: list[int] = [1]
        self._num_public = 0
        self._constraints: list[tuple[Terms, Terms, Terms]] = []
        self._labels: list[str] = []
        self._scope: list[str] = []
        self._label = ""

    # -------------------------------------------------------------------------------------------- wires

    @property
    def one(self) -> LinearCombination:
        return LinearCombination({ONE: 1}, 1)

    def constant(self, value: int) -> LinearCombination:
        value %= _R
        return LinearCombination({ONE: value} if value else {}, value)

    def public(self, value: int) -> LinearCombination:
        """A new public input wire; all public inputs are declared before any private wire (snarkjs's order)."""
        if len(self._values) != 1 + self._num_public:
            raise ValueError("declare every public input before the first private wire (snarkjs wire order)")
        self._num_public += 1
        return self._wire(value)

    def private(self, value: int) -> LinearCombination:
        """A new private wire holding ``value``."""
        return self._wire(value)

    def _wire(self, value: int) -> LinearCombination:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _R:
            raise ValueError(f"a wire holds a field element (0 <= x < r), not {value!r}")
        self._values.append(value)
        return LinearCombination({len(self._values) - 1: 1}, value)

    # -------------------------------------------------------------------------------------------- constraints

    def enforce(self, a: LinearCombination, b: LinearCombination, c: LinearCombination) -> None:
        """Add the constraint ``a * b = c``; ConstraintError at once if the values being built break it."""
        index = len(self._constraints)
        self._constraints.append((a.frozen(), b.frozen(), c.frozen()))
        self._labels.append(self._label)
        if (a.value * b.value - c.value) % _R:
            raise ConstraintError(index, self._label)

    def mul(self, a: LinearCombination, b: LinearCombination) -> LinearCombination:
        """``a * b``: free when either is a constant, else a new wire and one constraint."""
        if a.is_constant:
            return b * a.value
        if b.is_constant:
            return a * b.value
        out = self.private(a.value * b.value % _R)
        self.enforce(a, b, out)
        return out

    def assert_equal(self, a: LinearCombination, b: LinearCombination | int) -> None:
        """``a = b`` as the constraint ``(a - b) * 1 = 0`` (none when both sides are constants and equal)."""
        difference = a - b
        if not difference.terms and not difference.value:
            return
        self.enforce(difference, self.one, self.constant(0))

    def assert_boolean(self, bit: LinearCombination) -> None:
        """``bit * bit = bit``: bit is 0 or 1."""
        self.enforce(bit, bit, bit)

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Label the constraints added inside the block with ``name`` (nested scopes join with ``/``)."""
        self._scope.append(name)
        self._label = "/".join(self._scope)
        try:
            yield
        finally:
            self._scope.pop()
            self._label = "/".join(self._scope)

    # -------------------------------------------------------------------------------------------- results

    @property
    def num_constraints(self) -> int:
        return len(self._constraints)

    @property
    def num_variables(self) -> int:
        return len(self._values)

    @property
    def num_public(self) -> int:
        return self._num_public

    @property
    def witness(self) -> list[int]:
        """The full wire assignment: 1, the public inputs, the private wires (a copy)."""
        return list(self._values)

    def r1cs(self) -> R1CS:
        """The constraints built so far, frozen."""
        return R1CS(len(self._values), self._num_public, tuple(self._constraints), tuple(self._labels))
