"""The ledger's append rules, as a pure function of the entry and the ledger's current state.

Every backend (SQL, EVM) runs exactly these checks inside its own transaction, against the state that the
transaction sees, so two racing appends cannot both pass:

- KEY: one key binding per actor; the binding signature must recover to the actor (EIP-191).
- GRANT: the EIP-712 signature recovers to the entry's patient; the commitment is a non-zero element of the
  BN254 scalar field (``0 < c < r``: a grant-tree leaf, where 0 marks an empty one); the patient has a KEY entry
  as a patient; the grant id is new; the nonce is the patient's next one (no replays); ``issuedAt`` is within
  :data:`MAX_SKEW` of the ledger's clock.
- REVOKE: the grant exists and is not revoked; the signature recovers to the grant's own patient; nonce and
  ``issuedAt`` as for a grant.
- Every entry gets the ledger's time, which never goes back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from consent_chain.eip712 import Domain, recover_signer_bytes
from consent_chain.entries import AttestEntry, Entry, GrantEntry, KeyEntry, RevokeEntry
from consent_chain.errors import AppendRefused, SignatureError
from ehr.identity import ActorPublic, BindingError, Role
from zk.poseidon import BN254_R

__all__ = ["MAX_SKEW", "GrantRecord", "LedgerView", "check_entry", "check_state", "verify_signature"]

MAX_SKEW = 600  # seconds: a signed grant or revocation must be submitted within ten minutes of signing


@dataclass(frozen=True)
class GrantRecord:
    """What the ledger knows of a grant: whose it is, where it sits, whether it was revoked."""

    grant_id: bytes
    patient: str
    leaf_index: int
    entry_index: int
    revoked: bool


class LedgerView(Protocol):
    """The state the rules read; each backend serves it from inside its append transaction."""

    def actor_key(self, address: str) -> KeyEntry | None: ...

    def next_nonce(self, patient: str) -> int: ...

    def grant(self, grant_id: bytes) -> GrantRecord | None: ...

    def last_time(self) -> int: ...


def _signer_is(domain: Domain, entry: GrantEntry | RevokeEntry, expected: str) -> None:
    try:
        signer = recover_signer_bytes(domain, entry.message(), entry.signature)
    except SignatureError as exc:
        raise AppendRefused("bad-signature", f"signature is malformed: {exc}") from exc
    if signer != bytes.fromhex(expected[2:]):
        raise AppendRefused("bad-signature", "signature was not made by the patient the entry names")


def _fresh(view: LedgerView, entry: GrantEntry | RevokeEntry, now: int) -> None:
    if abs(entry.issued_at - now) > MAX_SKEW:
        raise AppendRefused("stale", f"issuedAt is more than {MAX_SKEW} s from the ledger's clock")
    expected = view.next_nonce(entry.patient)
    if entry.nonce != expected:
        raise AppendRefused("replay", f"nonce {entry.nonce} is not the patient's next ({expected})")


def verify_signature(entry: Entry, *, domain: Domain) -> None:
    """The stateless half of the rules: the entry's signature is well formed and made by the key it names.

    Run before the backend's transaction (in parallel, off the lock); :func:`check_state` does the rest inside.
    """
    if isinstance(entry, KeyEntry):
        try:
            ActorPublic.from_binding(entry.actor, entry.role, entry.x25519_public, entry.binding_signature)
        except BindingError as exc:
            raise AppendRefused("bad-signature", f"key binding does not verify: {exc}") from exc
    elif isinstance(entry, GrantEntry | RevokeEntry):
        _signer_is(domain, entry, entry.patient)
    elif not isinstance(entry, AttestEntry):
        raise TypeError(f"not a ledger entry: {type(entry).__name__}")


def check_state(view: LedgerView, entry: Entry, *, now: int) -> Entry:
    """The stateful half: check ``entry`` against the ledger as the append transaction sees it.

    Returns the entry stamped with the ledger's time (which never goes back), or raises AppendRefused.
    """
    time = max(now, view.last_time())
    if isinstance(entry, KeyEntry):
        if view.actor_key(entry.actor) is not None:
            raise AppendRefused("duplicate", "this actor already has a key binding on the ledger")
    elif isinstance(entry, GrantEntry):
        # Checked here, not left to the grant tree: a commitment the tree cannot hold would be on the log for good,
        # and every later sync of the tree (checkpoints, proofs of consent) would fail on it.
        if not 0 < entry.commitment < BN254_R:
            raise AppendRefused("bad-commitment", "the grant's commitment is not a non-zero field element (0 < c < r)")
        key = view.actor_key(entry.patient)
        if key is None or key.role is not Role.PATIENT:
            raise AppendRefused("unregistered", "the grant's patient has no patient key on the ledger")
        if view.grant(entry.grant_id) is not None:
            raise AppendRefused("duplicate", "a grant with this id is already on the ledger")
        _fresh(view, entry, time)
    elif isinstance(entry, RevokeEntry):
        record = view.grant(entry.grant_id)
        if record is None:
            raise AppendRefused("unknown-grant", "no grant with this id is on the ledger")
        if record.patient != entry.patient:
            raise AppendRefused("not-your-grant", "only the grant's own patient may revoke it")
        if record.revoked:
            raise AppendRefused("already-revoked", "this grant is already revoked")
        _fresh(view, entry, time)
    elif not isinstance(entry, AttestEntry):
        raise TypeError(f"not a ledger entry: {type(entry).__name__}")
    return dataclasses.replace(entry, time=time)


def check_entry(view: LedgerView, entry: Entry, *, domain: Domain, now: int) -> Entry:
    """Both halves: the signature, then the state."""
    verify_signature(entry, domain=domain)
    return check_state(view, entry, now=now)
