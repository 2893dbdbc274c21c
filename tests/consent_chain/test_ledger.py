"""The consent ledger on each backend: append rules, atomicity, proofs, checkpoints and the audit.

Every test runs on the SQL backend (on SQLite, and on PostgreSQL when ``PCHR_TEST_POSTGRES_URL`` names a server:
tests/storage/databases.py), on the EVM backend over an in-process eth-tester chain, and on the EVM backend over a
real Hardhat node (marked ``integration``); and the two kinds of backend must build the same log and grant roots
from the same events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from consent_chain import merkle
from consent_chain.audit import audit_ledger
from consent_chain.backends._evm_codec import LoggedEntry
from consent_chain.backends.evm import EvmLedgerBackend
from consent_chain.backends.sql import SqlLedgerBackend
from consent_chain.catalogue import read_catalogue
from consent_chain.eip712 import Domain, GrantMessage, RevokeMessage, sign
from consent_chain.entries import AttestEntry, Entry, GrantEntry, KeyEntry, RevokeEntry, decode_entry
from consent_chain.errors import AppendRefused, ForkError
from consent_chain.grants import Grant
from consent_chain.ledger import Appended, Ledger, LedgerBackend
from consent_chain.note import Checkpoint, Signer, verify_checkpoint
from consent_chain.state_tree import GrantTree, verify_path
from ehr.identity import ActorKeys, Role
from tests.consent_chain.conftest import EvmChain
from tests.storage.databases import DATABASES, NO_POSTGRES, POSTGRES_URL, fresh_postgres_database
from zk.poseidon import BN254_R

DOMAIN = Domain(chain_id=31337)  # the SQL ledger's; an EVM ledger's is its chain's and contract's
CAT = read_catalogue()
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = int(T0.timestamp())


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer() -> Signer:
    return Signer.generate("pchr.test/ledger")


BackendFactory = Callable[[], LedgerBackend]


@pytest.fixture(params=[*DATABASES, "evm", pytest.param("hardhat", marks=pytest.mark.integration)])
def new_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendFactory]:
    """Makes empty ledger backends of one kind: SQL on SQLite or PostgreSQL (tests/storage/databases.py), or EVM on
    eth-tester or a Hardhat node; the first on the test's database or chain, then more beside it."""
    made: list[LedgerBackend] = []
    with ExitStack() as cleanup:

        def make() -> LedgerBackend:
            backend: LedgerBackend
            if request.param == "sqlite":
                backend = SqlLedgerBackend(f"sqlite:///{tmp_path}/ledger-{len(made)}.db")
            elif request.param == "postgresql":
                if POSTGRES_URL is None:
                    pytest.skip(NO_POSTGRES)
                backend = SqlLedgerBackend(cleanup.enter_context(fresh_postgres_database()))
            else:
                chain: EvmChain = request.getfixturevalue("evm_chain" if request.param == "evm" else "hardhat_chain")
                backend = chain.fresh() if not made else chain.deploy()
            if isinstance(backend, SqlLedgerBackend):
                cleanup.callback(backend.engine.dispose)  # before its database is dropped
            made.append(backend)
            return backend

        yield make


def new_ledger(backend: LedgerBackend, signer: Signer, clock: Clock) -> Ledger:
    domain = backend.domain if isinstance(backend, EvmLedgerBackend) else DOMAIN
    return Ledger(backend, signer, origin=signer.name, domain=domain, clock=clock)


@pytest.fixture
def ledger(
    new_backend: BackendFactory, signer: Signer, clock: Clock, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys
) -> Ledger:
    ledger = new_ledger(new_backend(), signer, clock)
    ledger.append([key_entry(k) for k in (alice, bob, doctor)])
    return ledger


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
    signature = sign(signer or patient, ledger.domain, message)
    return grant, GrantEntry(grant.grant_id, patient.address, grant.commitment(), nonce, message.issued_at, signature)


