"""Actor identities: addresses and key bindings match the Ethereum tools; forged bindings are refused."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from ehr.identity import ActorKeys, ActorPublic, BindingError, Role, binding_message, eip191_hash, normalize_address
from tests.vectors import load

ETH = load("ethereum_accounts.json")
X25519 = load("rfc7748_x25519.json")


def test_address_matches_web3js_vector() -> None:
    keys = ActorKeys.from_secrets(Role.PATIENT, bytes.fromhex(ETH["privateKey"]), bytes(32))
    assert keys.address == ETH["address"]


def test_eip191_digest_matches_web3js_vector() -> None:
    assert eip191_hash(ETH["message"].encode()).hex() == ETH["messageHash"]


def test_x25519_secret_is_the_rfc7748_scalar() -> None:
    keys = ActorKeys.from_secrets(Role.PATIENT, bytes.fromhex(ETH["privateKey"]), bytes.fromhex(X25519["alicePrivate"]))
    assert keys.x25519_public.hex() == X25519["alicePublic"]


def test_binding_is_a_wallet_signature() -> None:
    keys = ActorKeys.generate(Role.CLINICIAN)
    record = keys.public()
    message = encode_defunct(text=binding_message(keys.address, Role.CLINICIAN, keys.x25519_public))
    # Any Ethereum tool recovers the actor's address from the binding.
    assert Account.recover_message(message, signature=record.binding_signature) == keys.address
    # And a wallet's own signature over the same text is accepted as a binding.
    wallet = Account.sign_message(message, private_key=keys.identity_secret())
    assert ActorPublic.from_binding(keys.address, Role.CLINICIAN, keys.x25519_public, bytes(wallet.signature)) == record


def test_public_record_round_trips_through_json() -> None:
    record = ActorKeys.generate(Role.PATIENT).public()
    assert ActorPublic.from_json(record.to_json()) == record


def test_binding_signed_by_another_key_is_refused() -> None:
    victim, attacker = ActorKeys.generate(Role.PATIENT), ActorKeys.generate(Role.PATIENT)
    forged = attacker.public()
    with pytest.raises(BindingError, match="not made by the address"):
        ActorPublic.from_binding(victim.address, Role.PATIENT, attacker.x25519_public, forged.binding_signature)


@pytest.mark.parametrize(
    "field",
    ["x25519Public", "role"],
)
def test_substituted_key_or_role_is_refused(field: str) -> None:
    record = ActorKeys.generate(Role.PATIENT).public().to_json()
    record[field] = "00" * 32 if field == "x25519Public" else "clinician"
    with pytest.raises(BindingError):
        ActorPublic.from_json(record)


def test_malformed_signature_is_refused() -> None:
    record = ActorKeys.generate(Role.PATIENT).public().to_json()
    record["bindingSignature"] = "00" * 10
    with pytest.raises(BindingError, match="malformed"):
        ActorPublic.from_json(record)


def test_identity_key_must_match_address() -> None:
    a, b = ActorKeys.generate(Role.PATIENT).public(), ActorKeys.generate(Role.PATIENT).public()
    with pytest.raises(BindingError, match="does not match the address"):
        dataclasses.replace(a, identity_public=b.identity_public)


@pytest.mark.parametrize("bad", ["0x123", "2c7536E3605D9C16a7a3D7b1898e529396a65c23", "0x" + "g" * 40, ""])
def test_address_parsing_refuses_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="not an address"):
        normalize_address(bad)


def test_address_parsing_normalises_case() -> None:
    assert normalize_address(ETH["address"].lower()) == ETH["address"]
