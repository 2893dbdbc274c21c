"""Signed notes and checkpoints: how the ledger operator signs the log's tree heads, and how anyone checks them.

Specs:

- C2SP signed-note, https://c2sp.org/signed-note (v1.0.0): a text ending in a newline, a blank line, then
  signature lines ``— <key name> base64(key ID || signature)``. Ed25519 is signature type 0x01 and its key ID is
  ``SHA-256(key name || 0x0A || 0x01 || public key)[:4]``. Verifiers ignore signatures from unknown keys, reject
  the note if a known key's signature fails, and require at least one known key to sign. Parsing and limits follow
  the Go reference, golang.org/x/mod/sumdb/note (``Open``, ``Sign``, ``NewVerifier``, ``NewSigner``), including its
  key strings: a verifier key ``<name>+<hex key ID>+<base64(0x01 || public key)>`` and a signer key
  ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``.
- C2SP tlog-checkpoint, https://c2sp.org/tlog-checkpoint: the note text is the origin line, the tree size in
  decimal without leading zeros, the base64 RFC 9162 root hash, then optional non-empty extension lines.

pchr checkpoints carry exactly one extension line, the root of the consent grant tree (a BN254 field element)::

    grant-root <64 lowercase hex digits: the field element, big-endian, 32 bytes>

so a pchr checkpoint is exactly four lines. :meth:`Checkpoint.from_text` parses at a trust boundary and accepts
only the one canonical text of each checkpoint; everything it refuses is a :class:`NoteError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from consent_chain.errors import ForkError, NoteError, ProofError
from consent_chain.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from zk.poseidon import BN254_R

__all__ = [
    "ALG_ED25519",
    "GRANT_ROOT_PREFIX",
    "MAX_SIGNATURES",
    "Checkpoint",
    "Signer",
    "Verifier",
    "check_consistent",
    "key_hash",
    "open_note",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
]

ALG_ED25519 = 0x01
"""Signature type identifier of Ed25519 (signed-note, "Signature types")."""

MAX_SIGNATURES = 100
"""Signature lines a note may carry: the Go reference's limit (the spec asks verifiers to accept at least 16)."""

GRANT_ROOT_PREFIX = "grant-root "
"""pchr's one checkpoint extension line: this prefix, then the grant-tree root as 64 lowercase hex digits."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_MAX_UINT64 = (1 << 64) - 1  # RFC 9162 tree sizes are uint64
_SIZE_LINE = re.compile(r"0|[1-9][0-9]{0,19}")
_GRANT_ROOT_LINE = re.compile(re.escape(GRANT_ROOT_PREFIX) + r"([0-9a-f]{64})")
_KEY_HASH_HEX = re.compile(r"[0-9a-f]{8}")


def key_hash(name: str, public_key: bytes) -> int:
    """The key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian.

    (signed-note, "Ed25519 signatures"; ``keyHash`` in the Go reference.)
    """
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Verifier:
    """A trusted note key: a name and an Ed25519 public key; ``key_hash`` is derived."""

    name: str
    public_key: Ed25519PublicKey
    key_hash: int = field(init=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        object.__setattr__(self, "key_hash", key_hash(self.name, _raw_public(self.public_key)))

    # cryptography's key objects compare by value but do not hash, and print as an address.
    def __hash__(self) -> int:
        return hash((self.name, _raw_public(self.public_key)))

    def __repr__(self) -> str:
        return f"Verifier.from_vkey({self.to_vkey()!r})"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex key ID>+<base64(0x01 || public key)>``; ValueError unless well formed and matching."""
        name, _, rest = vkey.partition("+")
        hash_hex, _, key_b64 = rest.partition("+")
        key = _b64decode(key_b64)
        if not _KEY_HASH_HEX.fullmatch(hash_hex) or key is None or len(key) != 33 or key[0] != ALG_ED25519:
            raise ValueError("malformed verifier key: want <name>+<8 hex digits>+<base64 of 0x01 || 32-byte key>")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(key[1:]))
        if verifier.key_hash != int(hash_hex, 16):
            raise ValueError("verifier key hash does not match its name and key")
        return verifier

    def to_vkey(self) -> str:
        key = bytes([ALG_ED25519]) + _raw_public(self.public_key)
        return f"{self.name}+{self.key_hash:08x}+{base64.b64encode(key).decode()}"


