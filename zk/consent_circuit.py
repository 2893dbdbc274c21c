"""The consent circuit: a grant in the ledger's grant tree covers this request's features at time t.

Spec: ../shared/DESIGN.md section 6 and issue #5 item 5. The grant, its commitment and the tree are
:mod:`consent_chain.grants` and :mod:`consent_chain.state_tree`; the gadgets are :mod:`zk.gadgets` (circomlib's
``Poseidon``, ``Num2Bits``, Merkle proof); the wire order is snarkjs's (:mod:`zk.r1cs`), so that the circuit could
be written in circom with the same public signals in the same order.

Public inputs, in declaration order (:data:`PUBLIC_INPUTS`; ``public.json`` lists them so):

1. ``root``: the grant tree's root that the verifier checks against the ledger's root history;
2. ``grantee``: the grantee's address as a field element (:func:`consent_chain.grants.address_field`);
3. ``model``: the model's purpose field, the model id mod r (:func:`model_field`);
4. ``usedMask``: the 64-bit mask of the features the scoring request uses;
5. ``t``: the request's time, Unix seconds;
6. ``reqHash``: the hash of the encrypted request, mod r (:func:`zk.attestation.request_hash`);
7. ``tag``: ``Poseidon(salt, reqHash)``, by which the grant's parties recognise its attestations (below).

Private witness: the grant's scope mask, expiry and salt, and the Merkle path of its leaf as the four children of
each of its 10 ancestors (:func:`consent_chain.state_tree.path_children`). The constraints, with their counts
(``tests/zk/test_consent_circuit.py`` pins them):

=====================================================================================  ===========
``leaf = Poseidon(grantee, model, scope, expiry, salt)``, as :meth:`Grant.commitment`          321
``leaf != 0``: an empty or revoked leaf can never be proven                                      1
the leaf is in the tree with ``root``: 10 levels of ``Poseidon(4)`` and membership          3001
``usedMask ⊆ scope`` bitwise, which also range-checks both to 64 bits                          130
``t`` and ``expiry`` range-checked to 64 bits, ``t < expiry``                                  195
``reqHash`` bound: ``reqHash * reqHash`` into an unused wire, as circom does                     1
``tag = Poseidon(salt, reqHash)``                                                              241
=====================================================================================  ===========
total (:data:`NUM_CONSTRAINTS`), on 3,924 wires (:data:`NUM_VARIABLES`)                       3890
=====================================================================================  ===========

The total fits a 4,096-point domain (snarkjs's setup needs constraints + public inputs + 1 rows): the 4-ary
grant tree was chosen for it (:mod:`consent_chain.state_tree`), and it halves the prover's NTTs and H query.

The range checks matter: without them ``t = r - 1`` (that is, -1) would pass ``t < expiry`` for any expiry, and a
mask bit above 63 would escape the subset check. The request hash is bound by its own constraint: snarkjs's setup
adds a row per public input, so its Groth16 keys bind even an input no constraint uses (:mod:`zk.keys`), but the
dummy square keeps the binding in the R1CS itself, for any setup or proof system it is given to. It ties the proof
to one request, so that it cannot be replayed for another.

The patient tag. ``tag = Poseidon(salt, reqHash)`` with the grant's salt, a uniform field element that only the
grant's parties hold (the patient, the grantee who proves, and the vault given the opening; never the ledger).
Poseidon keyed by a secret uniform salt is a pseudorandom function of ``reqHash``, so to an auditor the tags of
distinct requests are independent random field elements: they do not link two attestations under one grant, nor
an attestation to a GRANT entry (the commitment is Poseidon of width 6, the tag of width 3, whose constants
differ), and recovering the salt from a tag is a preimage problem. The proof is zero-knowledge, so proof and tag
together reveal nothing of the grant beyond the other public inputs. A patient scans the ATTEST entries whose
grantee and model match one of their grants and compares ``Poseidon(salt, reqHash)`` (:func:`patient_tag`,
:func:`made_under`): every attestation made under the grant carries it, and a match means the proof used that
salt, hence that grant (salts are drawn uniformly from F_r, and Poseidon is collision resistant).

What the circuit cannot check, the verifier does (:mod:`zk.attestation`): that ``root`` is among the ledger's grant
roots in a short window, ``t`` against its clock, ``reqHash`` recomputed from the request it received.

The shape of the circuit does not depend on the values: :func:`consent_r1cs` builds it once from sample values for
the setup, and every :func:`assign` gives a witness for that same R1CS. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final

from consent_chain.grants import Grant, address_field, purpose_field
from consent_chain.state_tree import DEPTH, EMPTY_LEAF, MerklePath, compute_root, path_children, zero_hashes
from zk.errors import ZkError
from zk.field import CURVE_ORDER
from zk.gadgets import (
    assert_less_than,
    assert_merkle_path,
    assert_nonzero,
    assert_subset,
    poseidon,
    to_bits,
)
from zk.poseidon import poseidon as poseidon_hash
from zk.r1cs import R1CS, ConstraintSystem, LinearCombination

__all__ = [
    "MASK_BITS",
    "NUM_CONSTRAINTS",
    "NUM_VARIABLES",
    "PUBLIC_INPUTS",
    "TIME_BITS",
    "Assignment",
    "ConsentStatement",
    "ConsentWitness",
    "StatementError",
    "assert_grant_terms",
    "assign",
    "build_consent_circuit",
    "consent_r1cs",
    "grant_leaf",
    "grant_terms_hold",
    "made_under",
    "model_field",
    "patient_tag",
]

_R: Final = CURVE_ORDER
MASK_BITS: Final = 64
"""Width of the scope and used-feature masks (one bit per catalogue entry)."""
TIME_BITS: Final = 64
"""Width of ``t`` and the expiry (Unix seconds)."""
PUBLIC_INPUTS: Final = ("root", "grantee", "model", "usedMask", "t", "reqHash", "tag")
"""The public inputs' names in declaration order, as a circom ``main`` would declare them."""
NUM_CONSTRAINTS: Final = 3890
NUM_VARIABLES: Final = 3924
"""Wires in all, the constant-one wire included."""


