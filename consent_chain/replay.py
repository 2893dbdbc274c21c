"""The ledger's append rules replayed over a whole log, as an auditor does: which entries the rules refuse.

The operator runs :mod:`consent_chain.rules` when it appends, but an auditor trusts nothing the operator says, and an
operator that writes its own storage (a database, or its copy of the chain) can put on the log what the rules
would refuse. So the audits run the rules again over the public entries, in log order: each entry's signature
(:func:`~consent_chain.rules.verify_signature`, in the ledger's EIP-712 domain) and its state
(:func:`~consent_chain.rules.check_state`) against an in-memory :class:`~consent_chain.rules.LedgerView` built
from the entries before it (key bindings and roles, grants and whose they are, nonces). A GRANT the patient never
signed, a REVOKE by anyone but the grant's own patient, a replayed nonce, a reused grant id or key binding, a
commitment no grant tree holds: each is a :class:`Violation` naming the entry and the rule.

Two rules differ from the append path, because an auditor does not see the ledger's clock:

- ``issuedAt`` was checked against the clock at append time; here it is checked against the entry's stamped
  ``time`` (within :data:`~consent_chain.rules.MAX_SKEW`);
- the rules stamp each entry ``max(clock, last entry's time)``, so an entry stamped before an entry ahead of it in
  the log was not stamped by them: ``time-went-back``.

An entry the rules refuse is left out of the replayed state, and the audits leave it out of the grant tree they
rebuild (so a proof of consent under a forged grant names a root the auditor never sees). Later entries are judged
without it, so one that counted on it is named too (the patient's next grant, whose nonce follows the refused
one's; a revocation of a forged grant). An entry whose time went back is reported but kept: its signature and
state hold, only its stamp is wrong.

Pure: entries in, verdicts out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from consent_chain.eip712 import Domain
from consent_chain.entries import Entry, EntryType, GrantEntry, KeyEntry, RevokeEntry
from consent_chain.errors import AppendRefused
from consent_chain.rules import GrantRecord, check_state, verify_signature

__all__ = ["TIME_WENT_BACK", "RuleReplay", "Violation"]

TIME_WENT_BACK = "time-went-back"


@dataclass(frozen=True)
class Violation:
    """Entry ``index`` breaks ``rule`` (an :attr:`AppendRefused.REASONS` code, or :data:`TIME_WENT_BACK`).

    ``refused``: the rules would not have appended it at all (it is left out of the replayed state).
    """

    index: int
    entry_type: str
    rule: str
    detail: str
    refused: bool

    def __str__(self) -> str:
        return f"entry {self.index} ({self.entry_type}): {self.rule}: {self.detail}"


class _ReplayedState:
    """The state the rules read, from the entries replayed so far (a :class:`~consent_chain.rules.LedgerView`)."""

    def __init__(self) -> None:
        self.keys: dict[str, KeyEntry] = {}
        self.nonces: dict[str, int] = {}
        self.grants: dict[bytes, GrantRecord] = {}
        self.leaves = 0

    def actor_key(self, address: str) -> KeyEntry | None:
        return self.keys.get(address)

    def next_nonce(self, patient: str) -> int:
        return self.nonces.get(patient, 0)

    def grant(self, grant_id: bytes) -> GrantRecord | None:
        return self.grants.get(grant_id)

    def last_time(self) -> int:
        # 0, so that check_state stamps each entry with its own time and checks issuedAt against that; the replay
        # checks the order of the stamps itself (RuleReplay.check).
        return 0

    def add(self, index: int, entry: Entry) -> None:
        if isinstance(entry, KeyEntry):
            self.keys[entry.actor] = entry
        elif isinstance(entry, GrantEntry):
            self.nonces[entry.patient] = entry.nonce + 1
            self.grants[entry.grant_id] = GrantRecord(entry.grant_id, entry.patient, self.leaves, index, False)
            self.leaves += 1
        elif isinstance(entry, RevokeEntry):
            self.nonces[entry.patient] = entry.nonce + 1
            self.grants[entry.grant_id] = dataclasses.replace(self.grants[entry.grant_id], revoked=True)


class RuleReplay:
    """The append rules over one log, fed its entries in order from entry 0 (module docstring)."""

    def __init__(self, *, domain: Domain) -> None:
        self.domain = domain
        self._state = _ReplayedState()
        self._last: tuple[int, int] | None = None  # (index, time) of the latest-stamped entry kept so far

    def check(self, index: int, entry: Entry) -> Violation | None:
        """The rule ``entry`` (log entry ``index``) breaks, if any; an entry not refused joins the state."""
        kind = EntryType(entry.entry_type).name
        try:
            verify_signature(entry, domain=self.domain)
            check_state(self._state, entry, now=entry.time)
        except AppendRefused as exc:
            return Violation(index, kind, exc.reason, str(exc), refused=True)
        self._state.add(index, entry)
        last = self._last
        if last is not None and entry.time < last[1]:
            return Violation(
                index,
                kind,
                TIME_WENT_BACK,
                f"stamped {entry.time}, before entry {last[0]}'s {last[1]}: the ledger's time never goes back",
                refused=False,
            )
        self._last = (index, entry.time)
        return None
