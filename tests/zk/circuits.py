"""Circuits shared by the slow Groth16 tests and ``bench/zk.py``.

:func:`consent_sized` has the shape of the consent circuit of DESIGN.md section 6 (a stand-in until the real one
lands next to it in ``zk``): six public inputs (grant root, grantee, model id, used-feature mask, time t, request
hash) and a private grant (scope, expiry, salt) whose leaf ``Poseidon(grantee, model, scope, expiry, salt)`` lies on
a depth-20 Poseidon Merkle path to the root, ``mask ⊆ scope`` over 64 bits, ``t < expiry`` over 64 bits, and the
request hash bound by a square. About 5,500 constraints, so a domain of 8,192 points.
"""

from __future__ import annotations

import random

from zk import gadgets
from zk.field import CURVE_ORDER
from zk.poseidon import poseidon
from zk.r1cs import ConstraintSystem

__all__ = ["consent_sized"]


def consent_sized(rng: random.Random, depth: int = 20) -> ConstraintSystem:
    """A satisfied consent-shaped circuit with random values drawn from ``rng``."""
    r = CURVE_ORDER
    grantee, model, salt, request = (rng.randrange(r) for _ in range(4))
    scope = rng.getrandbits(64)
    mask = scope & rng.getrandbits(64)
    expiry = rng.randrange(2**40, 2**63)
    t = expiry - rng.randrange(1, 2**20)
    bits = [rng.getrandbits(1) for _ in range(depth)]
    siblings = [rng.randrange(r) for _ in range(depth)]
    node = poseidon([grantee, model, scope, expiry, salt])
    for bit, sibling in zip(bits, siblings, strict=True):
        node = poseidon([sibling, node]) if bit else poseidon([node, sibling])

    cs = ConstraintSystem()
    root_w, grantee_w, model_w, mask_w, t_w, request_w = (
        cs.public(v) for v in (node, grantee, model, mask, t, request)
    )
    scope_w, expiry_w, salt_w = cs.private(scope), cs.private(expiry), cs.private(salt)
    bits_w = [cs.private(b) for b in bits]
    siblings_w = [cs.private(s) for s in siblings]
    leaf = gadgets.poseidon(cs, [grantee_w, model_w, scope_w, expiry_w, salt_w])
    gadgets.assert_merkle_path(cs, leaf, bits_w, siblings_w, root_w)
    gadgets.assert_subset(cs, mask_w, scope_w, 64)
    gadgets.to_bits(cs, t_w, 64)
    gadgets.to_bits(cs, expiry_w, 64)
    cs.assert_equal(gadgets.less_than(cs, t_w, expiry_w, 64), 1)
    cs.mul(request_w, request_w)  # binds the request hash, as circom's square trick
    return cs
