"""Consent attestations: the request hash, the ATTEST encoding, the service's and auditors' checks, and a proof
of the consent circuit end to end on a development setup (slow)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from consent_chain.catalogue import read_catalogue
from consent_chain.grants import Grant, address_field
from consent_chain.state_tree import GrantTree
from ehr.identity import normalize_address
from zk import groth16
from zk.attestation import (
    REQUEST_DOMAIN,
    Attestation,
    AttestationRefused,
    Refusal,
    attest,
    attest_assignment,
    check_attestation,
    request_hash,
)
from zk.consent_circuit import (
    ConsentStatement,
    StatementError,
    assign,
    consent_r1cs,
    made_under,
    model_field,
    patient_tag,
)
from zk.curve import G1, G2, g1_mul
from zk.field import CURVE_ORDER, FIELD_MODULUS
from zk.keys import Proof, ProvingKey
from zk.r1cs import ConstraintSystem

R = CURVE_ORDER
MODEL = hashlib.sha256(b"pchr test model").hexdigest()
GRANTEE = "0x" + "c2" * 20
CONTEXT_DIGEST = hashlib.sha256(b"a CKKS public context").digest()
REQUEST = {
    "model_id": MODEL,
    "used_mask": 0x28,
    "t": 1_772_355_600,
    "grantee": GRANTEE,
    "context_digest": CONTEXT_DIGEST,
    "ciphertext": b"\x5e\xa1" * 100,
}


def test_the_request_hash_is_the_documented_encoding() -> None:
    # The layout written out byte by byte, apart from the module's code.
    encoded = (
        b"pchr/consent-request/v1\x00"
        + bytes.fromhex("0000000000000020")
        + bytes.fromhex(MODEL)
        + bytes.fromhex("0000000000000008" + "0000000000000028")
        + bytes.fromhex("0000000000000008" + "0000000069a40010")
        + bytes.fromhex("0000000000000014" + "c2" * 20)
        + bytes.fromhex("0000000000000020")
        + CONTEXT_DIGEST
        + bytes.fromhex("00000000000000c8")
        + b"\x5e\xa1" * 100
    )
    assert REQUEST_DOMAIN == b"pchr/consent-request/v1\x00"
    assert request_hash(**REQUEST) == int.from_bytes(hashlib.sha256(encoded).digest(), "big") % R  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("model_id", hashlib.sha256(b"another model").hexdigest()),
        ("used_mask", 0x29),
        ("t", 1_772_355_601),
        ("grantee", "0x" + "c3" * 20),
        ("context_digest", hashlib.sha256(b"another context").digest()),
        ("ciphertext", b"\x5e\xa1" * 99 + b"\x5e\xa0"),
        ("ciphertext", b"\x5e\xa1" * 100 + b"\x00"),
    ],
)
def test_every_part_of_the_request_changes_its_hash(field: str, other: object) -> None:
    digest = request_hash(**REQUEST)  # type: ignore[arg-type]
    assert 0 <= digest < R
    assert request_hash(**(REQUEST | {field: other})) != digest  # type: ignore[arg-type]


def test_the_grantee_address_is_hashed_whatever_its_letter_case() -> None:
    mixed = "0x" + "C2" * 20
    assert request_hash(**(REQUEST | {"grantee": mixed})) == request_hash(**REQUEST)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("model_id", MODEL.upper(), "64 lower-case hex digits"),
        ("model_id", MODEL[:-2], "64 lower-case hex digits"),
        ("used_mask", 1 << 64, "used-feature mask must be an int in 0..2\\^64-1"),
        ("t", -1, "time t must be an int in 0..2\\^64-1"),
        ("context_digest", CONTEXT_DIGEST[:31], "32 bytes"),
        ("ciphertext", "not bytes", "ciphertext is bytes"),
        ("grantee", "0x1234", "not an address"),
    ],
)
def test_a_malformed_request_is_refused(field: str, bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        request_hash(**(REQUEST | {field: bad}))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------- the ATTEST entry

CIPHERTEXT = REQUEST["ciphertext"]
T = REQUEST["t"]
SALT = 0x5A17


def request_for(used_mask: int, t: int) -> int:
    """The hash of REQUEST with this mask and time."""
    return request_hash(**(REQUEST | {"used_mask": used_mask, "t": t}))  # type: ignore[arg-type]


# A root history: the current root, one superseded 30 s before T, one an hour before.
ROOT_NOW, ROOT_BEFORE, ROOT_LONG_AGO = 0xDEAD, 0xBEEF, 0xCAFE
ROOTS = {ROOT_LONG_AGO: T - 3600, ROOT_BEFORE: T - 30, ROOT_NOW: None}


def statement_for(*, root: int = ROOT_NOW, used_mask: int = 0x28, t: int = T) -> ConsentStatement:
    """A statement whose request hash is the hash of REQUEST with these fields (as a grantee would make it)."""
    rh = request_for(used_mask, t)
    return ConsentStatement(root, address_field(GRANTEE), model_field(MODEL), used_mask, t, rh, patient_tag(SALT, rh))


# Points of the groups, not a proof of anything: for the encoding, which does not look at validity.
SOME_POINTS = Proof(g1_mul(G1, 3), G2, g1_mul(G1, 5))


def test_an_attestation_encodes_to_421_bytes_in_the_documented_layout() -> None:
    a = Attestation(MODEL, statement_for(), SOME_POINTS)
    data = a.to_bytes()
    assert len(data) == Attestation.SIZE == 421
    s = a.statement
    assert data[0] == 1
    assert data[1:33] == s.request_hash.to_bytes(32, "big")
    assert data[33:289] == SOME_POINTS.to_bytes()
    assert data[289:321].hex() == MODEL
    assert data[321:353] == (0xDEAD).to_bytes(32, "big")
    assert data[353:373] == bytes.fromhex("c2" * 20)
    assert data[373:381] == (0x28).to_bytes(8, "big")
    assert data[381:389] == T.to_bytes(8, "big")
    assert data[389:421] == s.tag.to_bytes(32, "big")
    assert Attestation.from_bytes(data) == a
    assert Attestation.from_bytes(data).to_bytes() == data


def test_the_attestation_names_its_grantee_and_recomputes_its_request_hash() -> None:
    a = Attestation(MODEL, statement_for(), SOME_POINTS)
    assert a.grantee == normalize_address(GRANTEE)  # EIP-55, as the ledger and the vault write addresses
    assert a.grantee.lower() == GRANTEE
    assert a.request_hash_for(context_digest=CONTEXT_DIGEST, ciphertext=CIPHERTEXT) == a.statement.request_hash
    assert a.request_hash_for(context_digest=CONTEXT_DIGEST, ciphertext=CIPHERTEXT + b"!") != a.statement.request_hash


def _with(data: bytes, offset: int, chunk: bytes) -> bytes:
    return data[:offset] + chunk + data[offset + len(chunk) :]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda d: d[:-1], "421 bytes, not 420"),
        (lambda d: d + b"\x00", "421 bytes, not 422"),
        (lambda d: _with(d, 0, b"\x02"), "unknown attestation version 2"),
        (lambda d: _with(d, 1, CURVE_ORDER.to_bytes(32, "big")), "reqHash must be a field element"),
        (lambda d: _with(d, 321, (CURVE_ORDER + 0xDEAD).to_bytes(32, "big")), "root must be a field element"),
        (lambda d: _with(d, 389, b"\xff" * 32), "tag must be a field element"),
        (lambda d: _with(d, 33, FIELD_MODULUS.to_bytes(32, "big")), "not below the modulus q"),
        (lambda d: _with(d, 33 + 63, bytes([d[33 + 63] ^ 1])), "not on the G1 curve"),
    ],
)
def test_a_malformed_attest_entry_is_refused(tamper: Callable[[bytes], bytes], message: str) -> None:
    data = Attestation(MODEL, statement_for(), SOME_POINTS).to_bytes()
    with pytest.raises(AttestationRefused, match=message) as caught:
        Attestation.from_bytes(tamper(data))
    assert caught.value.reason is Refusal.MALFORMED


@pytest.mark.parametrize(
    ("model_id", "statement", "message"),
    [
        (MODEL.upper(), statement_for(), "64 lower-case hex digits"),
        (hashlib.sha256(b"another model").hexdigest(), statement_for(), "statement's model is not this model id"),
        (MODEL, replace(statement_for(), grantee=1 << 160), "grantee is not an address"),
        (MODEL, replace(statement_for(), used_mask=1 << 64), "64-bit numbers"),
        (MODEL, replace(statement_for(), t=1 << 64), "64-bit numbers"),
    ],
)
def test_an_inconsistent_attestation_cannot_be_made(model_id: str, statement: ConsentStatement, message: str) -> None:
    with pytest.raises(AttestationRefused, match=message):
        Attestation(model_id, statement, SOME_POINTS)


# ---------------------------------------------------------------------------------------------------- the checks
#
# check_attestation is generic in the key. Here a real Groth16 development key for a small relation over the same
# seven public inputs (each input squared) makes real, valid proofs in milliseconds, so every check and its order is
# exercised on every run; the consent circuit itself is proven in the slow tests below.


def squares_circuit(statement: ConsentStatement) -> ConstraintSystem:
    cs = ConstraintSystem()
    for wire in [cs.public(v) for v in statement.public_inputs()]:
        cs.mul(wire, wire)
    return cs


@pytest.fixture(scope="module")
def squares_key() -> ProvingKey:
    return groth16.setup(squares_circuit(statement_for()).r1cs(), rng=random.Random(11))


def squares_attestation(pk: ProvingKey, statement: ConsentStatement) -> Attestation:
    return Attestation(MODEL, statement, groth16.prove(pk, squares_circuit(statement).witness, rng=random.Random(12)))


def check(
    pk: ProvingKey, a: Attestation, *, now: int = T + 5, ciphertext: bytes = CIPHERTEXT, auditor: bool = False
) -> None:
    """check_attestation as the service does it for a request with ``ciphertext`` (or as an auditor, without)."""
    expected = None if auditor else a.request_hash_for(context_digest=CONTEXT_DIGEST, ciphertext=ciphertext)
    check_attestation(
        groth16.prepare(pk.vk),
        a,
        known_roots=ROOTS,
        now=now,
        window_seconds=120,
        expected_request_hash=expected,
    )


@pytest.mark.parametrize("root", [ROOT_NOW, ROOT_BEFORE])
def test_a_valid_attestation_under_a_root_within_the_window_is_accepted(squares_key: ProvingKey, root: int) -> None:
    check(squares_key, squares_attestation(squares_key, statement_for(root=root)))


@pytest.mark.parametrize(
    ("statement", "now", "reason", "message"),
    [
        (statement_for(root=0xF00), T, Refusal.UNKNOWN_ROOT, "not one of the ledger's grant roots"),
        (statement_for(root=ROOT_LONG_AGO), T, Refusal.STALE_ROOT, "superseded 3600 s before now, more than the 120"),
        # ROOT_BEFORE was superseded at T - 30: fine at T + 5, stale 121 s later.
        (statement_for(root=ROOT_BEFORE, t=T + 91), T + 91, Refusal.STALE_ROOT, "superseded 121 s before now"),
        (statement_for(), T + 121, Refusal.CLOCK, "is -121 s from now, outside the 120 s window"),
        (statement_for(t=T + 121), T, Refusal.CLOCK, "is \\+121 s from now"),
    ],
)
def test_roots_and_times_outside_the_window_are_refused(
    squares_key: ProvingKey, statement: ConsentStatement, now: int, reason: Refusal, message: str
) -> None:
    a = squares_attestation(squares_key, statement)
    with pytest.raises(AttestationRefused, match=message) as caught:
        check(squares_key, a, now=now)
    assert caught.value.reason is reason


def test_the_edges_of_the_window_are_inside_it(squares_key: ProvingKey) -> None:
    check(squares_key, squares_attestation(squares_key, statement_for(root=ROOT_BEFORE, t=T + 90)), now=T + 90)
    check(squares_key, squares_attestation(squares_key, statement_for()), now=T + 120)
    check(squares_key, squares_attestation(squares_key, statement_for()), now=T - 120)


def test_a_proof_for_another_request_is_refused(squares_key: ProvingKey) -> None:
    a = squares_attestation(squares_key, statement_for())
    with pytest.raises(AttestationRefused, match="request hash mismatch") as caught:
        check(squares_key, a, ciphertext=CIPHERTEXT + b"another")
    assert caught.value.reason is Refusal.REQUEST_HASH
    # The statement's own fields are hashed: an attestation claiming another mask does not match this request.
    claimed = replace(a, statement=replace(a.statement, used_mask=0))
    with pytest.raises(AttestationRefused, match="request hash mismatch"):
        check(squares_key, claimed)


def test_a_changed_statement_or_a_foreign_proof_is_refused_by_the_proof_check(squares_key: ProvingKey) -> None:
    a = squares_attestation(squares_key, statement_for())
    check(squares_key, a, auditor=True)  # as an auditor: no ciphertext, every other check
    for changed in (replace(a.statement, used_mask=0), replace(a.statement, tag=a.statement.tag ^ 1)):
        with pytest.raises(AttestationRefused, match="invalid proof: pairing check failed") as caught:
            check(squares_key, replace(a, statement=changed), auditor=True)
        assert caught.value.reason is Refusal.PROOF
    foreign = squares_attestation(squares_key, statement_for(root=ROOT_BEFORE)).proof
    with pytest.raises(AttestationRefused, match="invalid proof"):
        check(squares_key, replace(a, proof=foreign))


def test_a_negative_window_is_a_caller_error(squares_key: ProvingKey) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        check_attestation(
            groth16.prepare(squares_key.vk),
            squares_attestation(squares_key, statement_for()),
            known_roots=ROOTS,
            now=T,
            window_seconds=-1,
            expected_request_hash=None,
        )


# ---------------------------------------------------------------------------------------------------- end to end

CAT = read_catalogue()
NOW = datetime.fromtimestamp(T, tz=UTC)
WINDOW = 300


@dataclass(frozen=True)
class Keys:
    """A development key for the consent circuit (made once: it takes seconds)."""

    pk: ProvingKey
    prepared: groth16.PreparedVerifyingKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    pk = groth16.setup(consent_r1cs(), rng=random.Random(2026))
    return Keys(pk, groth16.prepare(pk.vk))


class Ledger:
    """A grant tree with our grant at leaf 1 between two others, and its root history as the verifier sees it."""

    def __init__(self) -> None:
        rng = random.Random(7)
        self.grant = Grant.new(
            "0x" + "a1" * 20,
            GRANTEE,
            f"model:{MODEL}",
            CAT.mask(["laboratory", "conditions", "allergies"]),
            NOW + timedelta(days=30),
            CAT,
            rng=rng.randbytes,
        )
        others = [
            Grant.new(
                "0x" + "b2" * 20, GRANTEE, f"model:{MODEL}", CAT.mask(["laboratory"]), NOW, CAT, rng=rng.randbytes
            )
            for _ in range(2)
        ]
        self.tree = GrantTree()
        self.tree.extend([others[0].commitment(), self.grant.commitment(), others[1].commitment()])
        self.index = 1
        self.roots: dict[int, int | None] = {self.tree.root: None}

    def revoke(self, when: int) -> None:
        """Revoke our grant at ``when``: the current root is superseded then, the new one is current."""
        self.tree.revoke(self.index)
        for root, superseded in self.roots.items():
            if superseded is None:
                self.roots[root] = when
        self.roots[self.tree.root] = None


@pytest.mark.slow
def test_a_consent_proof_is_checked_by_the_service_and_recognised_by_the_patient(keys: Keys) -> None:
    ledger = Ledger()
    used = CAT.mask(["laboratory", "conditions"])
    a = attest(
        keys.pk,
        ledger.grant,
        ledger.tree.path(ledger.index),
        ledger.tree.root,
        used_mask=used,
        t=T,
        request_hash=request_for(used, T),
        rng=random.Random(1),
    )
    expected = a.request_hash_for(context_digest=CONTEXT_DIGEST, ciphertext=CIPHERTEXT)
    check_attestation(
        keys.prepared, a, known_roots=ledger.roots, now=T + 2, window_seconds=WINDOW, expected_request_hash=expected
    )
    # As the auditor reads it back from the ledger.
    entry = Attestation.from_bytes(a.to_bytes())
    check_attestation(
        keys.prepared, entry, known_roots=ledger.roots, now=T + 2, window_seconds=WINDOW, expected_request_hash=None
    )
    assert made_under(ledger.grant, entry.statement)
    # The proof is for this statement only: claiming a wider mask (the request hash recomputed to match) fails.
    wider = used | CAT.mask(["allergies"])
    forged = replace(a, statement=replace(a.statement, used_mask=wider, request_hash=request_for(wider, T)))
    with pytest.raises(AttestationRefused, match="invalid proof") as caught:
        check_attestation(
            keys.prepared,
            forged,
            known_roots=ledger.roots,
            now=T + 2,
            window_seconds=WINDOW,
            expected_request_hash=forged.request_hash_for(context_digest=CONTEXT_DIGEST, ciphertext=CIPHERTEXT),
        )
    assert caught.value.reason is Refusal.PROOF


def test_a_witness_for_another_model_than_the_grant_is_refused_before_any_proof(squares_key: ProvingKey) -> None:
    ledger = Ledger()
    other = Grant.new(
        "0x" + "a1" * 20, GRANTEE, f"model:{'ab' * 32}", CAT.mask(["laboratory"]), NOW + timedelta(days=30), CAT
    )
    tree = GrantTree()
    tree.append(other.commitment())
    used = CAT.mask(["laboratory"])
    assignment = assign(other, tree.path(0), tree.root, used_mask=used, t=T, request_hash=request_for(used, T))
    # squares_key is not even the consent circuit's key: the refusal comes before the prover would find that out.
    with pytest.raises(StatementError, match="another model than the grant's"):
        attest_assignment(squares_key, ledger.grant, assignment)
    malformed = replace(ledger.grant, purpose="model:abcd")  # hex, but not a registry id (64 hex digits)
    with pytest.raises(StatementError, match="not for a registry model"):
        attest_assignment(squares_key, malformed, assignment)


@pytest.mark.slow
def test_after_a_revocation_no_new_proof_and_an_old_root_is_refused_after_the_window(keys: Keys) -> None:
    ledger = Ledger()
    used = CAT.mask(["laboratory"])
    old_root, old_path = ledger.tree.root, ledger.tree.path(ledger.index)
    before = attest(keys.pk, ledger.grant, old_path, old_root, used_mask=used, t=T, request_hash=request_for(used, T))
    revoked_at = T + 60
    ledger.revoke(revoked_at)

    # Against the new root the grant's leaf is empty: no witness, so no proof.
    later = revoked_at + WINDOW + 1
    with pytest.raises(StatementError, match="revoked grant"):
        attest(
            keys.pk,
            ledger.grant,
            ledger.tree.path(ledger.index),
            ledger.tree.root,
            used_mask=used,
            t=later,
            request_hash=request_for(used, later),
        )

    # Against the old root the statement is still true, and a fresh proof of it can be made...
    stale = attest(
        keys.pk, ledger.grant, old_path, old_root, used_mask=used, t=later, request_hash=request_for(used, later)
    )
    expected = stale.request_hash_for(context_digest=CONTEXT_DIGEST, ciphertext=CIPHERTEXT)

    # ...which the verifier accepts only within the stated window after the revocation,
    check_attestation(
        keys.prepared,
        stale,
        known_roots=ledger.roots,
        now=revoked_at + WINDOW - 10,
        window_seconds=WINDOW,
        expected_request_hash=None,
    )
    # and refuses once the window has passed.
    with pytest.raises(AttestationRefused, match="stale grant root: the root was superseded 301 s") as caught:
        check_attestation(
            keys.prepared,
            stale,
            known_roots=ledger.roots,
            now=later,
            window_seconds=WINDOW,
            expected_request_hash=expected,
        )
    assert caught.value.reason is Refusal.STALE_ROOT
    # The proof made before the revocation, replayed (as an auditor would check its entry then), is refused too.
    with pytest.raises(AttestationRefused, match="stale grant root") as caught:
        check_attestation(
            keys.prepared,
            before,
            known_roots=ledger.roots,
            now=later,
            window_seconds=WINDOW,
            expected_request_hash=None,
        )
    assert caught.value.reason is Refusal.STALE_ROOT
