"""Sealing: round trips, and every tampered byte or wrong key is rejected with one error."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr.crypto import SealContext, SealedResource, WrappedKey, seal, unseal, unwrap_key, wrap_key
from ehr.errors import DecryptionError

PATIENT = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
CONTEXT = SealContext("Observation", "obs-1", "3", PATIENT)
PLAINTEXT = b'{"resourceType":"Observation","valueQuantity":{"value":7.1}}'


def _counter_rng():
    state = {"n": 0}

    def rng(n: int) -> bytes:
        state["n"] += 1
        return bytes((state["n"] + i) % 256 for i in range(n))

    return rng


@pytest.fixture(scope="module")
def recipient() -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def sealed(recipient) -> tuple[SealedResource, WrappedKey]:
    return seal(PLAINTEXT, CONTEXT, PATIENT, recipient.public_key())


def test_round_trip(sealed, recipient) -> None:
    assert unseal(*sealed, recipient) == PLAINTEXT


def test_ciphertext_hides_the_plaintext(sealed) -> None:
    assert b"Observation" not in sealed[0].ciphertext
    assert b"7.1" not in sealed[0].ciphertext


def test_every_version_gets_a_fresh_data_key(recipient) -> None:
    a, ka = seal(PLAINTEXT, CONTEXT, PATIENT, recipient.public_key())
    b, kb = seal(PLAINTEXT, CONTEXT, PATIENT, recipient.public_key())
    assert a.ciphertext != b.ciphertext
    assert ka.wrapped != kb.wrapped
    assert ka.ephemeral_public != kb.ephemeral_public


def test_injected_randomness_makes_sealing_exact(recipient) -> None:
    first = seal(PLAINTEXT, CONTEXT, PATIENT, recipient.public_key(), rng=_counter_rng())
    second = seal(PLAINTEXT, CONTEXT, PATIENT, recipient.public_key(), rng=_counter_rng())
    assert first == second


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def test_flipping_any_ciphertext_byte_is_rejected(sealed, recipient) -> None:
    body, key = sealed
    for i in range(len(body.ciphertext)):
        tampered = dataclasses.replace(body, ciphertext=_flip(body.ciphertext, i))
        with pytest.raises(DecryptionError):
            unseal(tampered, key, recipient)


def test_flipping_any_nonce_byte_is_rejected(sealed, recipient) -> None:
    body, key = sealed
    for i in range(len(body.nonce)):
        with pytest.raises(DecryptionError):
            unseal(dataclasses.replace(body, nonce=_flip(body.nonce, i)), key, recipient)


def test_flipping_any_wrapped_key_byte_is_rejected(sealed, recipient) -> None:
    body, key = sealed
    for field in ("wrapped", "ephemeral_public"):
        raw = getattr(key, field)
        for i in range(len(raw)):
            with pytest.raises(DecryptionError):
                unseal(body, dataclasses.replace(key, **{field: _flip(raw, i)}), recipient)


@pytest.mark.parametrize(
    "changed",
    [
        {"resource_type": "Condition"},
        {"resource_id": "obs-2"},
        {"version_id": "2"},
        {"patient": "0x0000000000000000000000000000000000000001"},
    ],
)
def test_moving_a_ciphertext_to_another_context_is_rejected(sealed, recipient, changed) -> None:
    body, key = sealed
    moved = dataclasses.replace(body, context=dataclasses.replace(CONTEXT, **changed))
    with pytest.raises(DecryptionError):
        unseal(moved, key, recipient)


def test_a_key_wrapped_for_someone_else_does_not_open(sealed, recipient) -> None:
    body, key = sealed
    with pytest.raises(DecryptionError):
        unseal(body, dataclasses.replace(key, recipient="0x0000000000000000000000000000000000000002"), recipient)


def test_the_wrong_private_key_is_rejected(sealed) -> None:
    with pytest.raises(DecryptionError, match="failed authentication"):
        unseal(*sealed, x25519.X25519PrivateKey.generate())


def test_rewrap_gives_another_recipient_the_same_data_key(recipient) -> None:
    grantee = x25519.X25519PrivateKey.generate()
    body, key = seal(PLAINTEXT, CONTEXT, PATIENT, recipient.public_key())
    dek = unwrap_key(key, CONTEXT, recipient)
    other = wrap_key(dek, CONTEXT, "0x00000000000000000000000000000000000000aa", grantee.public_key())
    assert unseal(body, other, grantee) == PLAINTEXT
    with pytest.raises(DecryptionError):
        unseal(body, other, recipient)


def test_low_order_recipient_key_is_refused() -> None:
    zero_point = x25519.X25519PublicKey.from_public_bytes(bytes(32))
    with pytest.raises(ValueError, match="not a valid X25519"):
        wrap_key(bytes(32), CONTEXT, PATIENT, zero_point)


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=4096), rid=st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True))
def test_round_trip_property(recipient, plaintext: bytes, rid: str) -> None:
    context = SealContext("Condition", rid, "1", PATIENT)
    assert unseal(*seal(plaintext, context, PATIENT, recipient.public_key()), recipient) == plaintext


def test_aad_encoding_is_unambiguous() -> None:
    # Length prefixes: shifting a character between fields changes the associated data.
    assert SealContext("ab", "c", "1", "p").aad() != SealContext("a", "bc", "1", "p").aad()


def test_flipping_any_byte_of_the_associated_data_is_rejected(sealed, recipient) -> None:
    body, key = sealed
    for field in ("resource_type", "resource_id", "version_id", "patient"):
        value = getattr(CONTEXT, field).encode()
        for i in range(len(value)):
            flipped = value[:i] + bytes([value[i] ^ 0x20]) + value[i + 1 :]
            context = dataclasses.replace(CONTEXT, **{field: flipped.decode("latin-1")})
            with pytest.raises(DecryptionError):
                unseal(dataclasses.replace(body, context=context), key, recipient)
