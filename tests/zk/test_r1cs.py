"""The R1CS builder: wire layout, linear combinations with their values, constraints checked as built and after."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.zk.strategies import scalars
from zk.errors import ConstraintError
from zk.field import CURVE_ORDER
from zk.r1cs import ONE, ConstraintSystem, LinearCombination, linear_sum

R = CURVE_ORDER


def evaluate(lc: LinearCombination, witness: list[int]) -> int:
    return sum(k * witness[w] for w, k in lc.terms.items()) % R


def test_wires_are_one_then_publics_in_order_then_privates() -> None:
    cs = ConstraintSystem()
    a, b = cs.public(7), cs.public(8)
    c = cs.private(9)
    assert (a.terms, b.terms, c.terms) == ({1: 1}, {2: 1}, {3: 1})
    assert cs.witness == [1, 7, 8, 9]
    assert cs.num_public == 2
    r1cs = cs.r1cs()
    assert r1cs.num_variables == 4
    assert r1cs.public_inputs(cs.witness) == [7, 8]


def test_public_inputs_after_a_private_wire_are_refused() -> None:
    cs = ConstraintSystem()
    cs.private(1)
    with pytest.raises(ValueError, match="before the first private wire"):
        cs.public(2)


@pytest.mark.parametrize("value", [-1, R, True, 1.0])
def test_a_wire_holds_a_field_element(value: object) -> None:
    with pytest.raises(ValueError, match="field element"):
        ConstraintSystem().private(value)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(st.lists(scalars(), min_size=3, max_size=3), st.lists(scalars(), min_size=4, max_size=4))
def test_linear_combination_values_track_their_terms(values: list[int], ks: list[int]) -> None:
    cs = ConstraintSystem()
    x, y, z = (cs.private(v) for v in values)
    k0, k1, k2, k3 = ks
    combos = [
        x + y,
        x - y,
        k0 * x + y * k1 - z,
        k2 - x,
        x + k3,
        -(x - x),
        linear_sum([(k0, x), (k1, y), (k2, z), (k3, cs.one)]),
    ]
    witness = cs.witness
    for lc in combos:
        assert lc.value == evaluate(lc, witness)
        assert all(0 < k < R for k in lc.terms.values())
    assert (x - x).terms == {}


def test_products_of_constants_are_free_and_of_wires_cost_one_constraint() -> None:
    cs = ConstraintSystem()
    x, y = cs.private(3), cs.private(5)
    assert cs.mul(x, cs.constant(4)).value == 12
    assert cs.mul(cs.constant(2) + 1, y).value == 15
    assert cs.num_constraints == 0
    xy = cs.mul(x + 1, y)
    assert xy.value == 20
    assert cs.num_constraints == 1
    assert cs.r1cs().constraints[0] == (((ONE, 1), (1, 1)), ((2, 1),), ((3, 1),))


def test_a_false_constraint_is_refused_as_it_is_built_with_its_label() -> None:
    cs = ConstraintSystem()
    x = cs.private(3)
    with cs.scope("outer"), cs.scope("inner"):
        cs.assert_boolean(cs.private(1))
        with pytest.raises(ConstraintError, match=r"constraint 1 \(outer/inner\)") as raised:
            cs.assert_equal(x, 4)
    assert (raised.value.index, raised.value.label) == (1, "outer/inner")


def test_check_refuses_a_tampered_witness_naming_the_constraint() -> None:
    cs = ConstraintSystem()
    out = cs.public(35)
    x, y = cs.private(5), cs.private(7)
    with cs.scope("product"):
        cs.assert_equal(cs.mul(x, y), out)
    r1cs, witness = cs.r1cs(), cs.witness
    r1cs.check(witness)
    assert r1cs.is_satisfied(witness)
    for wire in range(1, len(witness)):
        tampered = list(witness)
        tampered[wire] = (tampered[wire] + 1) % R
        with pytest.raises(ConstraintError, match="product"):
            r1cs.check(tampered)
        assert not r1cs.is_satisfied(tampered)


def test_check_refuses_malformed_witnesses() -> None:
    cs = ConstraintSystem()
    cs.mul(cs.private(2), cs.private(3))
    r1cs, witness = cs.r1cs(), cs.witness
    with pytest.raises(ValueError, match="has 4 values, not 3"):
        r1cs.check(witness[:3])
    with pytest.raises(ValueError, match="constant 1"):
        r1cs.check([0, *witness[1:]])
    with pytest.raises(ValueError, match="field elements"):
        r1cs.check([1, 2 + R, 3, 6 + R])


def test_equal_constants_need_no_constraint() -> None:
    cs = ConstraintSystem()
    cs.assert_equal(cs.constant(5), 5)
    assert cs.num_constraints == 0
    with pytest.raises(ConstraintError):
        cs.assert_equal(cs.constant(5), 6)
