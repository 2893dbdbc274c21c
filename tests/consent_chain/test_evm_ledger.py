"""The EVM backend and the ConsentLedger contract: the contract's own verdicts, its events, its gas, the mirror.

The shared suite (test_ledger.py) sees the contract only through the backend, which checks every entry against
its mirror before it sends anything. Here entries go to the contract unchecked (``EvmLedgerBackend.submit``), as a
racing appender's would, to show that the chain enforces the same rules with the same reasons on its own; the
receipt's status shows that the refusal came from the chain. Tests that need no real node run on eth-tester; the
ones about the JSON-RPC path run on the Hardhat node too (marked ``integration``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from Crypto.Hash import keccak
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct

from consent_chain.backends._evm_codec import (
    APPEND_SELECTOR,
    EVENT_SIGNATURES,
    LoggedEntry,
    decode_event,
    decode_revert_reason,
)
from consent_chain.backends.evm import EvmLedgerBackend, _Mirror, _Node, compile_contract, fund_from_node
from consent_chain.catalogue import read_catalogue
from consent_chain.eip712 import SECP256K1_N, GrantMessage, RevokeMessage, sign
from consent_chain.entries import AttestEntry, Entry, GrantEntry, KeyEntry, RevokeEntry
from consent_chain.errors import AppendRefused, ChainError, EntryError
from consent_chain.grants import Grant
from consent_chain.ledger import Ledger
from consent_chain.note import Signer
from ehr.identity import ActorKeys, Role, binding_message
from tests.consent_chain.conftest import EvmChain
from zk.poseidon import BN254_R

CAT = read_catalogue()
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = int(T0.timestamp())


def at_t0() -> datetime:
    return T0


@pytest.fixture(params=["evm", pytest.param("hardhat", marks=pytest.mark.integration)])
def chain(request: pytest.FixtureRequest) -> EvmChain:
    chain: EvmChain = request.getfixturevalue("evm_chain" if request.param == "evm" else "hardhat_chain")
    return chain


@pytest.fixture
def backend(chain: EvmChain, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> EvmLedgerBackend:
    backend = chain.fresh()
    backend.submit([key_entry(k) for k in (alice, bob, doctor)], NOW)
    return backend


def key_entry(keys: ActorKeys) -> KeyEntry:
    public = keys.public()
    return KeyEntry(public.address, public.role, public.x25519_public, public.binding_signature)


def grant_entry(
    backend: EvmLedgerBackend,
    patient: ActorKeys,
    nonce: int,
    *,
    issued_at: int = NOW,
    signer: ActorKeys | None = None,
    grantee: str = "0x00000000000000000000000000000000000000d0",
) -> GrantEntry:
    grant = Grant.new(patient.address, grantee, "TREAT", CAT.mask(["laboratory"]), T0 + timedelta(days=30), CAT)
    message = GrantMessage(grant.grant_id, grant.commitment(), nonce, issued_at)
    signature = sign(signer or patient, backend.domain, message)
    return GrantEntry(grant.grant_id, patient.address, grant.commitment(), nonce, issued_at, signature)


def revoke_entry(
    backend: EvmLedgerBackend, patient: ActorKeys, grant_id: bytes, nonce: int, *, signer: ActorKeys | None = None
) -> RevokeEntry:
    message = RevokeMessage(grant_id, nonce, NOW)
    return RevokeEntry(grant_id, patient.address, nonce, NOW, sign(signer or patient, backend.domain, message))


def contract(chain: EvmChain, backend: EvmLedgerBackend) -> Any:
    """The contract's view functions, read straight from the chain."""
    return chain.w3.eth.contract(address=backend.address, abi=compile_contract().abi).functions


