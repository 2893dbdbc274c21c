"""Ledger entries: typed events with one canonical binary encoding, the leaves of the transparency log.

Each entry holds hashes, ids, public keys, signatures and timestamps only (DESIGN.md section 4): no health data,
no names, no grant plaintext. The encoding is fixed-width big-endian fields after a one-byte type tag, so that
the SQL ledger and the EVM contract's events produce byte-identical leaves (``hash_leaf(entry.to_bytes())``)::

    KEY     0x01 | actor(20) | role(1) | x25519(32) | binding signature(65)                     | time(8)
    GRANT   0x02 | grantId(32) | patient(20) | commitment(32) | nonce(32) | issuedAt(8) | sig(65) | time(8)
    REVOKE  0x03 | grantId(32) | patient(20) | nonce(32) | issuedAt(8) | sig(65)                  | time(8)
    ATTEST  0x04 | requestHash(32) | modelId(32) | grantRoot(32) | proof length(2) | proof       | time(8)

``time`` is the ledger's append time in Unix seconds (the block timestamp on an EVM chain); it never goes back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from consent_chain.eip712 import GrantMessage, RevokeMessage
from consent_chain.errors import EntryError
from ehr.identity import Role, normalize_address

__all__ = ["AttestEntry", "Entry", "EntryType", "GrantEntry", "KeyEntry", "RevokeEntry", "decode_entry"]

_ROLES = {Role.PATIENT: 1, Role.CLINICIAN: 2, Role.AUDITOR: 3}
_ROLE_OF = {v: k for k, v in _ROLES.items()}


class EntryType(enum.IntEnum):
    KEY = 1
    GRANT = 2
    REVOKE = 3
    ATTEST = 4


def _addr(raw: bytes) -> str:
    return normalize_address("0x" + raw.hex())


def _addr_bytes(address: str) -> bytes:
    return bytes.fromhex(normalize_address(address)[2:])


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 1

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise EntryError("entry is truncated")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def int(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def done(self) -> None:
        if self.at != len(self.data):
            raise EntryError("entry has trailing bytes")


@dataclass(frozen=True)
class KeyEntry:
    """An actor binds its X25519 encryption key to its identity (the EIP-191 binding signature)."""

    actor: str
    role: Role
    x25519_public: bytes
    binding_signature: bytes
    time: int = 0

    entry_type = EntryType.KEY

    def to_bytes(self) -> bytes:
        return (
            bytes([EntryType.KEY])
            + _addr_bytes(self.actor)
            + bytes([_ROLES[self.role]])
            + self.x25519_public
            + self.binding_signature
            + _u(self.time, 8)
        )


@dataclass(frozen=True)
class GrantEntry:
    """A patient-signed grant: only its commitment, never its plaintext."""

    grant_id: bytes
    patient: str
    commitment: int
    nonce: int
    issued_at: int
    signature: bytes
    time: int = 0

    entry_type = EntryType.GRANT

    def message(self) -> GrantMessage:
        return GrantMessage(self.grant_id, self.commitment, self.nonce, self.issued_at)

    def to_bytes(self) -> bytes:
        return (
            bytes([EntryType.GRANT])
            + self.grant_id
            + _addr_bytes(self.patient)
            + _u(self.commitment, 32)
            + _u(self.nonce, 32)
            + _u(self.issued_at, 8)
            + self.signature
            + _u(self.time, 8)
        )


@dataclass(frozen=True)
class RevokeEntry:
    """A patient-signed revocation of one of their grants."""

    grant_id: bytes
    patient: str
    nonce: int
    issued_at: int
    signature: bytes
    time: int = 0

    entry_type = EntryType.REVOKE

    def message(self) -> RevokeMessage:
        return RevokeMessage(self.grant_id, self.nonce, self.issued_at)

    def to_bytes(self) -> bytes:
        return (
            bytes([EntryType.REVOKE])
            + self.grant_id
            + _addr_bytes(self.patient)
            + _u(self.nonce, 32)
            + _u(self.issued_at, 8)
            + self.signature
            + _u(self.time, 8)
        )


@dataclass(frozen=True)
class AttestEntry:
    """An inference receipt: request hash, model id, the grant root the proof used, and the proof."""

    request_hash: int
    model_id: int
    grant_root: int
    proof: bytes
    time: int = 0

    entry_type = EntryType.ATTEST

    def to_bytes(self) -> bytes:
        return (
            bytes([EntryType.ATTEST])
            + _u(self.request_hash, 32)
            + _u(self.model_id, 32)
            + _u(self.grant_root, 32)
            + _u(len(self.proof), 2)
            + self.proof
            + _u(self.time, 8)
        )


Entry = KeyEntry | GrantEntry | RevokeEntry | AttestEntry


def decode_entry(data: bytes) -> Entry:
    """Parse an entry's canonical bytes (EntryError if malformed)."""
    if not data:
        raise EntryError("empty entry")
    r = _Reader(data)
    kind = data[0]
    entry: Entry
    try:
        if kind == EntryType.KEY:
            actor = _addr(r.take(20))
            role_byte = r.int(1)
            if role_byte not in _ROLE_OF:
                raise EntryError("unknown role")
            entry = KeyEntry(actor, _ROLE_OF[role_byte], r.take(32), r.take(65), r.int(8))
        elif kind == EntryType.GRANT:
            entry = GrantEntry(r.take(32), _addr(r.take(20)), r.int(32), r.int(32), r.int(8), r.take(65), r.int(8))
        elif kind == EntryType.REVOKE:
            entry = RevokeEntry(r.take(32), _addr(r.take(20)), r.int(32), r.int(8), r.take(65), r.int(8))
        elif kind == EntryType.ATTEST:
            request, model, root = r.int(32), r.int(32), r.int(32)
            proof = r.take(r.int(2))
            entry = AttestEntry(request, model, root, proof, r.int(8))
        else:
            raise EntryError(f"unknown entry type {kind}")
    except ValueError as exc:
        raise EntryError(f"malformed entry: {exc}") from exc
    r.done()
    return entry
