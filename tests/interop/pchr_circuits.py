"""Small circuits built with pchr's own R1CS gadgets, for the interop tests that go from pchr to snarkjs.

:func:`bounded_preimage` is circuits/bounded_preimage.circom rebuilt with :mod:`zk.gadgets` ("Poseidon(secret,
salt) = digest and secret < bound"), with pchr's wire order: public bound and digest, then the private wires.
"""

from __future__ import annotations

from zk.gadgets import assert_less_than, poseidon, to_bits
from zk.poseidon import poseidon as poseidon_hash
from zk.r1cs import ConstraintSystem

BITS = 32


def bounded_preimage(secret: int, salt: int, bound: int) -> ConstraintSystem:
    """The circuit and its witness for these values (ConstraintError at once if secret >= bound)."""
    cs = ConstraintSystem()
    bound_wire = cs.public(bound)
    digest = cs.public(poseidon_hash([secret, salt]))
    secret_wire = cs.private(secret)
    salt_wire = cs.private(salt)
    with cs.scope("range"):
        to_bits(cs, secret_wire, BITS)
        to_bits(cs, bound_wire, BITS)
    with cs.scope("below"):
        assert_less_than(cs, secret_wire, bound_wire, BITS)
    with cs.scope("poseidon"):
        cs.assert_equal(poseidon(cs, [secret_wire, salt_wire]), digest)
    return cs