def signed_revoke(
    ledger: Ledger, patient: ActorKeys, grant_id: bytes, *, signer: ActorKeys | None = None, nonce: int | None = None
) -> RevokeEntry:
    nonce = ledger.next_nonce(patient.address) if nonce is None else nonce
    message = RevokeMessage(grant_id, nonce, int(T0.timestamp()))
    return RevokeEntry(
        grant_id, patient.address, nonce, message.issued_at, sign(signer or patient, ledger.domain, message)
    )


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


@pytest.mark.parametrize("commitment", [0, BN254_R, BN254_R + 1, 2**256 - 1])
def test_a_commitment_the_grant_tree_cannot_hold_is_refused(
    ledger: Ledger, signer: Signer, alice: ActorKeys, commitment: int
) -> None:
    """A patient-signed grant whose commitment is no leaf (0, or not below r) would stop every later sync of the
    grant tree, so every checkpoint and every proof of consent: it is refused, and the ledger goes on."""
    message = GrantMessage(bytes(range(32)), commitment, 0, int(T0.timestamp()))
    entry = GrantEntry(
        message.grant_id, alice.address, commitment, 0, message.issued_at, sign(alice, ledger.domain, message)
    )
    with pytest.raises(AppendRefused, match=r"not a non-zero field element \(0 < c < r\)") as refused:
        ledger.append([entry])
    assert refused.value.reason == "bad-commitment"
    assert verify_checkpoint(ledger.checkpoint(), signer.verifier).size == 3
    assert ledger.known_roots(300)[1] == {GrantTree().root: None}


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


def test_attest_entries_are_found_by_request_hash(ledger: Ledger) -> None:
    """The model service scores a request once: it asks the ledger whether the request hash is attested already."""
    assert ledger.attestation_entry(7) is None
    first = AttestEntry(request_hash=7, model_id=11, grant_root=13, proof=bytes(8))
    ledger.append([first, AttestEntry(request_hash=2**256 - 1, model_id=11, grant_root=13, proof=b"")])
    ledger.append([dataclasses.replace(first, proof=bytes(9))])  # the ledger's rules do not refuse a second one
    assert [ledger.attestation_entry(h) for h in (7, 2**256 - 1, 8)] == [3, 4, None]


def test_a_ledger_from_before_the_request_hash_index_is_indexed_when_opened(
    tmp_path: Path, signer: Signer, clock: Clock
) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    backend = SqlLedgerBackend(url)
    Ledger(backend, signer, origin=signer.name, domain=DOMAIN, clock=clock).append(
        [AttestEntry(request_hash=n, model_id=11, grant_root=13, proof=b"") for n in (5, 6, 5)]
    )
    with backend.engine.begin() as conn:  # as pchr kept it before the index
        conn.execute(text("DROP TABLE ledger_attest"))
    backend.engine.dispose()
    reopened = SqlLedgerBackend(url)
    assert [reopened.attestation_entry(h) for h in (5, 6, 7)] == [0, 1, None]
    reopened.append([AttestEntry(request_hash=7, model_id=11, grant_root=13, proof=b"")], lambda view, e: e)
    assert reopened.attestation_entry(7) == 3
    reopened.engine.dispose()
    again = SqlLedgerBackend(url)  # opened again: indexed once, not twice
    assert [again.attestation_entry(h) for h in (5, 6, 7)] == [0, 1, 3]
    again.engine.dispose()


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
    first = audit_ledger(_Source(ledger), signer.verifier, domain=ledger.domain)
    assert first.clean
    assert first.counts == {"KEY": 3, "GRANT": 4}
    # Someone with access to the server's storage edits entry 5 (a commitment) behind the ledger's back.
    (data,) = ledger.backend.entry_bytes(5, 6)
    tamper(ledger.backend, 5, data[:60] + bytes([data[60] ^ 1]) + data[61:])
    second = audit_ledger(_Source(ledger), signer.verifier, domain=ledger.domain, previous=first.checkpoint)
    assert second.altered == [5]
    assert not second.clean
    # The altered commitment is no longer what Alice signed, so the replayed rules name the entry too; without it,
    # Alice's next grant does not have her next nonce.
    assert [(v.index, v.rule) for v in second.violations] == [(5, "bad-signature"), (6, "replay")]


