"""Sealing FHIR resource versions: the only module that touches AEAD and key agreement.

Recipe (all primitives from pyca/cryptography):

- **Seal**: every resource version gets a fresh 256-bit data key (DEK) and is encrypted with AES-256-GCM
  (NIST SP 800-38D) under it. The associated data binds the ciphertext to its resource type, id, version and
  patient (:meth:`SealContext.aad`), so a ciphertext moved to another resource, version or patient fails.
- **Wrap**: the DEK is wrapped to a recipient's X25519 key (RFC 7748) HPKE-style (RFC 9180's DHKEM shape,
  not its wire format): a fresh ephemeral X25519 key, the shared secret expanded with HKDF-SHA256 (RFC 5869)
  into a key-encryption key and nonce, with the ephemeral and recipient public keys in the HKDF info; the DEK
  encrypted with AES-256-GCM under that, the seal context and the recipient's address as associated data.
  A fresh ephemeral key per wrap makes every (key, nonce) pair single-use.
- **Re-wrap** (for a grant): the patient unwraps a DEK and wraps it again to the grantee; the ciphertext never
  changes.

Every authentication failure raises :class:`~ehr.errors.DecryptionError` with one fixed message.
Randomness is injected (``rng``) so tests are exact.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ehr._encoding import b64url as _b64
from ehr._encoding import unb64url as _unb64
from ehr.errors import DecryptionError

__all__ = [
    "SealContext",
    "SealedResource",
    "WrappedKey",
    "seal",
    "unseal",
    "unwrap_key",
    "wrap_key",
]

Rng = Callable[[int], bytes]

_AAD_TAG = b"pchr/seal/v1"
_WRAP_INFO = b"pchr/wrap/v1"
DEK_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


def _lp(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("seal context field too long")
    return len(raw).to_bytes(2, "big") + raw


@dataclass(frozen=True)
class SealContext:
    """What a sealed version is: the associated data of both the payload and its wrapped keys."""

    resource_type: str
    resource_id: str
    version_id: str
    patient: str

    def aad(self) -> bytes:
        """Unambiguous (length-prefixed) encoding of the context, domain-separated."""
        return _AAD_TAG + b"".join(
            _lp(v) for v in (self.resource_type, self.resource_id, self.version_id, self.patient)
        )


@dataclass(frozen=True)
class WrappedKey:
    """A data key wrapped to one recipient."""

    recipient: str
    ephemeral_public: bytes
    wrapped: bytes

    def __post_init__(self) -> None:
        if len(self.ephemeral_public) != 32 or len(self.wrapped) != DEK_BYTES + TAG_BYTES:
            raise ValueError("wrapped key has the wrong size")

    def to_json(self) -> dict[str, str]:
        return {"recipient": self.recipient, "epk": _b64(self.ephemeral_public), "wrapped": _b64(self.wrapped)}

    @classmethod
    def from_json(cls, data: object) -> WrappedKey:
        if not isinstance(data, dict):
            raise ValueError("wrapped key must be an object")
        return cls(str(data["recipient"]), _unb64(data["epk"]), _unb64(data["wrapped"]))


@dataclass(frozen=True)
class SealedResource:
    """A resource version's ciphertext (AES-256-GCM, tag appended) and its context."""

    context: SealContext
    nonce: bytes
    ciphertext: bytes

    def __post_init__(self) -> None:
        if len(self.nonce) != NONCE_BYTES or len(self.ciphertext) < TAG_BYTES:
            raise ValueError("sealed resource has the wrong size")


def _kek(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=DEK_BYTES + NONCE_BYTES,
        salt=None,
        info=_WRAP_INFO + ephemeral_public + recipient_public,
    ).derive(shared)
    return okm[:DEK_BYTES], okm[DEK_BYTES:]


def _raw(public: x25519.X25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _wrap_aad(context: SealContext, recipient: str) -> bytes:
    return context.aad() + _lp(recipient)


def wrap_key(
    dek: bytes,
    context: SealContext,
    recipient: str,
    recipient_key: x25519.X25519PublicKey,
    *,
    rng: Rng = os.urandom,
) -> WrappedKey:
    """Wrap a data key to ``recipient`` (an address) holding ``recipient_key``."""
    if len(dek) != DEK_BYTES:
        raise ValueError("data key must be 32 bytes")
    ephemeral = x25519.X25519PrivateKey.from_private_bytes(rng(32))
    ephemeral_public = _raw(ephemeral.public_key())
    try:
        shared = ephemeral.exchange(recipient_key)
    except ValueError as exc:  # all-zero shared secret: a low-order recipient key
        raise ValueError("recipient key is not a valid X25519 public key") from exc
    key, nonce = _kek(shared, ephemeral_public, _raw(recipient_key))
    wrapped = AESGCM(key).encrypt(nonce, dek, _wrap_aad(context, recipient))
    return WrappedKey(recipient, ephemeral_public, wrapped)


def unwrap_key(wrapped: WrappedKey, context: SealContext, private_key: x25519.X25519PrivateKey) -> bytes:
    """Recover a data key; any tampering, or the wrong private key, raises DecryptionError."""
    try:
        ephemeral = x25519.X25519PublicKey.from_public_bytes(wrapped.ephemeral_public)
        shared = private_key.exchange(ephemeral)
        key, nonce = _kek(shared, wrapped.ephemeral_public, _raw(private_key.public_key()))
        return AESGCM(key).decrypt(nonce, wrapped.wrapped, _wrap_aad(context, wrapped.recipient))
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError() from exc


def seal(
    plaintext: bytes,
    context: SealContext,
    recipient: str,
    recipient_key: x25519.X25519PublicKey,
    *,
    rng: Rng = os.urandom,
) -> tuple[SealedResource, WrappedKey]:
    """Encrypt one resource version under a fresh data key and wrap that key to ``recipient``."""
    dek = rng(DEK_BYTES)
    nonce = rng(NONCE_BYTES)
    ciphertext = AESGCM(dek).encrypt(nonce, plaintext, context.aad())
    return SealedResource(context, nonce, ciphertext), wrap_key(dek, context, recipient, recipient_key, rng=rng)


def unseal(sealed: SealedResource, wrapped: WrappedKey, private_key: x25519.X25519PrivateKey) -> bytes:
    """Decrypt a sealed version with the caller's wrapped key; tampering raises DecryptionError."""
    dek = unwrap_key(wrapped, sealed.context, private_key)
    try:
        return AESGCM(dek).decrypt(sealed.nonce, sealed.ciphertext, sealed.context.aad())
    except InvalidTag as exc:
        raise DecryptionError() from exc
