"""The grant roots a consent ledger has had, and which of them a proof of consent may still name.

A zero-knowledge attestation (:mod:`zk.attestation`, DESIGN.md section 6) proves that a grant is a leaf of the
grant tree with some root; the verifier must decide whether that root is good enough *now*. The rule here:

- the **current** root is always accepted;
- a root superseded by **new grants only** stays acceptable for ``window`` seconds after it was superseded: a new
  grant takes no one's rights away, so a proof against the root just before it is still true, and a clinician
  whose proof raced someone else's grant need not prove again;
- a **revocation retires every earlier root at once**: after it, a proof naming any root from before it is
  refused, even inside the window (the revoked grant's leaf is 0 in every later root, so no proof against a
  later root can name it either).

:meth:`RootHistory.known_roots` gives this as the mapping :func:`zk.attestation.check_attestation` takes (root ->
the Unix time it was superseded, None for the current root), with every retired root reported as superseded
``window + 1`` seconds before ``now`` (stale for any caller); :meth:`RootHistory.retired` names those roots, so
that the refusal can say why. The model service asks it of the live ledger; an auditor rebuilds the same
history from the public entries and asks it as of each ATTEST entry's time, so both reach the same verdict.

Pure: the history is built by replaying GRANT and REVOKE entries in log order, exactly as the ledger assigns
leaves (:mod:`consent_chain.state_tree`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consent_chain.entries import Entry, GrantEntry, RevokeEntry
from consent_chain.state_tree import GrantTree

__all__ = ["RootChange", "RootHistory"]


@dataclass(frozen=True)
class RootChange:
    """The grant root became ``root`` with entry ``index`` (time ``time``); ``revocation`` if a REVOKE did it."""

    index: int
    root: int
    time: int
    revocation: bool


class RootHistory:
    """Every grant root of a ledger in order, built incrementally from its entries (module docstring)."""

    def __init__(self) -> None:
        self._tree = GrantTree()
        self._leaf_of: dict[bytes, int] = {}
        self._size = 0
        self._changes: list[RootChange] = [RootChange(-1, self._tree.root, 0, False)]
        self._last_revocation = 0  # position in _changes of the latest revocation (0: none yet)

    @property
    def size(self) -> int:
        """Entries consumed so far."""
        return self._size

    @property
    def current(self) -> int:
        return self._changes[-1].root

    @property
    def changes(self) -> tuple[RootChange, ...]:
        return tuple(self._changes)

    def extend(self, entries: Iterable[Entry]) -> None:
        """Consume the next entries of the log, in order (entry ``size``, ``size + 1``, ...)."""
        for entry in entries:
            index = self._size
            self._size += 1
            if isinstance(entry, GrantEntry):
                self._leaf_of[entry.grant_id] = self._tree.append(entry.commitment)
                revocation = False
            elif isinstance(entry, RevokeEntry) and entry.grant_id in self._leaf_of:
                self._tree.revoke(self._leaf_of[entry.grant_id])
                revocation = True
            else:
                continue
            root = self._tree.root
            if root != self._changes[-1].root:
                self._changes.append(RootChange(index, root, entry.time, revocation))
                if revocation:
                    self._last_revocation = len(self._changes) - 1

    def skip(self) -> None:
        """Consume the next entry of the log as no event at all: one the append rules refuse (an auditor's replay,
        :mod:`consent_chain.replay`), which the ledger would never have appended."""
        self._size += 1

    def retired(self) -> frozenset[int]:
        """Roots whose latest standing is from before the latest revocation: stale whatever their age."""
        latest: dict[int, int] = {change.root: position for position, change in enumerate(self._changes)}
        return frozenset(root for root, position in latest.items() if position < self._last_revocation)

    def known_roots(self, now: int, window: int) -> dict[int, int | None]:
        """Root -> when it was superseded (None: current), for :func:`zk.attestation.check_attestation`.

        Roots before the latest revocation come out superseded ``window + 1`` seconds before ``now``: stale
        whatever their age. A root that recurs takes its latest standing.
        """
        retired_at = now - window - 1
        known: dict[int, int | None] = {}
        changes = self._changes
        for position, change in enumerate(changes):
            if position + 1 == len(changes):
                known[change.root] = None
            elif position < self._last_revocation:
                known[change.root] = retired_at
            else:
                known[change.root] = changes[position + 1].time
        return known