# An operator that writes its own storage past the rules (forge below): each case makes one entry the rules refuse,
# or stamps one as they never would, and the audit must name it (its index and the rule) although the log is
# consistent and every checkpoint is honestly signed over it.
ForgeCase = Callable[[Ledger, ActorKeys, ActorKeys, ActorKeys], Entry]


def _junk_signature(ledger: Ledger, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    _, entry = signed_grant(ledger, alice, doctor, nonce=1)
    return dataclasses.replace(entry, signature=b"\x11" * 64 + b"\x1b", time=NOW)


def _revoked_by_another_patient(ledger: Ledger, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    (grant,) = [e for e in ledger.entries(0, ledger.size()) if isinstance(e, GrantEntry)]
    return dataclasses.replace(signed_revoke(ledger, bob, grant.grant_id, nonce=0), time=NOW)


def _replayed_nonce(ledger: Ledger, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    _, entry = signed_grant(ledger, alice, doctor, nonce=0)  # a new grant, signed by Alice, but her nonce 0 is used
    return dataclasses.replace(entry, time=NOW)


def _time_went_back(ledger: Ledger, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    _, entry = signed_grant(ledger, alice, doctor, nonce=1, issued=T0 - timedelta(minutes=2))
    return dataclasses.replace(entry, time=NOW - 120)


def _stale(ledger: Ledger, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    _, entry = signed_grant(ledger, alice, doctor, nonce=1, issued=T0 - timedelta(hours=1))
    return dataclasses.replace(entry, time=NOW)


@pytest.mark.parametrize(
    ("make", "rule", "detail", "refused"),
    [
        (_junk_signature, "bad-signature", "signature", True),
        (_revoked_by_another_patient, "not-your-grant", "only the grant's own patient may revoke it", True),
        (_replayed_nonce, "replay", "nonce 0 is not the patient's next (1)", True),
        (_stale, "stale", "issuedAt is more than 600 s from the ledger's clock", True),
        (_time_went_back, "time-went-back", f"stamped {NOW - 120}, before entry 3's {NOW}", False),
    ],
    ids=["forged grant", "revocation by another patient", "replayed nonce", "stale", "time went back"],
)
def test_the_audit_replays_the_append_rules_and_names_what_they_refuse(
    ledger: Ledger,
    signer: Signer,
    alice: ActorKeys,
    bob: ActorKeys,
    doctor: ActorKeys,
    make: ForgeCase,
    rule: str,
    detail: str,
    refused: bool,
) -> None:
    ledger.append([signed_grant(ledger, alice, doctor)[1]])
    assert audit_ledger(_Source(ledger), signer.verifier, domain=ledger.domain).clean
    forged = make(ledger, alice, bob, doctor)
    forge(ledger.backend, forged)
    report = audit_ledger(_Source(ledger), signer.verifier, domain=ledger.domain)
    assert report.checkpoint.size == 5
    assert report.altered == []  # the log is what the operator signed: only the rules catch the entry
    kind = type(forged).__name__.removesuffix("Entry").upper()
    (violation,) = report.violations
    assert (violation.index, violation.entry_type, violation.rule, violation.refused) == (4, kind, rule, refused)
    assert str(violation).startswith(f"entry 4 ({kind}): {rule}: ")
    assert detail in str(violation)
    assert not report.clean
    # A refused entry is left out of the auditor's grant tree, which then differs from the one the operator signed;
    # an entry stamped out of order still counts (its patient did sign it).
    mismatch = "replaying the GRANT and REVOKE entries the rules accept does not give the signed grant root"
    assert report.problems == [str(violation), mismatch] if refused else [str(violation)]


def test_an_honest_ledger_audits_clean_under_the_replayed_rules(
    ledger: Ledger, signer: Signer, clock: Clock, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys
) -> None:
    grants = []
    for patient in (alice, bob, alice, bob):
        clock.now += timedelta(seconds=30)
        grant, entry = signed_grant(ledger, patient, doctor, issued=clock.now)
        ledger.append([entry])
        grants.append(grant)
    clock.now += timedelta(minutes=5)
    ledger.append([signed_revoke(ledger, alice, grants[0].grant_id), signed_revoke(ledger, bob, grants[3].grant_id)])
    ledger.append([AttestEntry(request_hash=7, model_id=11, grant_root=ledger.grant_root(), proof=bytes(64))])
    report = audit_ledger(_Source(ledger), signer.verifier, domain=ledger.domain)
    assert report.clean, report.problems
    assert report.counts == {"KEY": 3, "GRANT": 4, "REVOKE": 2, "ATTEST": 1}
    # Audited in another ledger's domain, no patient's signature holds (key bindings are not domain-bound).
    other = audit_ledger(_Source(ledger), signer.verifier, domain=dataclasses.replace(ledger.domain, chain_id=1))
    assert [(v.index, v.rule) for v in other.violations] == [(i, "bad-signature") for i in range(3, 9)]


def test_a_forked_checkpoint_is_detected(
    ledger: Ledger,
    new_backend: BackendFactory,
    signer: Signer,
    alice: ActorKeys,
    doctor: ActorKeys,
    clock: Clock,
    bob: ActorKeys,
) -> None:
    ledger.append([signed_grant(ledger, alice, doctor)[1]])
    seen = audit_ledger(_Source(ledger), signer.verifier, domain=ledger.domain).checkpoint
    # The operator, with the same key, shows another history of the same size to someone else.
    fork = new_ledger(new_backend(), signer, clock)
    fork.append([key_entry(k) for k in (alice, bob, doctor)])
    fork.append([signed_grant(fork, alice, doctor)[1]])
    fork.append([signed_grant(fork, alice, doctor)[1]])
    with pytest.raises(ForkError) as forked:
        audit_ledger(_Source(fork), signer.verifier, domain=fork.domain, previous=seen)
    assert isinstance(forked.value.old, Checkpoint)
    assert forked.value.old == seen


def test_an_older_checkpoint_is_reported_as_a_rollback(
    ledger: Ledger, signer: Signer, alice: ActorKeys, doctor: ActorKeys
) -> None:
    older = ledger.checkpoint()  # 3 KEY entries, signed
    ledger.append([signed_grant(ledger, alice, doctor)[1]])
    newer = audit_ledger(_Source(ledger), signer.verifier, domain=ledger.domain).checkpoint
    # The operator serves the earlier note again (to an auditor who has seen the newer one): it is consistent with
    # the newer log, but going back is how an operator would hide what came after, a revocation say.
    rolled_back = audit_ledger(_OlderCheckpoint(ledger, older), signer.verifier, domain=ledger.domain, previous=newer)
    assert not rolled_back.clean
    assert rolled_back.problems == [
        "the ledger served a checkpoint of 3 entries, older than the 4 already verified: a rollback (the newer "
        "checkpoint stays the one later histories must extend)"
    ]


def tamper(backend: LedgerBackend, index: int, data: bytes) -> None:
    """Overwrite a stored entry where the server reads it from: its database, or its mirror of the chain."""
    if isinstance(backend, SqlLedgerBackend):
        with backend.engine.begin() as conn:
            conn.execute(text("UPDATE ledger_entry SET data = :data WHERE idx = :idx"), {"data": data, "idx": index})
    else:
        assert isinstance(backend, EvmLedgerBackend)
        backend._mirror.entries[index] = data  # the chain itself cannot be edited; a server's copy of it can


def forge(backend: LedgerBackend, entry: Entry) -> None:
    """Append ``entry`` as it is, stamped time and all, past the append rules: what an operator that writes its own
    database can do, or its copy of the chain (the contract refuses such an entry; the copy the server serves
    proofs and checkpoints from is another matter)."""
    if isinstance(backend, SqlLedgerBackend):
        backend.append([entry], lambda view, e: e)
    else:
        assert isinstance(backend, EvmLedgerBackend)
        backend._mirror.apply(LoggedEntry(backend._mirror.size, entry))


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


class _OlderCheckpoint(_Source):
    """The same ledger, but its operator serves a checkpoint note it signed earlier."""

    def __init__(self, ledger: Ledger, note: str) -> None:
        super().__init__(ledger)
        self.note = note

    def checkpoint(self) -> str:
        return self.note


# -- the backends agree --------------------------------------------------------------------------------
def test_sql_and_evm_build_the_same_log_and_grant_roots(
    request: pytest.FixtureRequest,
    evm_chain: EvmChain,
    database_url: str,
    signer: Signer,
    clock: Clock,
    alice: ActorKeys,
    bob: ActorKeys,
) -> None:
    doctor = ActorKeys.generate(Role.CLINICIAN)
    evm = new_ledger(evm_chain.fresh(), signer, clock)
    # The SQL ledger is configured with the contract's EIP-712 domain, so one signature is valid on both.
    sql_backend = SqlLedgerBackend(database_url)
    request.addfinalizer(sql_backend.engine.dispose)
    sql = Ledger(sql_backend, signer, origin=signer.name, domain=evm.domain, clock=clock)
    keys: list[Entry] = [key_entry(k) for k in (alice, bob, doctor)]
    g1, e1 = signed_grant(evm, alice, doctor)
    g2, e2 = signed_grant(evm, bob, doctor)
    g3, e3 = signed_grant(evm, alice, doctor, nonce=1)
    g4, e4 = signed_grant(evm, bob, doctor, nonce=1)
    g5, e5 = signed_grant(evm, alice, doctor, nonce=3)
    attest = AttestEntry(request_hash=7, model_id=11, grant_root=13, proof=bytes(range(200)))
    checkpoint = None
    steps: list[list[Entry] | None] = [
        keys,
        [e1],
        [e2, e3],
        checkpoint,
        [signed_revoke(evm, alice, g1.grant_id, nonce=2)],
        [e4, signed_revoke(evm, bob, g4.grant_id, nonce=2), e5],  # a grant revoked in the batch that adds it
        [attest],
        checkpoint,
        [signed_revoke(evm, alice, g3.grant_id, nonce=4), signed_revoke(evm, bob, g2.grant_id, nonce=3)],
    ]
    for batch in steps:
        clock.now += timedelta(seconds=30)
        if batch is None:
            assert evm.checkpoint() == sql.checkpoint()  # same size, log root and grant root: the same signed note
            continue
        appended: list[list[Appended]] = [ledger.append(batch) for ledger in (sql, evm)]
        assert appended[0] == appended[1]
    size = sql.size()
    assert evm.size() == size == 13
    assert sql.backend.entry_bytes(0, size) == evm.backend.entry_bytes(0, size)
    for n in range(size + 1):
        assert sql.root(n) == evm.root(n)
    assert sql.grant_root() == evm.grant_root()
    assert sql.grant_roots() == evm.grant_roots()
    assert [n for n, _ in evm.grant_roots()] == [6, 11, 13]
    for grant in (g1, g2, g3, g4, g5):
        assert sql.grant(grant.grant_id) == evm.grant(grant.grant_id)
    assert sql.grant_path(4) == evm.grant_path(4)  # g5's leaf, the only one still active
    assert verify_path(g5.commitment(), evm.grant_path(4)[2], evm.grant_root())
