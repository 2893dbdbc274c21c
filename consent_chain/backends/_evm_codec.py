"""The ConsentLedger contract's wire formats, as pure functions: the packed append calldata and the entry events.

Spec: consent_chain/contracts/ConsentLedger.vy (its docstring and ``append``), the Solidity ABI specification's
event encoding (https://docs.soliditylang.org/en/latest/abi-spec.html#events), and the canonical entry encoding
of :mod:`consent_chain.entries`.

- **Calldata** of ``append(uint64 time)``: the selector, ``time`` as one ABI word, then the batch's entries packed,
  each its canonical encoding without the trailing 8-byte time (the contract stamps it).
- **Events**: one per entry, carrying its log index, every field of its canonical encoding and its time, so
  :func:`decode_event` rebuilds the exact leaf bytes of the RFC 9162 log. ``grantId`` and ``patient`` (and
  ``actor``) are indexed topics; everything else is in the data, one 32-byte word a field, with ATTEST's proof
  as the one dynamic field.

Pure: no web3 here (the EVM backend adapts the node's JSON-RPC logs to ``topics`` and ``data`` bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from Crypto.Hash import keccak as keccak_256

from consent_chain.entries import AttestEntry, Entry, GrantEntry, KeyEntry, RevokeEntry, decode_entry
from consent_chain.errors import EntryError

__all__ = [
    "APPEND_SELECTOR",
    "ENTRY_TOPICS",
    "EVENT_SIGNATURES",
    "MAX_PROOF",
    "LoggedEntry",
    "append_calldata",
    "decode_event",
    "decode_revert_reason",
]

_WORD = 32


def _keccak(data: bytes) -> bytes:
    return keccak_256.new(digest_bits=256, data=data).digest()


APPEND_SELECTOR = _keccak(b"append(uint64)")[:4]
EVENT_SIGNATURES = {
    "Key": "Key(uint256,address,uint8,bytes32,bytes32,bytes32,uint8,uint64)",
    "Grant": "Grant(uint256,bytes32,address,uint256,uint256,uint64,bytes32,bytes32,uint8,uint64)",
    "Revoke": "Revoke(uint256,bytes32,address,uint256,uint64,bytes32,bytes32,uint8,uint64)",
    "Attest": "Attest(uint256,uint256,uint256,uint256,bytes,uint64)",
}
_TOPIC = {name: _keccak(signature.encode()) for name, signature in EVENT_SIGNATURES.items()}
ENTRY_TOPICS = frozenset(_TOPIC.values())
"""topic0 of the four entry events (the contract emits one other event, OperatorChanged, which is not an entry)."""

_ERROR_STRING = _keccak(b"Error(string)")[:4]  # Solidity's and Vyper's revert-with-reason selector
_SIZES = {KeyEntry: 119, GrantEntry: 190, RevokeEntry: 158}  # canonical length without the time
MAX_PROOF = 2047  # the contract's bound on an ATTEST proof


@dataclass(frozen=True)
class LoggedEntry:
    """One entry as the contract logged it: its index in the log and the entry, stamped with its time."""

    index: int
    entry: Entry


def append_calldata(entries: Sequence[Entry], time: int) -> bytes:
    """The calldata of ``append(time)`` with ``entries`` packed after it, in order."""
    if not 0 <= time < 1 << 64:
        raise ValueError("time must be a uint64")
    parts = [APPEND_SELECTOR, time.to_bytes(_WORD, "big")]
    for entry in entries:
        data = entry.to_bytes()[:-8]
        if isinstance(entry, AttestEntry):
            if len(entry.proof) > MAX_PROOF:
                raise EntryError(f"an ATTEST proof on the EVM ledger is at most {MAX_PROOF} bytes")
        elif len(data) != _SIZES[type(entry)]:
            raise EntryError(f"a {type(entry).__name__} packs to {_SIZES[type(entry)]} bytes, not {len(data)}")
        parts.append(data)
    return b"".join(parts)


def _words(data: bytes, count: int) -> list[int]:
    if len(data) < count * _WORD:
        raise EntryError(f"event data holds {len(data)} bytes, fewer than {count} words")
    return [int.from_bytes(data[i * _WORD : (i + 1) * _WORD], "big") for i in range(count)]


def _topic_address(topic: bytes) -> bytes:
    if len(topic) != _WORD or any(topic[:12]):
        raise EntryError("an address topic is a 32-byte word with 12 leading zero bytes")
    return bytes(topic[12:])


def _u(value: int, size: int) -> bytes:
    if value >= 1 << (8 * size):
        raise EntryError(f"an event field does not fit the entry's {size}-byte field")
    return value.to_bytes(size, "big")


def _expect_topics(topics: Sequence[bytes], count: int) -> None:
    if len(topics) != count:
        raise EntryError(f"expected {count} topics, got {len(topics)}")


def decode_event(topics: Sequence[bytes], data: bytes) -> LoggedEntry | None:
    """The entry an event of the contract records, or None for an event that is not an entry.

    The event's fields are laid out as the entry's canonical bytes and parsed by
    :func:`consent_chain.entries.decode_entry`, so the leaf is exactly what the contract was given, and anything
    an entry could not hold is refused (EntryError).
    """
    if not topics or topics[0] not in ENTRY_TOPICS:
        return None
    kind = topics[0]
    if kind == _TOPIC["Key"]:
        _expect_topics(topics, 2)
        index, role, x25519, r, s, v, time = _words(data, 7)
        fields = [b"\x01", _topic_address(topics[1]), _u(role, 1), _u(x25519, 32)]
    elif kind == _TOPIC["Grant"]:
        _expect_topics(topics, 3)
        index, commitment, nonce, issued_at, r, s, v, time = _words(data, 8)
        fields = [b"\x02", bytes(topics[1]), _topic_address(topics[2]), _u(commitment, 32), _u(nonce, 32)]
        fields.append(_u(issued_at, 8))
    elif kind == _TOPIC["Revoke"]:
        _expect_topics(topics, 3)
        index, nonce, issued_at, r, s, v, time = _words(data, 7)
        fields = [b"\x03", bytes(topics[1]), _topic_address(topics[2]), _u(nonce, 32), _u(issued_at, 8)]
    else:
        _expect_topics(topics, 1)
        index, request_hash, model_id, grant_root, offset, time = _words(data, 6)
        if offset != 6 * _WORD:
            raise EntryError("an Attest event's proof is not where the ABI puts it")
        (length,) = _words(data[offset:], 1)
        proof = data[offset + _WORD : offset + _WORD + length]
        if len(proof) != length:
            raise EntryError("an Attest event's proof is truncated")
        fields = [b"\x04", _u(request_hash, 32), _u(model_id, 32), _u(grant_root, 32), _u(length, 2), proof]
        return LoggedEntry(index, decode_entry(b"".join([*fields, _u(time, 8)])))
    signature = [_u(r, 32), _u(s, 32), _u(v, 1)]
    return LoggedEntry(index, decode_entry(b"".join([*fields, *signature, _u(time, 8)])))


def decode_revert_reason(data: bytes) -> str | None:
    """The reason string of ``Error(string)`` revert data, or None if the data is not one."""
    if len(data) < 4 + 2 * _WORD or data[:4] != _ERROR_STRING:
        return None
    body = data[4:]
    offset, length = int.from_bytes(body[:_WORD], "big"), 0
    if offset + _WORD > len(body):
        return None
    length = int.from_bytes(body[offset : offset + _WORD], "big")
    raw = body[offset + _WORD : offset + _WORD + length]
    if len(raw) != length:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
