"""Consent attestations: the request hash the service and auditors recompute."""

from __future__ import annotations

import hashlib

import pytest

from zk.attestation import REQUEST_DOMAIN, request_hash
from zk.field import CURVE_ORDER

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
