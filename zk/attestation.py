"""Consent attestations: a Groth16 proof of the consent statement for one encrypted scoring request.

Spec: ../shared/DESIGN.md section 6 and issue #5 item 6. The statement proven is :mod:`zk.consent_circuit`'s, the
proof system :mod:`zk.groth16`. The grantee makes an :class:`Attestation` with :func:`attest` and sends it with
the request; the scoring service checks it with :func:`check_attestation` before any homomorphic work and appends
its bytes (:meth:`Attestation.to_bytes`) to the ledger as an ATTEST entry; auditors check every ATTEST entry with
the same function against the ledger's root history.

What the circuit cannot check, :func:`check_attestation` does, each refusal an :class:`AttestationRefused` with
its :class:`Refusal` reason: the root must be one of the ledger's grant roots, current or superseded at most
``window_seconds`` before ``now`` (so that after a revocation an attestation against the old root is refused once
the window has passed); ``t`` must be within ``window_seconds`` of ``now``; the request hash must be the one the
service recomputes from the request it received (:meth:`Attestation.request_hash_for`); and the proof must verify.

``request_hash`` is SHA-256 over a domain tag and six length-prefixed fields, reduced mod r::

    SHA-256( "pchr/consent-request/v1" || 0x00
             || field(model id, 32 bytes: the hex id decoded)
             || field(used-feature mask, 8 bytes big-endian)
             || field(t, 8 bytes big-endian, Unix seconds)
             || field(grantee address, 20 bytes)
             || field(CKKS evaluation context digest, 32 bytes: SHA-256 of the public context, models.he)
             || field(ciphertext, its bytes) )  mod r

where ``field(x) = len(x) as 8 bytes big-endian || x``. The domain string names the purpose and version, so no
other hash in pchr can collide with it by construction; the length prefixes make the encoding injective. Reducing
a 256-bit digest mod r (r ~ 2^253.6) maps at most 6 digests to each residue: collision resistance drops by under
3 bits, and a request hash is only ever compared for equality, never used as a key.

An ATTEST entry is :meth:`Attestation.to_bytes`, 421 bytes: the request hash, proof, model id and root that issue #5
names, then the other public inputs, which an auditor needs to verify the proof. Every number is big-endian and
fixed-width, so that each attestation has exactly one encoding (:meth:`Attestation.from_bytes` refuses any other,
and values >= r rather than reducing them)::

    offset  size  field
         0     1  version, 1
         1    32  reqHash
        33   256  proof (zk.keys.Proof.to_bytes: A, B, C as for the EIP-197 precompile)
       289    32  model id (the registry id: SHA-256 of the model artifact)
       321    32  root
       353    20  grantee address
       373     8  usedMask
       381     8  t
       389    32  tag

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final

from consent_chain.grants import Grant, address_field
from consent_chain.state_tree import MerklePath
from ehr.identity import normalize_address
from zk.consent_circuit import Assignment, ConsentStatement, StatementError, assign, model_field
from zk.errors import ProofError, ZkError
from zk.field import CURVE_ORDER
from zk.groth16 import PreparedVerifyingKey, prove, verify
from zk.keys import Proof, ProvingKey

__all__ = [
    "REQUEST_DOMAIN",
    "Attestation",
    "AttestationRefused",
    "Refusal",
    "attest",
    "attest_assignment",
    "check_attestation",
    "request_hash",
]

REQUEST_DOMAIN: Final = b"pchr/consent-request/v1\x00"
_MODEL_ID = re.compile(r"[0-9a-f]{64}")


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def request_hash(
    *, model_id: str, used_mask: int, t: int, grantee: str, context_digest: bytes, ciphertext: bytes
) -> int:
    """The ``reqHash`` of an encrypted scoring request (module docstring), a field element.

    ValueError for a model id that is not 64 lower-case hex digits (a registry id), a mask or time outside
    0..2^64-1, an address that does not parse, or a context digest that is not 32 bytes.
    """
    if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
        raise ValueError("a model id is 64 lower-case hex digits (the SHA-256 of the model artifact)")
    for name, value in (("used-feature mask", used_mask), ("time t", t)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
            raise ValueError(f"the {name} must be an int in 0..2^64-1")
    if not isinstance(context_digest, bytes) or len(context_digest) != 32:
        raise ValueError("the evaluation context digest is 32 bytes (SHA-256)")
    if not isinstance(ciphertext, bytes):
        raise ValueError("the ciphertext is bytes")
    digest = hashlib.sha256()
    digest.update(REQUEST_DOMAIN)
    for part in (
        bytes.fromhex(model_id),
        used_mask.to_bytes(8, "big"),
        t.to_bytes(8, "big"),
        address_field(grantee).to_bytes(20, "big"),
        context_digest,
        ciphertext,
    ):
        digest.update(_field(part))
    return int.from_bytes(digest.digest(), "big") % CURVE_ORDER


class Refusal(StrEnum):
    """Why :func:`check_attestation` (or :meth:`Attestation.from_bytes`) refused an attestation."""

    MALFORMED = "malformed attestation"
    UNKNOWN_ROOT = "unknown grant root"
    STALE_ROOT = "stale grant root"
    CLOCK = "time outside the window"
    REQUEST_HASH = "request hash mismatch"
    PROOF = "invalid proof"


class AttestationRefused(ZkError):
    """An attestation refused at the trust boundary; ``reason`` is the :class:`Refusal`, the message adds public
    facts only (times, which field is malformed), never a grant's private values.
    """

    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _u(data: bytes) -> int:
    return int.from_bytes(data, "big")


@dataclass(frozen=True)
class Attestation:
    """A consent proof for one request: the model id, the statement (public inputs) and the Groth16 proof.

    A value that exists is well formed: the statement's ``model`` is :func:`~zk.consent_circuit.model_field` of
    ``model_id``, its grantee an address (below 2^160), its mask and ``t`` 64-bit numbers; whether the proof
    verifies is :func:`check_attestation`'s question.
    """

    model_id: str
    statement: ConsentStatement
    proof: Proof

    VERSION: ClassVar[int] = 1
    SIZE: ClassVar[int] = 1 + 32 + Proof.SIZE + 32 + 32 + 20 + 8 + 8 + 32

    def __post_init__(self) -> None:
        if not isinstance(self.model_id, str) or not _MODEL_ID.fullmatch(self.model_id):
            raise AttestationRefused(Refusal.MALFORMED, "the model id is not 64 lower-case hex digits")
        if not isinstance(self.statement, ConsentStatement) or not isinstance(self.proof, Proof):
            raise AttestationRefused(Refusal.MALFORMED, "an attestation holds a ConsentStatement and a Proof")
        s = self.statement
        if s.model != model_field(self.model_id):
            raise AttestationRefused(Refusal.MALFORMED, "the statement's model is not this model id")
        if s.grantee >= 1 << 160:
            raise AttestationRefused(Refusal.MALFORMED, "the statement's grantee is not an address (160 bits)")
        if s.used_mask >= 1 << 64 or s.t >= 1 << 64:
            raise AttestationRefused(Refusal.MALFORMED, "the used-feature mask and t are 64-bit numbers")

    @property
    def grantee(self) -> str:
        """The grantee's address, EIP-55 checksummed."""
        return normalize_address("0x" + self.statement.grantee.to_bytes(20, "big").hex())

    def request_hash_for(self, *, context_digest: bytes, ciphertext: bytes) -> int:
        """:func:`request_hash` of a request with this attestation's model, mask, time and grantee.

        This is what a service passes to :func:`check_attestation` as ``expected_request_hash``: the statement's
        fields are inside the hash, so a match binds them to the ciphertext received, and the service must then
        evaluate exactly :attr:`model_id` with ``statement.used_mask`` for :attr:`grantee` (whom it authenticated).
        """
        s = self.statement
        return request_hash(
            model_id=self.model_id,
            used_mask=s.used_mask,
            t=s.t,
            grantee=self.grantee,
            context_digest=context_digest,
            ciphertext=ciphertext,
        )

    def to_bytes(self) -> bytes:
        """The ATTEST entry's bytes (module docstring)."""
        s = self.statement
        return b"".join(
            (
                self.VERSION.to_bytes(1, "big"),
                s.request_hash.to_bytes(32, "big"),
                self.proof.to_bytes(),
                bytes.fromhex(self.model_id),
                s.root.to_bytes(32, "big"),
                s.grantee.to_bytes(20, "big"),
                s.used_mask.to_bytes(8, "big"),
                s.t.to_bytes(8, "big"),
                s.tag.to_bytes(32, "big"),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Attestation:
        """Parse :meth:`to_bytes`'s form strictly; :class:`AttestationRefused` (``MALFORMED``) for anything else:
        another length or version, a number >= r, a proof whose points are not on the curve or in the subgroup.
        """
        if not isinstance(data, bytes) or len(data) != cls.SIZE:
            size = len(data) if isinstance(data, bytes) else type(data).__name__
            raise AttestationRefused(Refusal.MALFORMED, f"an attestation is {cls.SIZE} bytes, not {size}")
        if data[0] != cls.VERSION:
            raise AttestationRefused(Refusal.MALFORMED, f"unknown attestation version {data[0]}")
        proof_end = 33 + Proof.SIZE  # 289
        try:
            proof = Proof.from_bytes(data[33:proof_end])
        except ProofError as exc:
            raise AttestationRefused(Refusal.MALFORMED, str(exc)) from exc
        model_id = data[proof_end : proof_end + 32].hex()
        root, grantee, used_mask, t, tag = (
            _u(data[start : start + size]) for start, size in ((321, 32), (353, 20), (373, 8), (381, 8), (389, 32))
        )
        try:
            statement = ConsentStatement(root, grantee, model_field(model_id), used_mask, t, _u(data[1:33]), tag)
        except StatementError as exc:
            raise AttestationRefused(Refusal.MALFORMED, str(exc)) from exc
        return cls(model_id, statement, proof)


def attest(
    pk: ProvingKey,
    grant: Grant,
    path: MerklePath,
    root: int,
    *,
    used_mask: int,
    t: int,
    request_hash: int,
    rng: random.Random | None = None,
) -> Attestation:
    """Prove that ``grant``, at ``path`` under ``root``, covers a request using ``used_mask`` at ``t`` whose hash
    is ``request_hash`` (:func:`request_hash`; the grantee computes it over its own ciphertext).

    :class:`~zk.consent_circuit.StatementError` when the statement is false (features outside the scope, expired,
    a path that does not lead to ``root``, a revoked grant) or the grant's purpose is not a registry model id;
    no proof is attempted then. ``rng`` blinds the proof (default: the operating system's CSPRNG; inject one
    only in tests).
    """
    _registry_model_id(grant)
    assignment = assign(grant, path, root, used_mask=used_mask, t=t, request_hash=request_hash)
    return attest_assignment(pk, grant, assignment, rng=rng)


def attest_assignment(
    pk: ProvingKey, grant: Grant, assignment: Assignment, *, rng: random.Random | None = None
) -> Attestation:
    """:func:`attest`'s second half, the proof, over a witness that :func:`zk.consent_circuit.assign` made for
    ``grant``: for a caller that times the two halves apart. StatementError when the grant is not for a registry
    model or the witness is for another model."""
    model_id = _registry_model_id(grant)
    if assignment.statement.model != model_field(model_id):
        raise StatementError("the witness is for another model than the grant's")
    return Attestation(model_id, assignment.statement, prove(pk, assignment.wires, rng=rng))


def _registry_model_id(grant: Grant) -> str:
    model_id = grant.purpose.removeprefix("model:").lower()
    if not _MODEL_ID.fullmatch(model_id):
        raise StatementError("the grant is not for a registry model (model:<64 hex digits>)")
    return model_id


def check_attestation(
    prepared_vk: PreparedVerifyingKey,
    attestation: Attestation,
    *,
    known_roots: Mapping[int, int | None],
    now: int,
    window_seconds: int,
    expected_request_hash: int | None,
    retired: Collection[int] = frozenset(),
) -> None:
    """Accept (return None) or refuse (:class:`AttestationRefused` with its :class:`Refusal`) an attestation.

    ``known_roots`` maps each grant root the ledger has had to the Unix time it was last superseded, None for the
    current root. An auditor checking an ATTEST entry passes the history as it stood at the entry's time, and that
    time as ``now``. ``expected_request_hash`` is :meth:`Attestation.request_hash_for` the ciphertext received;
    None only for an auditor, who holds no ciphertext and relies on the service's check.

    The checks, cheapest first: the root is known (``UNKNOWN_ROOT``) and current or superseded at most
    ``window_seconds`` before ``now`` (``STALE_ROOT``); ``|now - t| <= window_seconds`` (``CLOCK``); the request
    hash (``REQUEST_HASH``); the Groth16 proof against the statement (``PROOF``). ``retired`` names roots that
    are stale whatever their age (:mod:`consent_chain.root_history`: every root from before a revocation).
    """
    if not isinstance(window_seconds, int) or window_seconds < 0:
        raise ValueError("the window is a non-negative number of seconds")
    s = attestation.statement
    if s.root not in known_roots:
        raise AttestationRefused(Refusal.UNKNOWN_ROOT, "the root is not one of the ledger's grant roots")
    if s.root in retired:
        raise AttestationRefused(
            Refusal.STALE_ROOT, "the root is from before a revocation, which retires every earlier root at once"
        )
    superseded = known_roots[s.root]
    if superseded is not None and now - superseded > window_seconds:
        raise AttestationRefused(
            Refusal.STALE_ROOT,
            f"the root was superseded {now - superseded} s before now, more than the {window_seconds} s window",
        )
    if abs(now - s.t) > window_seconds:
        raise AttestationRefused(
            Refusal.CLOCK, f"t = {s.t} is {s.t - now:+d} s from now, outside the {window_seconds} s window"
        )
    if expected_request_hash is not None and s.request_hash != expected_request_hash:
        raise AttestationRefused(Refusal.REQUEST_HASH, "the proof is for another request")
    try:
        verify(prepared_vk, s.public_inputs(), attestation.proof)
    except ProofError as exc:
        raise AttestationRefused(Refusal.PROOF, exc.reason) from exc
