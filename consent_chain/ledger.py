"""The consent ledger service: append checked entries, serve proofs and signed checkpoints.

The service is backend-agnostic: a :class:`LedgerBackend` stores the log (entries, RFC 9162 subtree hashes), the
state the append rules read (:class:`~consent_chain.rules.LedgerView`) and the grant state tree, and runs
:func:`~consent_chain.rules.check_entry` inside its own transaction. The SQL backend is the embedded default;
the EVM backend (a later issue) implements the same protocol over a contract.

The service adds what no backend should decide: the clock, the operator's checkpoint signature (C2SP signed note
with the grant-tree root as an extension line), and proofs assembled from the backend's node reader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from consent_chain import merkle
from consent_chain.eip712 import Domain
from consent_chain.entries import Entry, KeyEntry, decode_entry
from consent_chain.note import Checkpoint, Signer, sign_checkpoint
from consent_chain.root_history import RootHistory
from consent_chain.rules import GrantRecord, LedgerView, check_state, verify_signature
from consent_chain.state_tree import MerklePath

__all__ = ["Appended", "Ledger", "LedgerBackend"]

Clock = Callable[[], datetime]
_HISTORY_PAGE = 1000
CheckFn = Callable[[LedgerView, Entry], Entry]


@dataclass(frozen=True)
class Appended:
    """One appended entry: where it is in the log, as stamped, and (for a GRANT) its leaf in the grant tree."""

    index: int
    entry: Entry
    leaf_index: int | None = None


class LedgerBackend(Protocol):
    """Storage for one ledger. ``append`` is atomic: every entry of the batch is appended, or none."""

    def append(self, entries: Sequence[Entry], check: CheckFn) -> list[Appended]: ...

    def size(self) -> int: ...

    def entry_bytes(self, start: int, end: int) -> list[bytes]: ...

    def node(self, level: int, index: int) -> bytes: ...

    def prefetch(self, compute: Callable[[merkle.NodeReader], object]) -> None:
        """Make the nodes ``compute`` reads cheap to read (one round trip); a no-op where reads are already cheap."""
        ...

    def grant(self, grant_id: bytes) -> GrantRecord | None: ...

    def actor_key(self, address: str) -> KeyEntry | None: ...

    def next_nonce(self, patient: str) -> int: ...

    def attestation_entry(self, request_hash: int) -> int | None:
        """The index of the first ATTEST entry with this request hash, None if there is none."""
        ...

    def sync(self) -> tuple[int, int]:
        """Bring the grant tree up to the log's current size, atomically; returns (size, grant root).

        The grant tree is derived state: appends only assign leaves, and the tree is hashed a batch at a time here
        (for a checkpoint, a membership path or the current root), each shared ancestor once. Its root after the
        first n entries is a function of those entries, so anyone recomputes it by replay.
        """
        ...

    def grant_roots(self) -> list[tuple[int, int]]:
        """(log size, grant root after that many entries) for every size the tree was synced to, ascending."""
        ...

    def grant_path(self, leaf_index: int) -> tuple[int, int, MerklePath]:
        """Sync, then (size, grant root, the leaf's membership path) of one consistent state."""
        ...


class Ledger:
    """The consent ledger of one origin, signed by its operator."""

    def __init__(
        self,
        backend: LedgerBackend,
        signer: Signer,
        *,
        origin: str,
        domain: Domain | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.backend = backend
        self.signer = signer
        self.origin = origin
        self.domain = domain or Domain()
        self._clock = clock
        self._signed: tuple[int, str] | None = None
        self._history = RootHistory()
        self._history_lock = threading.Lock()

    def append(self, entries: Sequence[Entry]) -> list[Appended]:
        """Check and append entries atomically (AppendRefused names the first refused entry's reason).

        Signatures are verified first, outside the backend's lock, so several server processes verify in
        parallel; the state checks run inside the backend's transaction.
        """
        for entry in entries:
            verify_signature(entry, domain=self.domain)
        now = int(self._clock().timestamp())
        return self.backend.append(entries, lambda view, entry: check_state(view, entry, now=now))

    def size(self) -> int:
        return self.backend.size()

    def entries(self, start: int, end: int) -> list[Entry]:
        return [decode_entry(raw) for raw in self.backend.entry_bytes(start, end)]

    def root(self, size: int | None = None) -> bytes:
        size = self.size() if size is None else size
        self.backend.prefetch(lambda node: merkle.root(size, node))
        return merkle.root(size, self.backend.node)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self.backend.prefetch(lambda node: merkle.inclusion_proof(index, size, node))
        return merkle.inclusion_proof(index, size, self.backend.node)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        self.backend.prefetch(lambda node: merkle.consistency_proof(old_size, new_size, node))
        return merkle.consistency_proof(old_size, new_size, self.backend.node)

    def checkpoint(self) -> str:
        """The signed checkpoint of the current tree (cached per size: signing is cheap but not free)."""
        size, grant_root = self.backend.sync()
        if self._signed is None or self._signed[0] != size:
            checkpoint = Checkpoint(self.origin, size, self.root(size), grant_root)
            self._signed = (size, sign_checkpoint(checkpoint, self.signer))
        return self._signed[1]

    def grant(self, grant_id: bytes) -> GrantRecord | None:
        return self.backend.grant(grant_id)

    def actor_key(self, address: str) -> KeyEntry | None:
        return self.backend.actor_key(address)

    def next_nonce(self, patient: str) -> int:
        return self.backend.next_nonce(patient)

    def attestation_entry(self, request_hash: int) -> int | None:
        """Where the log already attests a request with this hash (the model service scores a request once)."""
        return self.backend.attestation_entry(request_hash)

    def grant_root(self) -> int:
        """The grant root of the whole log as it is now."""
        return self.backend.sync()[1]

    def grant_roots(self) -> list[tuple[int, int]]:
        return self.backend.grant_roots()

    def grant_path(self, leaf_index: int) -> tuple[int, int, MerklePath]:
        return self.backend.grant_path(leaf_index)

    def known_roots(self, window: int) -> tuple[int, dict[int, int | None], frozenset[int]]:
        """``(now, root -> when superseded, retired roots)``: which grant roots a proof of consent may name now.

        The rule is :mod:`consent_chain.root_history`'s (current root; roots superseded by grants alone within
        ``window`` seconds; nothing from before a revocation). The history is replayed from the log once and
        then extended with each new entry.
        """
        with self._history_lock:
            size = self.size()
            for start in range(self._history.size, size, _HISTORY_PAGE):
                self._history.extend(self.entries(start, min(size, start + _HISTORY_PAGE)))
            now = int(self._clock().timestamp())
            return now, self._history.known_roots(now, window), self._history.retired()
