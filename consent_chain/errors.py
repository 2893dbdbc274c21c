"""Errors raised by the consent ledger: its Merkle log, signed checkpoints, grants and their signatures.

The hierarchy::

    LedgerError                     base of every consent_chain error
    ├── ProofError                  an RFC 9162 inclusion or consistency proof does not verify
    ├── NoteError                   a C2SP signed note or checkpoint is malformed, or no trusted signature verifies
    ├── ForkError                   two checkpoints of one log that no consistency proof links (carries both)
    ├── GrantError                  a grant or Consent that is not a valid pchr grant
    ├── SignatureError              a malformed EIP-712 signature, or one that recovers to no key
    ├── EntryError                  ledger entry bytes that do not parse
    ├── ChainError                  the EVM ledger's node or contract failed, or its answers do not add up
    └── AppendRefused               the ledger refused an entry (``reason`` is one of AppendRefused.REASONS)

To add an error: subclass :class:`LedgerError` (or the narrowest error above that it refines), draw it here, and
list it in ``__all__``. Errors that record evidence keep it in attributes, not only in the message, so that a
caller (a witness, an auditor) can publish it.

Proofs and checkpoints are public data, so these messages say which check failed; they never carry health data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consent_chain.note import Checkpoint

__all__ = [
    "AppendRefused",
    "ChainError",
    "EntryError",
    "ForkError",
    "GrantError",
    "LedgerError",
    "NoteError",
    "ProofError",
    "SignatureError",
]


class LedgerError(Exception):
    """Base of every error the consent ledger raises."""


class ProofError(LedgerError):
    """An inclusion or consistency proof failed RFC 9162 section 2.1.3.2 / 2.1.4.2 verification.

    ``reason`` says which check failed; the sizes and index the proof was checked against are kept as evidence
    (``None`` where they do not apply: ``index`` for a consistency proof, ``old_size`` for an inclusion proof).
    """

    def __init__(
        self,
        reason: str,
        *,
        index: int | None = None,
        size: int | None = None,
        old_size: int | None = None,
        new_size: int | None = None,
    ) -> None:
        where = ", ".join(
            f"{name} {value}"
            for name, value in (("index", index), ("size", size), ("old size", old_size), ("new size", new_size))
            if value is not None
        )
        super().__init__(f"{reason} ({where})" if where else reason)
        self.reason = reason
        self.index = index
        self.size = size
        self.old_size = old_size
        self.new_size = new_size


class NoteError(LedgerError):
    """A signed note or checkpoint was refused: malformed, signed by no trusted key, or a bad signature."""


class ForkError(LedgerError):
    """Two checkpoints of the same origin are inconsistent: the log showed two different histories.

    Both signed statements are the evidence, kept as ``old`` and ``new`` as the caller passed them; when a
    consistency proof failed, the :class:`ProofError` is chained as ``__cause__``.
    """

    def __init__(self, reason: str, old: Checkpoint, new: Checkpoint) -> None:
        super().__init__(f"fork in {old.origin!r}: {reason} (sizes {old.size} and {new.size})")
        self.reason = reason
        self.old = old
        self.new = new


class GrantError(LedgerError):
    """A grant, or the FHIR Consent it maps to, is not a valid pchr grant."""


class SignatureError(LedgerError):
    """An EIP-712 signature is malformed, non-canonical, or recovers to no key."""


class EntryError(LedgerError):
    """Bytes that are not a well-formed ledger entry."""


class ChainError(LedgerError):
    """The EVM ledger backend could not do its work: the node is unreachable or refused a transaction for a
    reason other than the ledger's rules, or the chain's answers are inconsistent (logs that do not add up to
    the contract's size, a log that changed under the local mirror, code at the address that is not the
    ConsentLedger contract). Nothing was appended when this is raised from an append, unless it says so."""


class AppendRefused(LedgerError):
    """The ledger refused to append an entry; nothing of the batch it came in was written.

    ``reason`` is a stable machine-readable code (one of :attr:`REASONS`); the message says it for a person.
    """

    REASONS = (
        "unregistered",  # the signer has no KEY entry, or is not a patient
        "bad-signature",  # malformed, or recovers to someone other than the entry's patient
        "replay",  # the nonce is not the patient's next one
        "duplicate",  # the grant id, or the actor's key, is already on the ledger
        "unknown-grant",  # a revocation of a grant the ledger never saw
        "not-your-grant",  # a revocation signed by someone other than the grant's patient
        "already-revoked",
        "stale",  # issuedAt too far from the ledger's clock
        "bad-commitment",  # a grant commitment that is 0 or not below the BN254 scalar field's order r
        "conflict",  # a concurrent append won the race; retry
    )

    def __init__(self, reason: str, message: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(message)
        self.reason = reason