@dataclass(frozen=True, eq=False)
class Signer:
    """A note signing key: a name and an Ed25519 private key (never printed); ``key_hash`` is derived."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)
    key_hash: int = field(init=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        object.__setattr__(self, "key_hash", key_hash(self.name, _raw_public(self.private_key.public_key())))

    @classmethod
    def generate(cls, name: str, *, rng: Callable[[int], bytes] = os.urandom) -> Signer:
        """A new key; ``rng(32)`` supplies the Ed25519 seed (injectable so tests are exact)."""
        return cls(name, Ed25519PrivateKey.from_private_bytes(rng(32)))

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``; ValueError unless well formed."""
        private, _, rest = skey.partition("+")
        key_word, _, rest = rest.partition("+")
        name, _, rest = rest.partition("+")
        hash_hex, _, seed_b64 = rest.partition("+")
        seed = _b64decode(seed_b64)
        if (
            (private, key_word) != ("PRIVATE", "KEY")
            or not _KEY_HASH_HEX.fullmatch(hash_hex)
            or seed is None
            or len(seed) != 33
            or seed[0] != ALG_ED25519
        ):
            raise ValueError("malformed signer key: want PRIVATE+KEY+<name>+<8 hex digits>+<base64 of 0x01 || seed>")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed[1:]))
        if signer.key_hash != int(hash_hex, 16):
            raise ValueError("signer key hash does not match its name and key")
        return signer

    def to_skey(self) -> str:
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return f"PRIVATE+KEY+{self.name}+{self.key_hash:08x}+{base64.b64encode(bytes([ALG_ED25519]) + seed).decode()}"


def sign_note(text: str, signer: Signer) -> str:
    """The signed note: ``text``, a blank line, and ``signer``'s signature line (Ed25519 is deterministic)."""
    problem = _text_problem(text)
    if problem is None and not text.endswith("\n"):
        problem = "note text must end with a newline"
    if problem is not None:
        raise ValueError(problem)
    signature = signer.key_hash.to_bytes(4, "big") + signer.sign(text.encode())
    return f"{text}\n{_SIG_PREFIX}{signer.name} {base64.b64encode(signature).decode()}\n"


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> str:
    """The text of ``note`` once a trusted key's signature on it verifies; NoteError otherwise.

    As the spec says: a signature by a key not in ``verifiers`` (name and key ID together) is ignored; a known
    key's signature that fails rejects the whole note; and at least one known key must have signed.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("malformed note: not UTF-8") from None
    problem = _text_problem(note)
    if problem is not None:
        raise NoteError(f"malformed note: {problem}")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, signature_block = note[: split + 1], note[split + 2 :]
    if not signature_block.endswith("\n"):
        raise NoteError("malformed note: the signatures must end with a newline")
    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")

    known: dict[tuple[str, int], list[Verifier]] = {}
    for v in verifiers:
        same = known.setdefault((v.name, v.key_hash), [])
        if all(_raw_public(v.public_key) != _raw_public(w.public_key) for w in same):
            same.append(v)

    message = text.encode()
    verified: set[tuple[str, int]] = set()
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("malformed note: a signature line must start with an em dash and a space")
        name, _, sig_b64 = line[len(_SIG_PREFIX) :].partition(" ")
        raw = _b64decode(sig_b64)
        if not _is_key_name(name) or raw is None or len(raw) < 5:
            raise NoteError("malformed note: a signature line is not <name> <base64 of key ID || signature>")
        key_id = (name, int.from_bytes(raw[:4], "big"))
        candidates = known.get(key_id)
        if candidates is None or key_id in verified:
            continue  # an unknown key, or a repeat of a signature already checked
        label = f"{name}+{key_id[1]:08x}"
        if len(candidates) > 1:
            raise NoteError(f"ambiguous key {label}")
        if not candidates[0].verify(message, raw[4:]):
            raise NoteError(f"invalid signature for key {label}")
        verified.add(key_id)
    if not verified:
        raise NoteError("note has no verifiable signatures")
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A pchr checkpoint: the log's origin, tree size and RFC 9162 root hash, and the grant-tree root.

    Constructing one checks every field (ValueError); :meth:`from_text` is the parser for untrusted text.
    """

    origin: str
    size: int
    root_hash: bytes
    grant_root: int

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _text_problem(self.origin) is not None:
            raise ValueError("the origin is one non-empty line of UTF-8 text without control characters")
        if not 0 <= self.size <= _MAX_UINT64:
            raise ValueError(f"a tree size is an unsigned 64-bit integer, not {self.size}")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"a root hash is {HASH_SIZE} bytes, not {len(self.root_hash)}")
        if self.size == 0 and self.root_hash != EMPTY_ROOT:
            raise ValueError("an empty tree's root hash is SHA-256 of nothing (RFC 9162 section 2.1.1)")
        if not 0 <= self.grant_root < BN254_R:
            raise ValueError("the grant root is a BN254 field element, 0 <= grant_root < r")

    def to_text(self) -> str:
        root_b64 = base64.b64encode(self.root_hash).decode()
        return f"{self.origin}\n{self.size}\n{root_b64}\n{GRANT_ROOT_PREFIX}{self.grant_root:064x}\n"

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse the canonical four-line text that :meth:`to_text` writes; NoteError for anything else."""
        if not text.endswith("\n"):
            raise NoteError("malformed checkpoint: the text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 4:
            raise NoteError(
                f"malformed checkpoint: want 4 lines (origin, size, root hash, grant root), got {len(lines)}"
            )
        origin, size_line, root_line, grant_line = lines
        if not _SIZE_LINE.fullmatch(size_line):
            raise NoteError("malformed checkpoint: the tree size is not a decimal number without leading zeros")
        root_hash = _b64decode(root_line)
        if root_hash is None or base64.b64encode(root_hash).decode() != root_line:
            raise NoteError("malformed checkpoint: the root hash is not canonical base64")
        grant_match = _GRANT_ROOT_LINE.fullmatch(grant_line)
        if grant_match is None:
            raise NoteError(f"malformed checkpoint: the extension line is not '{GRANT_ROOT_PREFIX}<64 hex digits>'")
        try:
            return cls(origin, int(size_line), root_hash, int(grant_match[1], 16))
        except ValueError as exc:
            raise NoteError(f"malformed checkpoint: {exc}") from exc


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a signed note. The spec recommends that ``signer.name`` be the checkpoint's origin."""
    return sign_note(checkpoint.to_text(), signer)


