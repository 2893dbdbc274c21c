"""EIP-712: our fixed-struct digests equal eth-account's general encoder; wallet signatures recover."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from consent_chain.eip712 import (
    Domain,
    GrantMessage,
    RevokeMessage,
    digest,
    recover_signer,
    sign,
    sql_ledger_domain,
    to_json,
)
from consent_chain.errors import SignatureError
from consent_chain.note import Signer
from ehr.identity import ActorKeys, Role

DOMAIN = Domain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
KEYS = ActorKeys.generate(Role.PATIENT)

uint = st.integers(min_value=0, max_value=2**256 - 1)
ids = st.binary(min_size=32, max_size=32)


def _reference_digest(domain: Domain, message) -> bytes:
    """eth-account's general EIP-712 encoder (the reference implementation)."""
    signable = encode_typed_data(full_message=to_json(domain, message))
    from eth_utils.crypto import keccak

    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=40, deadline=None)
@given(gid=ids, commitment=uint, nonce=uint, issued=st.integers(0, 2**64 - 1))
def test_grant_digest_matches_eth_account(gid: bytes, commitment: int, nonce: int, issued: int) -> None:
    message = GrantMessage(gid, commitment, nonce, issued)
    assert digest(DOMAIN, message) == _reference_digest(DOMAIN, message)


@settings(max_examples=40, deadline=None)
@given(gid=ids, nonce=uint, issued=st.integers(0, 2**64 - 1), chain=st.integers(1, 2**64))
def test_revoke_digest_matches_eth_account(gid: bytes, nonce: int, issued: int, chain: int) -> None:
    domain = Domain(chain_id=chain)
    message = RevokeMessage(gid, nonce, issued)
    assert digest(domain, message) == _reference_digest(domain, message)


def test_a_wallet_signature_recovers_to_the_patient() -> None:
    message = GrantMessage(bytes(range(32)), 12345, 0, 1_700_000_000)
    # What a wallet does with eth_signTypedData_v4: eth-account's sign_typed_data on the same JSON.
    payload = to_json(DOMAIN, message)
    wallet = Account.sign_typed_data(KEYS.identity_secret(), full_message=payload)
    assert recover_signer(DOMAIN, message, bytes(wallet.signature)) == KEYS.address
    assert recover_signer(DOMAIN, message, sign(KEYS, DOMAIN, message)) == KEYS.address


def test_a_signature_is_bound_to_message_and_domain() -> None:
    message = GrantMessage(bytes(32), 1, 0, 10)
    signature = sign(KEYS, DOMAIN, message)
    assert recover_signer(DOMAIN, GrantMessage(bytes(32), 2, 0, 10), signature) != KEYS.address
    assert recover_signer(Domain(chain_id=1), message, signature) != KEYS.address
    # A Revoke with the same fields is a different type: the signature does not carry over.
    assert recover_signer(DOMAIN, RevokeMessage(bytes(32), 0, 10), signature) != KEYS.address


def test_high_s_and_malformed_signatures_are_refused() -> None:
    message = GrantMessage(bytes(32), 1, 0, 10)
    signature = sign(KEYS, DOMAIN, message)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(signature[32:64], "big")
    flipped_v = 55 - signature[64]  # 27 <-> 28
    malleated = signature[:32] + (n - s).to_bytes(32, "big") + bytes([flipped_v])
    with pytest.raises(SignatureError, match="high-s"):
        recover_signer(DOMAIN, message, malleated)
    for bad in (signature[:64], signature[:64] + b"\x05", bytes(65)):
        with pytest.raises(SignatureError):
            recover_signer(DOMAIN, message, bad)


@pytest.mark.parametrize("bad", [{"grant_id": b"short"}, {"nonce": -1}, {"issued_at": 2**64}])
def test_message_fields_are_checked(bad: dict) -> None:
    fields = {"grant_id": bytes(32), "commitment": 0, "nonce": 0, "issued_at": 0, **bad}
    with pytest.raises(ValueError, match=r"grantId|nonce|issuedAt"):
        GrantMessage(**fields)


def test_a_domain_round_trips_through_its_json() -> None:
    assert Domain.from_json(DOMAIN.to_json()) == DOMAIN
    assert Domain.from_json(DOMAIN.to_json()).separator() == DOMAIN.separator()
    default = Domain.from_json(Domain().to_json())
    assert default.separator() == Domain().separator()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"chainId": "31337"}, "chainId is a uint256"),
        ({"chainId": True}, "chainId is a uint256"),
        ({"chainId": -1}, "chainId is a uint256"),
        ({"name": 7}, "name and version are strings"),
        ({"verifyingContract": "0x1234"}, "not an address"),
        ({"salt": "0x00"}, "is {name, version, chainId, verifyingContract}"),
    ],
)
def test_a_malformed_domain_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Domain.from_json({**DOMAIN.to_json(), **change})


def test_a_sql_ledger_s_domain_is_its_operator_s_own() -> None:
    a, b = Signer.generate("a.example/ledger"), Signer.generate("a.example/ledger")
    domain = sql_ledger_domain(a.verifier.to_vkey(), chain_id=31337)
    assert domain == sql_ledger_domain(a.verifier.to_vkey(), chain_id=31337)  # auditors recompute it
    assert domain.verifying_contract == to_checksum_address(
        keccak(b"pchr sql consent ledger v1\n" + a.verifier.to_vkey().encode())[12:]
    )
    others = {sql_ledger_domain(b.verifier.to_vkey(), chain_id=31337), Domain(), Domain(chain_id=1)}
    assert domain not in others
    assert sql_ledger_domain(a.verifier.to_vkey(), chain_id=1) != domain
    # A signature in one ledger's domain names nobody in the other's.
    patient = ActorKeys.generate(Role.PATIENT)
    message = RevokeMessage(b"\x01" * 32, 0, 1_700_000_000)
    signature = sign(patient, domain, message)
    assert recover_signer(domain, message, signature) == patient.address
    other = sql_ledger_domain(b.verifier.to_vkey(), chain_id=31337)
    assert recover_signer(other, message, signature) != patient.address