def high_s(signature: bytes) -> bytes:
    """The other valid encoding of the same ECDSA signature (s -> n - s, v flipped): refused by EIP-2."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([signature[64] ^ 1])


Case = Callable[[EvmLedgerBackend, ActorKeys, ActorKeys, ActorKeys], Entry]
CASES: dict[str, tuple[Case, str]] = {}


def case(name: str, reason: str) -> Callable[[Case], Case]:
    """Register a refused entry: ``make(backend, alice, bob, doctor)`` builds it, ``reason`` is the refusal."""

    def register(make: Case) -> Case:
        CASES[name] = (make, reason)
        return make

    return register


def _granted(b: EvmLedgerBackend, patient: ActorKeys) -> GrantEntry:
    entry = grant_entry(b, patient, 0)
    b.submit([entry], NOW)
    return entry


@case("forged signature", "bad-signature")
def _forged(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    entry = grant_entry(b, alice, 0)
    return dataclasses.replace(entry, signature=bytes(10) + entry.signature[10:])


@case("grant signed by someone else", "bad-signature")
def _wrong_signer(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return grant_entry(b, alice, 0, signer=bob)


@case("high-s signature", "bad-signature")
def _high_s(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    entry = grant_entry(b, alice, 0)
    return dataclasses.replace(entry, signature=high_s(entry.signature))


@case("v not 27 or 28", "bad-signature")
def _bad_v(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    entry = grant_entry(b, alice, 0)
    return dataclasses.replace(entry, signature=entry.signature[:64] + bytes([29]))


def _grant_committing_to(b: EvmLedgerBackend, patient: ActorKeys, commitment: int) -> GrantEntry:
    """A grant the patient did sign, over a commitment no grant tree can hold."""
    message = GrantMessage(bytes(range(32)), commitment, 0, NOW)
    return GrantEntry(message.grant_id, patient.address, commitment, 0, NOW, sign(patient, b.domain, message))


@case("commitment not below the field's order", "bad-commitment")
def _commitment_r(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return _grant_committing_to(b, alice, BN254_R)


@case("commitment zero", "bad-commitment")
def _commitment_zero(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return _grant_committing_to(b, alice, 0)


@case("unregistered patient", "unregistered")
def _unregistered(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return grant_entry(b, ActorKeys.generate(Role.PATIENT), 0)


@case("clinician as patient", "unregistered")
def _clinician(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return grant_entry(b, doctor, 0)


@case("replayed nonce", "replay")
def _replayed(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    _granted(b, alice)
    return grant_entry(b, alice, 0)


@case("future nonce", "replay")
def _future(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return grant_entry(b, alice, 5)


@case("issued an hour early", "stale")
def _early(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return grant_entry(b, alice, 0, issued_at=NOW - 3600)


@case("issued an hour late", "stale")
def _late(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return grant_entry(b, alice, 0, issued_at=NOW + 3600)


@case("grant id reused", "duplicate")
def _reused_id(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    """A new, correctly signed grant (nonce 1) that reuses the id of the grant before it."""
    entry = _granted(b, alice)
    message = GrantMessage(entry.grant_id, entry.commitment, 1, NOW)
    return GrantEntry(entry.grant_id, alice.address, entry.commitment, 1, NOW, sign(alice, b.domain, message))


@case("second key binding", "duplicate")
def _second_key(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return key_entry(alice)


@case("key binding signed by another key", "bad-signature")
def _stolen_binding(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    carol = ActorKeys.generate(Role.PATIENT)
    return dataclasses.replace(key_entry(carol), binding_signature=key_entry(bob).binding_signature)


@case("key binding with another role", "bad-signature")
def _other_role(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return dataclasses.replace(key_entry(ActorKeys.generate(Role.CLINICIAN)), role=Role.AUDITOR)


@case("key binding over the lower-case address", "bad-signature")
def _lowercase_binding(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    carol = ActorKeys.generate(Role.PATIENT)
    checksummed = binding_message(carol.address, Role.PATIENT, carol.x25519_public)
    text = checksummed.replace(carol.address, carol.address.lower())
    signed = Account.sign_message(encode_defunct(text=text), private_key=carol.identity_secret())
    return dataclasses.replace(key_entry(carol), binding_signature=bytes(signed.signature))


@case("revocation of an unknown grant", "unknown-grant")
def _unknown_grant(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return revoke_entry(b, alice, bytes(32), 0)


@case("revocation of someone else's grant", "not-your-grant")
def _not_yours(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return revoke_entry(b, bob, _granted(b, alice).grant_id, 0)


@case("revocation signed by someone else", "bad-signature")
def _forged_revocation(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    return revoke_entry(b, alice, _granted(b, alice).grant_id, 1, signer=bob)


@case("revocation of a revoked grant", "already-revoked")
def _already_revoked(b: EvmLedgerBackend, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys) -> Entry:
    entry = _granted(b, alice)
    b.submit([revoke_entry(b, alice, entry.grant_id, 1)], NOW)
    return revoke_entry(b, alice, entry.grant_id, 2)


@pytest.mark.parametrize("case", list(CASES))
def test_the_contract_refuses_what_the_rules_refuse(
    backend: EvmLedgerBackend, chain: EvmChain, alice: ActorKeys, bob: ActorKeys, doctor: ActorKeys, case: str
) -> None:
    make, reason = CASES[case]
    entry = make(backend, alice, bob, doctor)
    size = backend.size()
    # The rules, run by the backend against its mirror before sending: nothing reaches the chain.
    ledger = Ledger(
        backend, Signer.generate("pchr.test/evm"), origin="pchr.test/evm", domain=backend.domain, clock=at_t0
    )
    receipt = backend.last_receipt
    with pytest.raises(AppendRefused) as by_rules:
        ledger.append([entry])
    assert by_rules.value.reason == reason
    assert backend.last_receipt is receipt
    # The contract, sent the entry unchecked: mined, reverted, and the same reason read back from the chain.
    with pytest.raises(AppendRefused) as by_chain:
        backend.submit([entry], NOW)
    assert by_chain.value.reason == reason
    assert backend.last_receipt.status == 0
    assert backend.size() == size == contract(chain, backend).size().call()


def test_a_refused_batch_changes_nothing_on_chain(backend: EvmLedgerBackend, chain: EvmChain, alice: ActorKeys) -> None:
    good, bad = grant_entry(backend, alice, 0), grant_entry(backend, alice, 7)
    size = backend.size()
    with pytest.raises(AppendRefused) as refused:
        backend.submit([good, bad], NOW)
    assert refused.value.reason == "replay"
    view = contract(chain, backend)
    assert (view.size().call(), view.nextNonce(alice.address).call()) == (size, 0)
    assert view.grantOf(good.grant_id).call() == ["0x0000000000000000000000000000000000000000", False]
    (appended,) = backend.submit([good], NOW)
    assert (appended.index, appended.leaf_index) == (size, 0)
    assert view.grantOf(good.grant_id).call() == [alice.address, False]


def test_a_second_writer_and_a_reader_follow_the_chain(
    backend: EvmLedgerBackend, chain: EvmChain, alice: ActorKeys, bob: ActorKeys
) -> None:
    # Another server process with the same operator key, and an auditor's read-only replica.
    other = EvmLedgerBackend(chain.w3, backend.address, operator_key=chain.operator_key)
    reader = EvmLedgerBackend(chain.w3, backend.address)
    first = grant_entry(backend, alice, 0)
    backend.submit([first], NOW)
    # `other` last read the chain before that grant: its entry with the same nonce is refused by the contract.
    with pytest.raises(AppendRefused) as refused:
        other.submit([grant_entry(other, alice, 0)], NOW)
    assert refused.value.reason == "replay"
    # Its next entry lands after the one it had not seen; it learns both from the chain.
    (appended,) = other.submit([grant_entry(other, alice, 1)], NOW + 5)
    assert (appended.index, appended.leaf_index, appended.entry.time) == (4, 1, NOW + 5)
    backend.submit([revoke_entry(backend, alice, first.grant_id, 2)], NOW)  # a clock behind: time does not go back
    for replica in (backend, other, reader):
        assert replica.size() == 6
        assert replica.entry_bytes(0, 6) == backend.entry_bytes(0, 6)
        assert replica.next_nonce(alice.address) == 3
        assert replica.grant(first.grant_id) == backend.grant(first.grant_id)
        assert replica.sync() == backend.sync()
    assert [int.from_bytes(raw[-8:], "big") for raw in reader.entry_bytes(3, 6)] == [NOW, NOW + 5, NOW + 5]
    with pytest.raises(ChainError, match="no operator key"):
        reader.submit([grant_entry(reader, bob, 0)], NOW)


def test_two_processes_appending_get_the_chains_verdicts(
    backend: EvmLedgerBackend, chain: EvmChain, alice: ActorKeys
) -> None:
    ours = Ledger(backend, Signer.generate("pchr.test/evm"), origin="pchr.test/evm", domain=backend.domain, clock=at_t0)
    theirs = EvmLedgerBackend(chain.w3, backend.address, operator_key=chain.operator_key)
    # They register carol; our mirror has not read it, but our refusal waits until it has: her grant goes in.
    carol = ActorKeys.generate(Role.PATIENT)
    theirs.submit([key_entry(carol)], NOW)
    (appended,) = ours.append([grant_entry(backend, carol, 0)])
    assert (appended.index, appended.leaf_index) == (4, 0)
    # They append alice's grant with nonce 0; ours, signed with the same nonce, passes our stale mirror and is
    # refused by the contract.
    theirs.submit([grant_entry(theirs, alice, 0)], NOW)
    with pytest.raises(AppendRefused) as refused:
        ours.append([grant_entry(backend, alice, 0)])
    assert refused.value.reason == "replay"
    assert backend.last_receipt is not None
    assert backend.last_receipt.status == 0
    assert ours.size() == 6


def test_a_node_that_leaves_logs_out_is_caught(
    backend: EvmLedgerBackend, chain: EvmChain, alice: ActorKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.submit([grant_entry(backend, alice, 0)], NOW)
    real = _Node.logs
    monkeypatch.setattr(_Node, "logs", lambda node, address, start, stop: real(node, address, start, stop)[:-1])
    with pytest.raises(ChainError, match="left logs out"):
        EvmLedgerBackend(chain.w3, backend.address)


def test_the_mirror_refuses_a_log_that_skips_or_changes(alice: ActorKeys, bob: ActorKeys) -> None:
    mirror = _Mirror()
    mirror.apply(LoggedEntry(0, key_entry(alice)))
    assert mirror.apply(LoggedEntry(0, key_entry(alice))) is None  # read twice: no change
    with pytest.raises(ChainError, match="differs"):
        mirror.apply(LoggedEntry(0, key_entry(bob)))
    with pytest.raises(ChainError, match="skips from entry 1 to 2"):
        mirror.apply(LoggedEntry(2, key_entry(bob)))
    with pytest.raises(ChainError, match="revokes a grant that the log does not hold"):
        mirror.apply(LoggedEntry(1, RevokeEntry(bytes(32), alice.address, 0, NOW, bytes(65))))
    assert mirror.size == 1
    assert list(mirror.nodes) == [(0, 0)]


def test_only_the_operator_appends(backend: EvmLedgerBackend, chain: EvmChain, alice: ActorKeys) -> None:
    with pytest.raises(ChainError, match="not the contract's operator"):
        EvmLedgerBackend(chain.w3, backend.address, operator_key=bytes(Account.create().key))
    # The operator hands the ledger over; its old key's transactions are then refused by the contract.
    new_operator = Account.create()
    fund_from_node(chain.w3, new_operator.address)
    handover = (
        contract(chain, backend)
        .setOperator(new_operator.address)
        .build_transaction(
            {"from": backend.operator, "nonce": chain.w3.eth.get_transaction_count(backend.operator), "gas": 100_000}
        )
    )
    signed = Account.sign_transaction(handover, chain.operator_key)
    assert (
        chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_raw_transaction(signed.raw_transaction))["status"]
        == 1
    )
    with pytest.raises(ChainError, match="not-operator"):
        backend.submit([grant_entry(backend, alice, 0)], NOW)
    successor = EvmLedgerBackend(chain.w3, backend.address, operator_key=bytes(new_operator.key))
    (appended,) = successor.submit([grant_entry(successor, alice, 0)], NOW)
    assert appended.index == 3


def test_attaching_to_other_code_is_refused(chain: EvmChain) -> None:
    with pytest.raises(ChainError, match="not the ConsentLedger contract"):
        EvmLedgerBackend(chain.w3, Account.create().address)


# -- eth-tester only: the contract's encoding, time and gas ------------------------------------------------
def test_attest_entries_round_trip_through_the_events(evm_chain: EvmChain) -> None:
    backend = evm_chain.fresh()
    lengths = [0, 1, 31, 32, 33, 255, 256, 1023, 1024, 2047]
    entries = [AttestEntry(n + 1, 2**256 - 1 - n, n, bytes((i * 7 + n) % 256 for i in range(n))) for n in lengths]
    appended = backend.submit(entries, NOW)
    stamped = [dataclasses.replace(e, time=NOW) for e in entries]
    assert [a.entry for a in appended] == stamped
    assert backend.entry_bytes(0, len(entries)) == [e.to_bytes() for e in stamped]
    receipt = backend.last_receipt
    with pytest.raises(EntryError, match="at most 2047 bytes"):
        backend.submit([AttestEntry(1, 2, 3, bytes(2048))], NOW)
    assert backend.last_receipt is receipt  # refused before anything was sent


def test_entry_time_is_the_operators_and_never_goes_back(evm_chain: EvmChain, alice: ActorKeys) -> None:
    backend = evm_chain.fresh()
    (key,) = backend.submit([key_entry(alice)], NOW)
    (first,) = backend.submit([grant_entry(backend, alice, 0)], NOW + 60)
    (second,) = backend.submit([grant_entry(backend, alice, 1)], NOW - 60)
    assert (key.entry.time, first.entry.time, second.entry.time) == (NOW, NOW + 60, NOW + 60)


def test_many_actors_register_their_key_bindings(evm_chain: EvmChain) -> None:
    # The contract rebuilds each binding's EIP-191 text (EIP-55 address, role, X25519 key) to check it.
    actors = [ActorKeys.generate(role) for role in (Role.PATIENT, Role.CLINICIAN, Role.AUDITOR) for _ in range(8)]
    backend = evm_chain.fresh()
    appended = backend.submit([key_entry(k) for k in actors], NOW)
    assert [a.entry.actor for a in appended] == [k.address for k in actors]
    view = contract(evm_chain, backend)
    assert [view.roleOf(k.address).call() for k in actors] == [1] * 8 + [2] * 8 + [3] * 8


def test_gas_per_grant_and_revocation(evm_chain: EvmChain) -> None:
    backend = evm_chain.fresh()
    patients = [ActorKeys.generate(Role.PATIENT) for _ in range(40)]
    backend.submit([key_entry(p) for p in patients], NOW)
    grants = [grant_entry(backend, p, 0) for p in patients]
    backend.submit(grants[:1], NOW)
    single_grant = backend.last_receipt.gas_used
    backend.submit(grants[1:], NOW)  # 39 patients, each on the ledger for the first time: the costliest batch
    batched_grant = backend.last_receipt.gas_used / 39
    backend.submit([revoke_entry(backend, patients[0], grants[0].grant_id, 1)], NOW)
    single_revoke = backend.last_receipt.gas_used
    backend.submit(
        [revoke_entry(backend, p, g.grant_id, 1) for p, g in zip(patients[1:], grants[1:], strict=True)], NOW
    )
    batched_revoke = backend.last_receipt.gas_used / 39
    assert batched_grant <= 60_000  # the goal
    assert single_grant <= 80_000
    assert single_revoke <= 60_000
    assert batched_revoke <= 30_000


def test_the_contracts_eip712_domain_is_the_backends(evm_chain: EvmChain) -> None:
    backend = evm_chain.fresh()
    view = contract(evm_chain, backend)
    assert view.domainSeparator().call() == backend.domain.separator()
    fields, name, version, chain_id, verifying, salt, extensions = view.eip712Domain().call()
    assert (fields, name, version, chain_id, verifying) == (
        b"\x0f",
        "pchr consent ledger",
        "1",
        131277322940537,
        backend.address,
    )
    assert (salt, extensions) == (bytes(32), [])
    assert (backend.domain.name, backend.domain.version, backend.domain.chain_id) == (name, version, chain_id)


# -- the codec ----------------------------------------------------------------------------------------------
def test_the_codec_matches_the_compiled_abi() -> None:
    abi = compile_contract().abi
    events = {
        e["name"]: f"{e['name']}({','.join(i['type'] for i in e['inputs'])})" for e in abi if e["type"] == "event"
    }
    assert {name: events[name] for name in EVENT_SIGNATURES} == EVENT_SIGNATURES
    (append,) = [f for f in abi if f.get("name") == "append"]
    assert [i["type"] for i in append["inputs"]] == ["uint64"]
    assert keccak.new(digest_bits=256, data=b"append(uint64)").digest()[:4] == APPEND_SELECTOR


def test_revert_reasons_decode() -> None:
    data = bytes.fromhex("08c379a0") + encode(["string"], ["not-your-grant"])
    assert decode_revert_reason(data) == "not-your-grant"
    assert decode_revert_reason(bytes.fromhex("4e487b71") + encode(["uint256"], [0x11])) is None  # Panic(0x11)
    assert decode_revert_reason(data[:40]) is None


def test_malformed_events_are_refused(alice: ActorKeys) -> None:
    from consent_chain.backends._evm_codec import _TOPIC

    key = key_entry(alice)
    topic = bytes(12) + bytes.fromhex(alice.address[2:])
    data = encode(
        ["uint256", "uint8", "bytes32", "bytes32", "bytes32", "uint8", "uint64"],
        [
            0,
            1,
            key.x25519_public,
            key.binding_signature[:32],
            key.binding_signature[32:64],
            key.binding_signature[64],
            NOW,
        ],
    )
    assert decode_event([_TOPIC["Key"], topic], data) == LoggedEntry(0, dataclasses.replace(key, time=NOW))
    with pytest.raises(EntryError, match="topics"):
        decode_event([_TOPIC["Key"]], data)
    with pytest.raises(EntryError, match="leading zero"):
        decode_event([_TOPIC["Key"], b"\x01" + topic[1:]], data)
    with pytest.raises(EntryError, match="fewer than 7 words"):
        decode_event([_TOPIC["Key"], topic], data[:-32])
    with pytest.raises(EntryError, match="unknown role"):
        decode_event([_TOPIC["Key"], topic], data[:32] + (9).to_bytes(32, "big") + data[64:])
    assert decode_event([b"\x00" * 32], data) is None


def test_revert_reasons_are_read_from_each_nodes_errors() -> None:
    from consent_chain.backends.evm import _refusal, _revert_reason

    data = "0x" + (bytes.fromhex("08c379a0") + encode(["string"], ["bad-signature"])).hex()
    # Hardhat, refusing a reverting transaction at sending (its default), as web3 words it.
    hardhat = (
        "{'code': -32603, 'message': \"Error: VM Exception while processing transaction: reverted with reason string "
        f"'bad-signature'\", 'data': {{'message': 'reverted', 'txHash': '0x87', 'data': '{data}'}}}}"
    )
    assert _revert_reason(Exception(hardhat)) == "bad-signature"
    assert _revert_reason(Exception("execution reverted: replay")) == "replay"  # geth, Besu, eth-tester
    assert _revert_reason(Exception("out of gas")) is None
    refused = _refusal("stale")
    assert isinstance(refused, AppendRefused)
    assert refused.reason == "stale"
    assert isinstance(_refusal("not-operator"), ChainError)
    assert isinstance(_refusal(None), ChainError)


@pytest.mark.slow
@pytest.mark.integration
def test_a_large_batch_is_estimated_and_one_too_large_refused(hardhat_chain: EvmChain) -> None:
    backend = hardhat_chain.fresh()
    patients = [ActorKeys.generate(Role.PATIENT) for _ in range(30)]
    backend.submit([key_entry(p) for p in patients], NOW)
    grants = [grant_entry(backend, patients[i % 30], i // 30) for i in range(300)]
    # 300 grants: more than the bound by kinds lets one transaction hold (2^24 gas), so the node estimates it.
    appended = backend.submit(grants, NOW)
    assert [a.leaf_index for a in appended] == list(range(300))
    assert backend.last_receipt is not None
    assert 300 * 30_000 < backend.last_receipt.gas_used < 1 << 24
    # 250 key bindings, each checked on chain, need more than one transaction may use: refused, nothing sent.
    receipt = backend.last_receipt
    with pytest.raises(ChainError, match="smaller batches"):
        backend.submit([key_entry(ActorKeys.generate(Role.CLINICIAN)) for _ in range(250)], NOW)
    assert backend.last_receipt is receipt
    assert backend.size() == 330
