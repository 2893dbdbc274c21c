"""The consent ledger on its SQL backend: append rules, atomicity, proofs, checkpoints and the audit."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from consent_chain import merkle
from consent_chain.audit import audit_ledger
from consent_chain.backends.sql import SqlLedgerBackend
from consent_chain.catalogue import read_catalogue
from consent_chain.eip712 import Domain, GrantMessage, RevokeMessage, sign
from consent_chain.entries import GrantEntry, KeyEntry, RevokeEntry, decode_entry
from consent_chain.errors import AppendRefused, ForkError
from consent_chain.grants import Grant
from consent_chain.ledger import Ledger
from consent_chain.note import Checkpoint, Signer, verify_checkpoint
from consent_chain.state_tree import GrantTree, verify_path
from ehr.identity import ActorKeys, Role

DOMAIN = Domain(chain_id=31337)
CAT = read_catalogue()
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def alice() -> ActorKeys:
    return ActorKeys.generate(Role.PATIENT)


@pytest.fixture(scope="module")
def bob() -> ActorKeys:
    return ActorKeys.generate(Role.PATIENT)


@pytest.fixture(scope="module")
def doctor() -> ActorKeys:
    return ActorKeys.generate(Role.CLINICIAN)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer() -> Signer:
    return Signer.generate("pchr.test/ledger")


@pytest.fixture
def ledger(
    database_url: str, signer: Signer, clock: Clock, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys
) -> Iterator[Ledger]:
    backend = SqlLedgerBackend(database_url)
    ledger = Ledger(backend, signer, origin=signer.name, domain=DOMAIN, clock=clock)
    ledger.append([key_entry(k) for k in (alice, bob, doctor)])
    yield ledger
    backend.engine.dispose()


def key_entry(keys: ActorKeys) -> KeyEntry:
    public = keys.public()
    return KeyEntry(public.address, public.role, public.x25519_public, public.binding_signature)


def signed_grant(
    ledger: Ledger,
    patient: ActorKeys,
    grantee: ActorKeys,
    *,
    nonce: int | None = None,
    issued: datetime = T0,
    signer: ActorKeys | None = None,
) -> tuple[Grant, GrantEntry]:
    grant = Grant.new(patient.address, grantee.address, "TREAT", CAT.mask(["laboratory"]), T0 + timedelta(days=30), CAT)
    nonce = ledger.next_nonce(patient.address) if nonce is None else nonce
    message = GrantMessage(grant.grant_id, grant.commitment(), nonce, int(issued.timestamp()))
    signature = sign(signer or patient, DOMAIN, message)
    return grant, GrantEntry(grant.grant_id, patient.address, grant.commitment(), nonce, message.issued_at, signature)


def signed_revoke(
    ledger: Ledger, patient: ActorKeys, grant_id: bytes, *, signer: ActorKeys | None = None, nonce: int | None = None
) -> RevokeEntry:
    nonce = ledger.next_nonce(patient.address) if nonce is None else nonce
    message = RevokeMessage(grant_id, nonce, int(T0.timestamp()))
    return RevokeEntry(grant_id, patient.address, nonce, message.issued_at, sign(signer or patient, DOMAIN, message))


# -- appends --------------------------------------------------------------------------------------
def test_grant_appends_a_leaf_and_a_root(ledger: Ledger, alice: ActorKeys, doctor: ActorKeys) -> None:
    grant, entry = signed_grant(ledger, alice, doctor)
    (appended,) = ledger.append([entry])
    assert appended.index == 3
    assert appended.leaf_index == 0
    assert appended.entry.time == int(T0.timestamp())
    expected = GrantTree()
    expected.append(grant.commitment())
    assert ledger.grant_root() == expected.root
    assert ledger.next_nonce(alice.address) == 1
    size, root, path = ledger.grant_path(0)
    assert (size, root) == (4, expected.root)
    assert verify_path(grant.commitment(), path, root)


def test_revocation_zeroes_the_leaf(ledger: Ledger, alice: ActorKeys, doctor: ActorKeys) -> None:
    grant, entry = signed_grant(ledger, alice, doctor)
    ledger.append([entry])
    before = ledger.grant_root()
    ledger.append([signed_revoke(ledger, alice, grant.grant_id)])
    assert ledger.grant_root() != before
    assert ledger.grant_root() == GrantTree(size=1).root  # one leaf, now zero
    record = ledger.grant(grant.grant_id)
    assert record is not None
    assert record.revoked
    _, root, path = ledger.grant_path(0)
    assert not verify_path(grant.commitment(), path, root)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("forged signature", "bad-signature"),
        ("wrong signer", "bad-signature"),
        ("replayed nonce", "replay"),
        ("future nonce", "replay"),
        ("stale", "stale"),
        ("unregistered patient", "unregistered"),
        ("clinician as patient", "unregistered"),
    ],
)
def test_grant_refusals(
    ledger: Ledger, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys, case: str, reason: str
) -> None:
    if case == "replayed nonce":
        ledger.append([signed_grant(ledger, alice, doctor)[1]])
        _, entry = signed_grant(ledger, alice, doctor, nonce=0)
    elif case == "future nonce":
        _, entry = signed_grant(ledger, alice, doctor, nonce=5)
    elif case == "forged signature":
        _, entry = signed_grant(ledger, alice, doctor)
        entry = dataclasses.replace(entry, signature=entry.signature[:10] + bytes(10) + entry.signature[20:])
    elif case == "wrong signer":
        _, entry = signed_grant(ledger, alice, doctor, signer=bob)
    elif case == "stale":
        _, entry = signed_grant(ledger, alice, doctor, issued=T0 - timedelta(hours=1))
    elif case == "unregistered patient":
        _, entry = signed_grant(ledger, ActorKeys.generate(Role.PATIENT), doctor)
    else:
        _, entry = signed_grant(ledger, doctor, alice)
    size = ledger.size()
    with pytest.raises(AppendRefused) as refused:
        ledger.append([entry])
    assert refused.value.reason == reason
    assert ledger.size() == size


def test_a_replayed_grant_entry_is_refused(ledger: Ledger, alice: ActorKeys, doctor: ActorKeys) -> None:
    _, entry = signed_grant(ledger, alice, doctor)
    ledger.append([entry])
    with pytest.raises(AppendRefused) as refused:
        ledger.append([entry])
    assert refused.value.reason == "duplicate"


def test_revocation_refusals(ledger: Ledger, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> None:
    grant, entry = signed_grant(ledger, alice, doctor)
    ledger.append([entry])
    with pytest.raises(AppendRefused) as refused:
        ledger.append([signed_revoke(ledger, alice, bytes(32))])
    assert refused.value.reason == "unknown-grant"
    # Bob signs a revocation of Alice's grant, as himself.
    with pytest.raises(AppendRefused) as refused:
        ledger.append([signed_revoke(ledger, bob, grant.grant_id)])
    assert refused.value.reason == "not-your-grant"
    # Bob signs it claiming to be Alice.
    forged = signed_revoke(ledger, alice, grant.grant_id, signer=bob)
    with pytest.raises(AppendRefused) as refused:
        ledger.append([forged])
    assert refused.value.reason == "bad-signature"
    ledger.append([signed_revoke(ledger, alice, grant.grant_id)])
    with pytest.raises(AppendRefused) as refused:
        ledger.append([signed_revoke(ledger, alice, grant.grant_id)])
    assert refused.value.reason == "already-revoked"


def test_a_refused_entry_rolls_back_its_whole_batch(ledger: Ledger, alice: ActorKeys, doctor: ActorKeys) -> None:
    _, good = signed_grant(ledger, alice, doctor)
    _, bad = signed_grant(ledger, alice, doctor, nonce=7)
    size, root = ledger.size(), ledger.root()
    with pytest.raises(AppendRefused):
        ledger.append([good, bad])
    assert (ledger.size(), ledger.root()) == (size, root)
    assert ledger.next_nonce(alice.address) == 0
    ledger.append([good])  # and the good one still goes in afterwards
    assert ledger.size() == size + 1


def test_timestamps_never_go_back(ledger: Ledger, clock: Clock, alice: ActorKeys, doctor: ActorKeys) -> None:
    ledger.append([signed_grant(ledger, alice, doctor)[1]])
    clock.now = T0 - timedelta(minutes=5)  # the server's clock steps back
    _, entry = signed_grant(ledger, alice, doctor, issued=clock.now)
    (appended,) = ledger.append([entry])
    assert appended.entry.time == int(T0.timestamp())


def test_duplicate_key_binding_is_refused(ledger: Ledger, alice: ActorKeys) -> None:
    with pytest.raises(AppendRefused) as refused:
        ledger.append([key_entry(alice)])
    assert refused.value.reason == "duplicate"


# -- proofs, checkpoints, replay ------------------------------------------------------------------
def test_checkpoint_proofs_and_replay(
    ledger: Ledger, signer: Signer, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys
) -> None:
    grants = []
    for patient in (alice, bob, alice):
        grant, entry = signed_grant(ledger, patient, doctor)
        ledger.append([entry])
        grants.append(grant)
    first = verify_checkpoint(ledger.checkpoint(), signer.verifier)
    ledger.append([signed_revoke(ledger, alice, grants[0].grant_id)])
    second = verify_checkpoint(ledger.checkpoint(), signer.verifier)
    assert (first.size, second.size) == (6, 7)
    merkle.verify_consistency(6, 7, first.root_hash, second.root_hash, ledger.consistency_proof(6, 7))
    for index, data in enumerate(ledger.backend.entry_bytes(0, 7)):
        merkle.verify_inclusion(merkle.hash_leaf(data), index, 7, ledger.inclusion_proof(index, 7), second.root_hash)
    # Anyone replaying the public GRANT/REVOKE events gets the same roots at every synced size.
    history = ledger.grant_roots()
    assert [n for n, _ in history] == [6, 7]
    for size, root in history:
        tree, leaf_of = GrantTree(), {}
        for data in ledger.backend.entry_bytes(0, size):
            entry = decode_entry(data)
            if isinstance(entry, GrantEntry):
                leaf_of[entry.grant_id] = tree.append(entry.commitment)
            elif isinstance(entry, RevokeEntry):
                tree.revoke(leaf_of[entry.grant_id])
        assert tree.root == root
    assert second.grant_root == history[-1][1]


def test_the_audit_is_clean_then_names_an_altered_entry(
    ledger: Ledger, signer: Signer, alice: ActorKeys, doctor: ActorKeys
) -> None:
    for _ in range(4):
        ledger.append([signed_grant(ledger, alice, doctor)[1]])
    first = audit_ledger(_Source(ledger), signer.verifier)
    assert first.clean
    assert first.counts == {"KEY": 3, "GRANT": 4}
    # Someone with database access edits entry 5 (a commitment) behind the ledger's back.
    assert isinstance(ledger.backend, SqlLedgerBackend)
    with ledger.backend.engine.begin() as conn:
        data = bytes(conn.execute(text("SELECT data FROM ledger_entry WHERE idx = 5")).scalar_one())
        tampered = data[:60] + bytes([data[60] ^ 1]) + data[61:]
        conn.execute(text("UPDATE ledger_entry SET data = :data WHERE idx = 5"), {"data": tampered})
    second = audit_ledger(_Source(ledger), signer.verifier, previous=first.checkpoint)
    assert second.altered == [5]
    assert not second.clean


def test_a_forked_checkpoint_is_detected(
    ledger: Ledger, signer: Signer, alice: ActorKeys, doctor: ActorKeys, tmp_path: Path, clock: Clock, bob: ActorKeys
) -> None:
    ledger.append([signed_grant(ledger, alice, doctor)[1]])
    seen = audit_ledger(_Source(ledger), signer.verifier).checkpoint
    # The operator, with the same key, shows another history of the same size to someone else.
    fork = Ledger(
        SqlLedgerBackend(f"sqlite:///{tmp_path}/fork.db"), signer, origin=signer.name, domain=DOMAIN, clock=clock
    )
    fork.append([key_entry(k) for k in (alice, bob, doctor)])
    fork.append([signed_grant(fork, alice, doctor)[1]])
    fork.append([signed_grant(fork, alice, doctor)[1]])
    with pytest.raises(ForkError) as forked:
        audit_ledger(_Source(fork), signer.verifier, previous=seen)
    assert isinstance(forked.value.old, Checkpoint)
    assert forked.value.old == seen


class _Source:
    """The audit's view of a ledger, here in-process (the CLI uses the HTTP API)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def checkpoint(self) -> str:
        return self.ledger.checkpoint()

    def entries(self, start: int, end: int) -> list[bytes]:
        return self.ledger.backend.entry_bytes(start, end)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self.ledger.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return self.ledger.consistency_proof(old_size, new_size)
