"""The consent circuit: real grants from the ledger's tree prove; every false statement fails where it is false."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consent_chain.catalogue import read_catalogue
from consent_chain.grants import Grant, address_field, purpose_field
from consent_chain.state_tree import DEPTH, GrantTree, MerklePath
from zk import consent_circuit as cc
from zk.consent_circuit import (
    Assignment,
    ConsentStatement,
    ConsentWitness,
    StatementError,
    assign,
    build_consent_circuit,
    consent_r1cs,
    patient_tag,
)
from zk.errors import ConstraintError
from zk.field import CURVE_ORDER
from zk.poseidon import poseidon
from zk.r1cs import ConstraintSystem

R = CURVE_ORDER
CAT = read_catalogue()
PATIENT = "0x" + "a1" * 20
CLINICIAN = "0x" + "c2" * 20
RESEARCHER = "0x" + "e3" * 20
MODEL = hashlib.sha256(b"pchr test model").hexdigest()
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
T = int(NOW.timestamp())
REQUEST = int.from_bytes(hashlib.sha256(b"a request").digest(), "big") % R
SCOPE = CAT.mask(["laboratory", "conditions", "allergies"])
USED = CAT.mask(["laboratory", "conditions"])


def new_grant(grantee: str, purpose: str, scope: int, expiry: datetime, seed: int) -> Grant:
    return Grant.new(PATIENT, grantee, purpose, scope, expiry, CAT, rng=random.Random(seed).randbytes)


@dataclass(frozen=True)
class Ledger:
    """A grant tree as the ledger derives it: five grants, the fourth revoked."""

    tree: GrantTree
    grants: tuple[Grant, ...]
    root_before_revocation: int
    path_before_revocation: MerklePath


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    grants = (
        new_grant(CLINICIAN, f"model:{MODEL}", SCOPE, NOW + timedelta(days=30), 1),
        new_grant(RESEARCHER, f"model:{MODEL}", CAT.mask(["laboratory"]), NOW + timedelta(days=90), 2),
        new_grant(CLINICIAN, "TREAT", SCOPE, NOW + timedelta(days=30), 3),
        new_grant(CLINICIAN, f"model:{MODEL}", SCOPE, NOW + timedelta(days=30), 4),
        new_grant(CLINICIAN, f"model:{MODEL}", USED, NOW + timedelta(seconds=1), 5),
    )
    tree = GrantTree()
    tree.extend(g.commitment() for g in grants)
    before = tree.root, tree.path(3)
    tree.revoke(3)
    return Ledger(tree, grants, *before)


@pytest.fixture(scope="module")
def proven(ledger: Ledger) -> Assignment:
    """Grant 0 covering a request that uses two of its three features."""
    return assign(ledger.grants[0], ledger.tree.path(0), ledger.tree.root, used_mask=USED, t=T, request_hash=REQUEST)


def statement_and_witness(
    grant: Grant, path: MerklePath, root: int, *, used_mask: int = USED, t: int = T
) -> tuple[ConsentStatement, ConsentWitness]:
    """The statement a grant would prove, unchecked: for feeding the circuit false statements directly."""
    statement = ConsentStatement(
        root,
        address_field(grant.grantee),
        purpose_field(grant.purpose),
        used_mask,
        t,
        REQUEST,
        patient_tag(grant.salt, REQUEST),
    )
    return statement, ConsentWitness(grant.scope, grant.expiry_unix, grant.salt, path)


def raw_leaf_case(scope: int, expiry: int, *, used_mask: int, t: int) -> tuple[ConsentStatement, ConsentWitness]:
    """A one-leaf tree whose leaf commits to values no Grant can hold (a scope or expiry of 2^64 or more)."""
    grantee, model, salt = address_field(CLINICIAN), purpose_field(f"model:{MODEL}"), 12345
    tree = GrantTree()
    tree.append(poseidon([grantee, model, scope, expiry, salt]))
    statement = ConsentStatement(tree.root, grantee, model, used_mask, t, REQUEST, patient_tag(salt, REQUEST))
    return statement, ConsentWitness(scope, expiry, salt, tree.path(0))


def refused_at(statement: ConsentStatement, witness: ConsentWitness) -> str:
    """The label of the constraint where building the circuit for a false statement fails."""
    with pytest.raises(ConstraintError) as caught:
        build_consent_circuit(statement, witness)
    return caught.value.label


# ---------------------------------------------------------------------------------------------------- shape


def test_the_circuit_has_3890_constraints_in_the_documented_parts() -> None:
    r1cs = consent_r1cs()
    assert (r1cs.num_constraints, r1cs.num_variables, r1cs.num_public) == (3890, 3924, 7)
    assert (cc.NUM_CONSTRAINTS, cc.NUM_VARIABLES) == (3890, 3924)
    parts = Counter(label.split("/")[0] for label in r1cs.labels)
    assert parts == {"leaf": 321 + 1, "merkle": 300 * DEPTH + 1, "scope": 130, "time": 195, "request": 1, "tag": 241}
    assert r1cs.labels.count("leaf/nonzero") == 1


def test_the_circuit_fits_a_4096_point_domain() -> None:
    # snarkjs's setup gives each public input (and the constant) a row of its own after the constraints.
    assert cc.NUM_CONSTRAINTS + len(cc.PUBLIC_INPUTS) + 1 <= 4096


def test_the_shape_does_not_depend_on_the_witness(ledger: Ledger, proven: Assignment) -> None:
    # Another grant, grantee, leaf index, mask, time and request: the same R1CS, the one the setup uses.
    other = assign(
        ledger.grants[1], ledger.tree.path(1), ledger.tree.root, used_mask=0, t=T + 77, request_hash=REQUEST + 1
    )
    shapes = [build_consent_circuit(a.statement, a.witness).r1cs() for a in (proven, other)]
    assert shapes[0] == shapes[1] == consent_r1cs()
    assert proven.wires != other.wires


# ---------------------------------------------------------------------------------------------------- real grants


def test_a_real_grant_proves_under_the_ledger_s_root(ledger: Ledger, proven: Assignment) -> None:
    r1cs = consent_r1cs()
    r1cs.check(list(proven.wires))
    statement = proven.statement
    assert r1cs.public_inputs(proven.wires) == list(statement.public_inputs())
    assert statement.root == ledger.tree.root
    assert statement.grantee == int(CLINICIAN, 16)
    assert statement.model == int(MODEL, 16) % R
    assert (statement.used_mask, statement.t, statement.request_hash) == (USED, T, REQUEST)


@pytest.mark.parametrize("index", [0, 1, 2, 4])
def test_the_in_circuit_leaf_is_the_grant_s_commitment(ledger: Ledger, index: int) -> None:
    grant = ledger.grants[index]
    assert ledger.tree.leaf(index) == grant.commitment()
    cs = ConstraintSystem()
    leaf = cc.grant_leaf(
        cs,
        grantee=cs.public(address_field(grant.grantee)),
        model=cs.public(purpose_field(grant.purpose)),
        scope=cs.private(grant.scope),
        expiry=cs.private(grant.expiry_unix),
        salt=cs.private(grant.salt),
    )
    assert leaf.value == grant.commitment()
    assert cs.num_constraints == 321


# ---------------------------------------------------------------------------------------------------- false statements


def test_a_feature_outside_the_scope_fails_the_subset_check(ledger: Ledger) -> None:
    grant, path, root = ledger.grants[0], ledger.tree.path(0), ledger.tree.root
    outside = CAT.mask(["vital-signs"])
    assert outside & grant.scope == 0
    assert refused_at(*statement_and_witness(grant, path, root, used_mask=USED | outside)) == "scope/subset64"
    with pytest.raises(StatementError, match="features outside the grant's scope"):
        assign(grant, path, root, used_mask=USED | outside, t=T, request_hash=REQUEST)


@pytest.mark.parametrize("after", [0, 1, 86_400 * 365])
def test_a_grant_at_or_after_its_expiry_fails_the_time_check(ledger: Ledger, after: int) -> None:
    grant, path, root = ledger.grants[4], ledger.tree.path(4), ledger.tree.root
    t = grant.expiry_unix + after
    assert refused_at(*statement_and_witness(grant, path, root, t=t)) == "time/assert_less_than64/bits64"
    with pytest.raises(StatementError, match=f"expired at time t = {t}"):
        assign(grant, path, root, used_mask=USED, t=t, request_hash=REQUEST)


def test_a_grant_proves_until_the_second_before_its_expiry(ledger: Ledger) -> None:
    grant = ledger.grants[4]  # at leaf 4: child 1 at level 1, where leaf 0 is child 0 everywhere
    t = grant.expiry_unix - 1
    a = assign(grant, ledger.tree.path(4), ledger.tree.root, used_mask=USED, t=t, request_hash=REQUEST)
    assert a.statement.t == t


def test_a_wrong_sibling_fails_the_root(ledger: Ledger) -> None:
    grant, path, root = ledger.grants[0], ledger.tree.path(0), ledger.tree.root
    siblings = list(path.siblings)
    siblings[7] = (siblings[7][0], (siblings[7][1] + 1) % R, siblings[7][2])
    wrong = MerklePath(path.index, tuple(siblings))
    assert refused_at(*statement_and_witness(grant, wrong, root)) == "merkle/root"
    with pytest.raises(StatementError, match="does not hash up to the root"):
        assign(grant, wrong, root, used_mask=USED, t=T, request_hash=REQUEST)


@pytest.mark.parametrize(("level", "place"), [(0, 1), (0, 3), (3, 2), (DEPTH - 1, 3)])
def test_the_leaf_in_a_wrong_place_fails_the_root(ledger: Ledger, level: int, place: int) -> None:
    # Same siblings, the path's node put in as another child at one level: another parent, so another root.
    grant, path, root = ledger.grants[0], ledger.tree.path(0), ledger.tree.root
    wrong = MerklePath(path.index | place << (2 * level), path.siblings)
    assert refused_at(*statement_and_witness(grant, wrong, root)) == "merkle/root"


def test_the_root_of_another_tree_fails(ledger: Ledger) -> None:
    grant, path = ledger.grants[0], ledger.tree.path(0)
    other = GrantTree()
    other.extend(g.commitment() for g in ledger.grants[:3])  # same first grants, fewer of them
    assert refused_at(*statement_and_witness(grant, path, other.root)) == "merkle/root"
    with pytest.raises(StatementError, match="another tree's root"):
        assign(grant, path, other.root, used_mask=USED, t=T, request_hash=REQUEST)


def test_a_revoked_grant_cannot_be_proven_under_the_current_root(ledger: Ledger) -> None:
    grant, tree = ledger.grants[3], ledger.tree
    assert tree.leaf(3) == 0
    assert refused_at(*statement_and_witness(grant, tree.path(3), tree.root)) == "merkle/root"
    # Not with its old path either: the siblings are unchanged, only the leaf emptied, so the root differs.
    assert refused_at(*statement_and_witness(grant, ledger.path_before_revocation, tree.root)) == "merkle/root"
    with pytest.raises(StatementError, match="revoked grant"):
        assign(grant, tree.path(3), tree.root, used_mask=USED, t=T, request_hash=REQUEST)
    # Under the root before the revocation it still proves: the verifier's root window is what refuses it.
    before = assign(
        grant, ledger.path_before_revocation, ledger.root_before_revocation, used_mask=USED, t=T, request_hash=REQUEST
    )
    assert before.statement.root == ledger.root_before_revocation != tree.root


@pytest.mark.parametrize(
    ("case", "where"),
    [
        ({"scope": SCOPE, "expiry": T + 10, "used_mask": 1 << 64 | USED, "t": T}, "scope/subset64"),
        ({"scope": 1 << 64 | SCOPE, "expiry": T + 10, "used_mask": USED, "t": T}, "scope/subset64/bits64"),
        ({"scope": SCOPE, "expiry": T + 10, "used_mask": USED, "t": 1 << 64}, "time/t/bits64"),
        # t = -1 would be "before" any expiry if it were not range-checked
        ({"scope": SCOPE, "expiry": T + 10, "used_mask": USED, "t": R - 1}, "time/t/bits64"),
        ({"scope": SCOPE, "expiry": 1 << 64 | 10, "used_mask": USED, "t": T}, "time/expiry/bits64"),
        ({"scope": SCOPE, "expiry": R - 1, "used_mask": USED, "t": T}, "time/expiry/bits64"),
    ],
)
def test_values_of_64_bits_or_more_are_refused_by_the_range_checks(case: dict[str, int], where: str) -> None:
    assert refused_at(*raw_leaf_case(**case)) == where


def test_the_same_leaf_in_range_proves(ledger: Ledger) -> None:
    # The raw one-leaf tree of the range cases is sound when the values fit: the failures above are the ranges'.
    build_consent_circuit(*raw_leaf_case(SCOPE, T + 10, used_mask=USED, t=T))


def test_a_wrong_tag_fails(ledger: Ledger) -> None:
    statement, witness = statement_and_witness(ledger.grants[0], ledger.tree.path(0), ledger.tree.root)
    forged = replace(statement, tag=patient_tag(ledger.grants[1].salt, REQUEST))
    assert refused_at(forged, witness) == "tag"


def test_changing_any_public_input_in_a_proven_witness_breaks_a_constraint(proven: Assignment) -> None:
    r1cs = consent_r1cs()
    first_broken = {}
    for position, name in enumerate(cc.PUBLIC_INPUTS, start=1):
        tampered = list(proven.wires)
        tampered[position] = (tampered[position] + 1) % R
        with pytest.raises(ConstraintError) as caught:
            r1cs.check(tampered)
        first_broken[name] = caught.value.label.split("/")[0]
    # The request hash is bound by its own constraint before the tag uses it.
    assert first_broken == {
        "root": "merkle",
        "grantee": "leaf",
        "model": "leaf",
        "usedMask": "scope",
        "t": "time",
        "reqHash": "request",
        "tag": "tag",
    }


# ---------------------------------------------------------------------------------------------------- assign's refusals


def test_assign_refuses_a_grant_that_is_not_for_a_model(ledger: Ledger) -> None:
    with pytest.raises(StatementError, match="not for a model"):
        assign(ledger.grants[2], ledger.tree.path(2), ledger.tree.root, used_mask=USED, t=T, request_hash=REQUEST)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"used_mask": 1 << 64}, "used-feature mask must be an int in 0..2\\^64-1"),
        ({"used_mask": -1}, "used-feature mask must be an int in 0..2\\^64-1"),
        ({"t": 1 << 64}, "time t must be an int in 0..2\\^64-1"),
        ({"t": True}, "time t must be an int"),
        ({"request_hash": R}, "request hash must be a field element"),
        ({"root": -1}, "root must be a field element"),
        ({"path": MerklePath(0, ((0, 0, 0),) * 3)}, "depth-10 grant tree path"),
    ],
)
def test_assign_refuses_malformed_inputs_with_a_reason(
    ledger: Ledger, changes: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "path": ledger.tree.path(0),
        "root": ledger.tree.root,
        "used_mask": USED,
        "t": T,
        "request_hash": REQUEST,
    } | changes
    with pytest.raises(StatementError, match=message):
        assign(ledger.grants[0], **arguments)  # type: ignore[arg-type]


def test_assign_s_refusals_do_not_quote_the_grant_s_private_values(ledger: Ledger) -> None:
    grant = ledger.grants[4]
    secrets = {str(grant.scope), hex(grant.scope), str(grant.expiry_unix), str(grant.salt), hex(grant.salt)}
    attempts = [
        {"used_mask": USED | CAT.mask(["vital-signs"]), "t": T},
        {"used_mask": USED, "t": grant.expiry_unix + 5},
    ]
    for attempt in attempts:
        with pytest.raises(StatementError) as caught:
            assign(grant, ledger.tree.path(4), ledger.tree.root, request_hash=REQUEST, **attempt)
        assert not any(secret in str(caught.value) for secret in secrets)


def test_statements_and_witnesses_hold_field_elements() -> None:
    with pytest.raises(StatementError, match="usedMask must be a field element"):
        ConsentStatement(1, 2, 3, R, 5, 6, 7)
    with pytest.raises(StatementError, match="7 public inputs, not 6"):
        ConsentStatement.from_public_inputs([1, 2, 3, 4, 5, 6])
    assert ConsentStatement.from_public_inputs([1, 2, 3, 4, 5, 6, 7]).public_inputs() == (1, 2, 3, 4, 5, 6, 7)
    with pytest.raises(StatementError, match="salt must be a field element"):
        ConsentWitness(1, 2, R, MerklePath(0, ((0, 0, 0),) * DEPTH))


# ---------------------------------------------------------------------------------------------------- the patient tag


def test_the_grant_s_parties_recognise_its_attestations_and_others_do_not(ledger: Ledger, proven: Assignment) -> None:
    grant = ledger.grants[0]
    assert cc.made_under(grant, proven.statement)
    # Same grantee, model and scope, another salt (the revoked grant 3): not recognised.
    assert cc.made_under(ledger.grants[3], proven.statement) is False
    assert cc.made_under(replace(grant, salt=grant.salt + 1), proven.statement) is False
    # Two requests under one grant carry unrelated tags: the tag links nothing without the salt.
    assert patient_tag(grant.salt, REQUEST) != patient_tag(grant.salt, REQUEST + 1)
    assert proven.statement.tag == poseidon([grant.salt, REQUEST])


# ---------------------------------------------------------------------------------------------------- properties

_U64 = 1 << 64
_EDGES = [0, 1, 2, _U64 - 2, _U64 - 1, _U64, _U64 + 1, R - 1, R - 2]


def terms_values() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(_EDGES), st.integers(0, _U64 - 1), st.integers(0, R - 1))


@st.composite
def grant_terms(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(used mask, scope, t, expiry), often near the boundaries: mask a subset of scope or one bit off, t next to
    the expiry."""
    scope = draw(terms_values())
    mask = draw(
        st.one_of(
            terms_values(),
            st.integers(0, _U64 - 1).map(lambda bits: bits & scope),
            st.integers(0, 64).map(lambda bit: (scope | 1 << bit) % R),
        )
    )
    expiry = draw(terms_values())
    t = draw(st.one_of(terms_values(), st.integers(-2, 1).map(lambda d: (expiry + d) % R)))
    return mask, scope, t, expiry