def verify_checkpoint(note: str | bytes, verifier: Verifier, *, origin: str | None = None) -> Checkpoint:
    """The checkpoint in ``note`` once ``verifier``'s signature verifies; NoteError otherwise.

    Pass ``origin`` to also require that the checkpoint is for that log: one key may sign for several logs.
    """
    checkpoint = Checkpoint.from_text(open_note(note, [verifier]))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


def check_consistent(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that two checkpoints of one log describe one history; ForkError (carrying both) if not.

    ``proof`` is the RFC 9162 consistency proof from the smaller tree to the larger (either may come first).
    Equal sizes need an empty proof, the same root hash and the same grant root: a log that signs two different
    statements about the same tree has equivocated. A proof that fails is reported as a fork too (the log's
    duty is to produce one, tlog-checkpoint "Signatures"), with the :class:`ProofError` as ``__cause__``; a
    caller holding a proof from an untrusted relay should fetch one from the log before publishing the fork.
    """
    if old.origin != new.origin:
        raise ValueError(f"checkpoints of different logs ({old.origin!r}, {new.origin!r}) cannot fork")
    small, large = (old, new) if old.size <= new.size else (new, old)
    if small.size == large.size:
        if proof:
            raise ValueError("checkpoints of equal size need an empty consistency proof")
        if small.root_hash != large.root_hash:
            raise ForkError("two root hashes for the same tree size", old, new)
        if small.grant_root != large.grant_root:
            raise ForkError("two grant roots for the same tree", old, new)
        return
    try:
        verify_consistency(small.size, large.size, small.root_hash, large.root_hash, proof)
    except ProofError as exc:
        raise ForkError(f"no consistency: {exc.reason}", old, new) from exc


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _is_key_name(name: str) -> bool:
    # signed-note, "Format": non-empty, no Unicode spaces, no plus; and it sits on a note line.
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and _text_problem(name) is None


def _check_key_name(name: str) -> None:
    if not _is_key_name(name):
        raise ValueError(f"a key name is non-empty UTF-8 without spaces, '+' or control characters: {name!r}")


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot be in a note (signed-note, "Format"): not UTF-8, or an ASCII control character."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not UTF-8"
    if any(c < " " and c != "\n" for c in text):
        return "control characters other than newline"
    return None


def _b64decode(value: str) -> bytes | None:
    """Standard base64 with padding (RFC 4648 section 4), or None."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
