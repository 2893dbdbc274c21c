"""Actor identities: a secp256k1 identity key and an X25519 encryption key, and the signed binding of the two.

Every actor (patient, clinician, auditor) has:

- a **secp256k1 identity key**; its Ethereum-style address (the last 20 bytes of the Keccak-256 hash of the
  uncompressed public key, EIP-55 checksummed) is the actor's id everywhere in pchr;
- an **X25519 encryption key** to which data keys are wrapped.

The actor binds the two with an EIP-191 ``personal_sign`` signature over a fixed text
(:func:`binding_message`), so any wallet can produce it and anyone can check it by recovering the address.
The server stores only :class:`ActorPublic` records; a client that fetches a patient's encryption key from the
server verifies the binding before sealing anything to it, so a server cannot substitute its own key.

This module is the only one in ``ehr`` that imports the Ethereum libraries.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.datatypes import Signature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

__all__ = [
    "ActorKeys",
    "ActorPublic",
    "BindingError",
    "Role",
    "address_from_public_key",
    "binding_message",
    "eip191_hash",
    "normalize_address",
]

# secp256k1 group order (SEC 2, section 2.4.1).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")

Rng = Callable[[int], bytes]


class Role(enum.StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"
    AUDITOR = "auditor"


class BindingError(ValueError):
    """A key binding does not verify: the signature does not recover to the claimed address."""


@lru_cache(maxsize=8192)
def normalize_address(value: str) -> str:
    """Parse an Ethereum-style address and return its EIP-55 checksummed form."""
    if not _ADDRESS_RE.match(value):
        raise ValueError(f"not an address: {value[:50]!r}")
    return str(to_checksum_address(value))


def address_from_public_key(public_key: ec.EllipticCurvePublicKey) -> str:
    """The Ethereum address of a secp256k1 public key (Yellow Paper, eq. 284)."""
    return _address_of_point(public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


@lru_cache(maxsize=8192)
def _address_of_point(uncompressed: bytes) -> str:
    return str(to_checksum_address(keccak(uncompressed[1:])[-20:]))


def binding_message(address: str, role: Role, x25519_public: bytes) -> str:
    """The text an actor signs (EIP-191 personal_sign) to bind its encryption key to its identity."""
    return (
        "pchr key binding v1\n"
        f"address: {normalize_address(address)}\n"
        f"role: {role.value}\n"
        f"x25519: {x25519_public.hex()}\n"
    )


@dataclass(frozen=True)
class ActorPublic:
    """What the server and every other party may know about an actor."""

    address: str
    role: Role
    identity_public: bytes  # uncompressed SEC1 point, 65 bytes
    x25519_public: bytes  # 32 bytes
    binding_signature: bytes  # 65 bytes, r || s || v

    def __post_init__(self) -> None:
        if len(self.x25519_public) != 32:
            raise BindingError("x25519 public key must be 32 bytes")
        if len(self.identity_public) != 65 or self.identity_public[0] != 4:
            raise BindingError("identity public key must be an uncompressed secp256k1 point")
        self.identity_key()  # parses: the point must be on the curve
        if _address_of_point(self.identity_public) != self.address:
            raise BindingError("identity public key does not match the address")

    @classmethod
    def from_binding(cls, address: str, role: Role, x25519_public: bytes, signature: bytes) -> ActorPublic:
        """Verify a binding signature and build the record; the identity key is recovered from it."""
        address = normalize_address(address)
        digest = eip191_hash(binding_message(address, role, x25519_public).encode())
        try:
            public = Signature(_vrs_normalized(signature)).recover_public_key_from_msg_hash(digest)
        except Exception as exc:  # eth_keys raises several types for malformed signatures
            raise BindingError("key binding signature is malformed") from exc
        if public.to_checksum_address() != address:
            raise BindingError("key binding signature was not made by the address it names")
        return cls(address, role, b"\x04" + public.to_bytes(), x25519_public, bytes(signature))

    def identity_key(self) -> ec.EllipticCurvePublicKey:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), self.identity_public)

    def encryption_key(self) -> x25519.X25519PublicKey:
        return x25519.X25519PublicKey.from_public_bytes(self.x25519_public)

    def verify(self) -> None:
        """Re-check the binding (for a record received from an untrusted server)."""
        ActorPublic.from_binding(self.address, self.role, self.x25519_public, self.binding_signature)

    def to_json(self) -> dict[str, str]:
        return {
            "address": self.address,
            "role": self.role.value,
            "x25519Public": self.x25519_public.hex(),
            "bindingSignature": self.binding_signature.hex(),
        }

    @classmethod
    def from_json(cls, data: object) -> ActorPublic:
        """Parse and verify a record (the identity key is recovered, never taken on trust)."""
        if not isinstance(data, dict):
            raise BindingError("actor record must be a JSON object")
        try:
            return cls.from_binding(
                str(data["address"]),
                Role(data["role"]),
                bytes.fromhex(str(data["x25519Public"])),
                bytes.fromhex(str(data["bindingSignature"])),
            )
        except (KeyError, ValueError) as exc:
            if isinstance(exc, BindingError):
                raise
            raise BindingError(f"actor record is malformed: {exc}") from exc


@dataclass(frozen=True)
class ActorKeys:
    """An actor's private keys. Lives on the actor's side only (see :mod:`ehr.keyfile`)."""

    role: Role
    identity: ec.EllipticCurvePrivateKey
    encryption: x25519.X25519PrivateKey

    @classmethod
    def generate(cls, role: Role, *, rng: Rng = os.urandom) -> ActorKeys:
        while True:
            scalar = int.from_bytes(rng(32), "big")
            if 0 < scalar < SECP256K1_N:
                break
        return cls.from_secrets(role, scalar.to_bytes(32, "big"), rng(32))

    @classmethod
    def from_secrets(cls, role: Role, identity_secret: bytes, encryption_secret: bytes) -> ActorKeys:
        identity = ec.derive_private_key(int.from_bytes(identity_secret, "big"), ec.SECP256K1())
        return cls(role, identity, x25519.X25519PrivateKey.from_private_bytes(encryption_secret))

    def identity_secret(self) -> bytes:
        return self.identity.private_numbers().private_value.to_bytes(32, "big")

    def encryption_secret(self) -> bytes:
        return self.encryption.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def address(self) -> str:
        return address_from_public_key(self.identity.public_key())

    @property
    def x25519_public(self) -> bytes:
        return self.encryption.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def public(self) -> ActorPublic:
        """The signed public record the actor registers with the server."""
        message = encode_defunct(text=binding_message(self.address, self.role, self.x25519_public))
        signed = Account.sign_message(message, private_key=self.identity_secret())
        return ActorPublic(
            self.address,
            self.role,
            self.identity.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint),
            self.x25519_public,
            bytes(signed.signature),
        )


def eip191_hash(message: bytes) -> bytes:
    """EIP-191 version 0x45 ("personal_sign") digest of a message."""
    return bytes(keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message))


def _vrs_normalized(signature: bytes) -> bytes:
    """eth_keys wants v in {0, 1}; wallets emit {27, 28}."""
    if len(signature) != 65:
        raise ValueError("signature must be 65 bytes")
    v = signature[64]
    return signature[:64] + bytes([v - 27 if v >= 27 else v])