@settings(max_examples=200, deadline=None)
@given(grant_terms())
@example((0, 0, 0, 1))
@example((1, 1, _U64 - 2, _U64 - 1))
@example((0, 0, _U64 - 1, _U64))  # t < expiry, but expiry does not fit
@example((0, 0, R - 1, 5))  # "-1 < 5" only in the integers
@example((_U64 - 1, _U64 - 1, 0, 1))
@example((1 << 63, (1 << 63) - 1, 0, 1))
def test_the_circuit_s_grant_terms_are_exactly_mask_subset_of_scope_and_t_before_expiry(
    terms: tuple[int, int, int, int],
) -> None:
    mask, scope, t, expiry = terms
    cs = ConstraintSystem()
    wires = {"used_mask": cs.public(mask), "t": cs.public(t), "scope": cs.private(scope), "expiry": cs.private(expiry)}
    holds = cc.grant_terms_hold(mask, scope, t, expiry)
    assert holds == (max(terms) < _U64 and mask & ~scope == 0 and t < expiry)
    if holds:
        cc.assert_grant_terms(cs, **wires)
        assert cs.num_constraints == 325
        cs.r1cs().check(cs.witness)
    else:
        with pytest.raises(ConstraintError):
            cc.assert_grant_terms(cs, **wires)