class StatementError(ZkError, ValueError):
    """The consent statement is false for this grant (or malformed), so no witness for it exists.

    Raised by :func:`assign` before any constraint is built, naming which part of the statement fails; it never
    quotes the grant's private values (scope, expiry, salt).
    """


def _check_field(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _R:
        raise StatementError(f"{name} must be a field element (an int, 0 <= x < r)")


@dataclass(frozen=True)
class ConsentStatement:
    """The public inputs of one consent proof (module docstring), each a field element.

    Only field membership is checked here: that ``used_mask`` and ``t`` fit in 64 bits is the circuit's to enforce
    (and :func:`assign` refuses them first), so that the circuit's own checks can be tested.
    """

    root: int
    grantee: int
    model: int
    used_mask: int
    t: int
    request_hash: int
    tag: int

    def __post_init__(self) -> None:
        for name, value in zip(PUBLIC_INPUTS, self.public_inputs(), strict=True):
            _check_field(name, value)

    def public_inputs(self) -> tuple[int, ...]:
        """The values in declaration order: wires 1..7 of the witness, snarkjs's ``public.json``."""
        return (self.root, self.grantee, self.model, self.used_mask, self.t, self.request_hash, self.tag)

    @classmethod
    def from_public_inputs(cls, values: Sequence[int]) -> ConsentStatement:
        if len(values) != len(PUBLIC_INPUTS):
            raise StatementError(f"a consent statement has {len(PUBLIC_INPUTS)} public inputs, not {len(values)}")
        return cls(*values)


@dataclass(frozen=True)
class ConsentWitness:
    """The private inputs: the grant's scope, expiry and salt, and its leaf's path in the grant tree."""

    scope: int
    expiry: int
    salt: int
    path: MerklePath

    def __post_init__(self) -> None:
        for name, value in (("scope", self.scope), ("expiry", self.expiry), ("salt", self.salt)):
            _check_field(name, value)
        if not isinstance(self.path, MerklePath) or self.path.depth != DEPTH:
            raise StatementError(f"the consent circuit takes a depth-{DEPTH} grant tree path")


@dataclass(frozen=True)
class Assignment:
    """A true statement with its witness: ``wires`` is the full wire vector of :func:`consent_r1cs` (1, the public
    inputs, the private wires), what a Groth16 prover takes.
    """

    statement: ConsentStatement
    witness: ConsentWitness
    wires: tuple[int, ...]


def model_field(model_id: str) -> int:
    """The ``model`` public input of a model id (hex): the purpose field of ``model:<id>``, the id mod r."""
    return purpose_field(f"model:{model_id}")


def patient_tag(salt: int, request_hash: int) -> int:
    """``Poseidon(salt, reqHash)``: the tag an attestation under the grant with ``salt`` carries for a request."""
    return poseidon_hash((salt, request_hash))


def made_under(grant: Grant, statement: ConsentStatement) -> bool:
    """Whether an attestation's statement was proven under ``grant`` (for its parties, who hold the salt)."""
    return (
        statement.grantee == address_field(grant.grantee)
        and statement.model == purpose_field(grant.purpose)
        and statement.tag == patient_tag(grant.salt, statement.request_hash)
    )


def grant_terms_hold(used_mask: int, scope: int, t: int, expiry: int) -> bool:
    """The terms :func:`assert_grant_terms` enforces, in plain Python: 64-bit values, mask ⊆ scope, t < expiry."""
    in_range = all(0 <= v < 1 << 64 for v in (used_mask, scope, t, expiry))
    return in_range and used_mask & ~scope == 0 and t < expiry


def grant_leaf(
    cs: ConstraintSystem,
    *,
    grantee: LinearCombination,
    model: LinearCombination,
    scope: LinearCombination,
    expiry: LinearCombination,
    salt: LinearCombination,
) -> LinearCombination:
    """A grant's tree leaf, ``Poseidon(grantee, model, scope, expiry, salt)``: :meth:`Grant.commitment` computed in
    the circuit. 321 constraints.
    """
    return poseidon(cs, [grantee, model, scope, expiry, salt])


def assert_grant_terms(
    cs: ConstraintSystem,
    *,
    used_mask: LinearCombination,
    scope: LinearCombination,
    t: LinearCombination,
    expiry: LinearCombination,
) -> None:
    """``used_mask ⊆ scope`` and ``t < expiry``, all four range-checked to 64 bits. 325 constraints.

    ``assert_subset`` range-checks the mask and the scope; ``t`` and ``expiry`` are decomposed before the
    comparison, which is only sound for operands below 2^64.
    """
    with cs.scope("scope"):
        assert_subset(cs, used_mask, scope, MASK_BITS)
    with cs.scope("time"):
        with cs.scope("t"):
            to_bits(cs, t, TIME_BITS)
        with cs.scope("expiry"):
            to_bits(cs, expiry, TIME_BITS)
        assert_less_than(cs, t, expiry, TIME_BITS)


def build_consent_circuit(statement: ConsentStatement, witness: ConsentWitness) -> ConstraintSystem:
    """The consent circuit for these values: its constraints and, as they are built, its witness.

    A false statement fails at the constraint where it is false (:class:`~zk.errors.ConstraintError`, whose label
    names the part: ``scope/subset64``, ``time/assert_less_than64``, ``merkle/root``, ...). :func:`assign` is the
    checked entry point for real grants.
    """
    cs = ConstraintSystem()
    root, grantee, model, used_mask, t, request_hash, tag = (cs.public(v) for v in statement.public_inputs())
    scope = cs.private(witness.scope)
    expiry = cs.private(witness.expiry)
    salt = cs.private(witness.salt)

    with cs.scope("leaf"):
        leaf = grant_leaf(cs, grantee=grantee, model=model, scope=scope, expiry=expiry, salt=salt)
        assert_nonzero(cs, leaf)
    children = [[cs.private(c) for c in level] for level in path_children(leaf.value, witness.path)]
    assert_merkle_path(cs, leaf, children, root)
    assert_grant_terms(cs, used_mask=used_mask, scope=scope, t=t, expiry=expiry)
    with cs.scope("request"):
        cs.mul(request_hash, request_hash)
    with cs.scope("tag"):
        cs.assert_equal(poseidon(cs, [salt, request_hash]), tag)
    return cs


@cache
def consent_r1cs() -> R1CS:
    """The circuit's fixed shape, for the setup: built once from sample values (a one-grant tree).

    Every witness :func:`assign` builds is for exactly this R1CS; the gadgets branch on no value.
    """
    grantee, model, scope, expiry, salt, request_hash = 1, 1, 1, 2, 1, 1
    path = MerklePath(0, tuple((z, z, z) for z in zero_hashes(DEPTH)[:DEPTH]))
    leaf = poseidon_hash((grantee, model, scope, expiry, salt))
    statement = ConsentStatement(
        compute_root(leaf, path), grantee, model, scope, 1, request_hash, patient_tag(salt, request_hash)
    )
    r1cs = build_consent_circuit(statement, ConsentWitness(scope, expiry, salt, path)).r1cs()
    if (r1cs.num_constraints, r1cs.num_variables, r1cs.num_public) != (
        NUM_CONSTRAINTS,
        NUM_VARIABLES,
        len(PUBLIC_INPUTS),
    ):
        raise ValueError("the consent circuit's shape differs from the one this module documents")
    return r1cs


def assign(grant: Grant, path: MerklePath, root: int, *, used_mask: int, t: int, request_hash: int) -> Assignment:
    """The statement and full witness that ``grant`` (at ``path`` in the tree with ``root``) covers a request
    using ``used_mask`` at time ``t`` with hash ``request_hash``.

    Refuses a false or malformed statement with :class:`StatementError` saying what is false: a grant that is not
    for a model, a mask or time outside 0..2^64-1, a mask with features outside the scope, a grant expired at
    ``t``, or a commitment that the path does not hash up to ``root`` (a wrong path, another tree's root, or a
    revoked grant: its leaf is 0 in the tree since the revocation).
    """
    if not grant.purpose.startswith("model:"):
        raise StatementError("the grant is not for a model (its purpose is not model:<id>), so it covers no scoring")
    for name, value in (("root", root), ("request hash", request_hash)):
        _check_field(name, value)
    for name, value in (("used-feature mask", used_mask), ("time t", t)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
            raise StatementError(f"the {name} must be an int in 0..2^64-1")
    if not isinstance(path, MerklePath) or path.depth != DEPTH:
        raise StatementError(f"the consent circuit takes a depth-{DEPTH} grant tree path")
    expiry = grant.expiry_unix
    if not 0 <= expiry < 1 << 64:
        raise StatementError("the grant's expiry is outside 0..2^64-1 Unix seconds")
    if used_mask & ~grant.scope:
        raise StatementError("the used-feature mask includes features outside the grant's scope")
    if t >= expiry:
        raise StatementError(f"the grant has expired at time t = {t}")
    leaf = grant.commitment()
    if leaf == EMPTY_LEAF:
        raise StatementError("the grant's commitment is 0, the mark of an empty leaf")
    if compute_root(leaf, path) != root:
        raise StatementError(
            f"the grant's commitment at leaf {path.index} does not hash up to the root "
            f"(a wrong path, another tree's root, or a revoked grant)"
        )

    statement = ConsentStatement(
        root=root,
        grantee=address_field(grant.grantee),
        model=purpose_field(grant.purpose),
        used_mask=used_mask,
        t=t,
        request_hash=request_hash,
        tag=patient_tag(grant.salt, request_hash),
    )
    witness = ConsentWitness(grant.scope, expiry, grant.salt, path)
    # The checks above mirror every constraint, so a ConstraintError here would be a bug in this module.
    cs = build_consent_circuit(statement, witness)
    return Assignment(statement, witness, tuple(cs.witness))
