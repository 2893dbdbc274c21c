"""Auditing a consent ledger from public data alone: checkpoints, consistency, every entry, the grant tree.

An auditor trusts nothing the ledger operator says without checking it:

1. the checkpoint's signature, against the operator key the auditor pinned;
2. consistency between the last checkpoint the auditor saw and the new one (RFC 9162 section 2.1.4): the log was
   only appended to, never rewritten (a failure is a :class:`~consent_chain.errors.ForkError` with both); and the
   new one is not older: an operator that serves an earlier checkpoint (a rollback, say to before a revocation)
   is reported, so that the auditor keeps the newer one and judges the next history against it;
3. every entry: the RFC 9162 root recomputed from all entries equals the signed root; if it does not, each
   entry's inclusion proof is checked to name exactly the entries that were altered;
4. the append rules, replayed over every entry in log order (:mod:`consent_chain.replay`): each GRANT and
   REVOKE signed by its patient in the ledger's EIP-712 domain, each key binding by its actor, grants only from
   patients with a patient key, grant ids and key bindings unique, nonces in order, a grant revoked only by its
   own patient and once, commitments that are grant-tree leaves, ``issuedAt`` within
   :data:`~consent_chain.rules.MAX_SKEW` of the entry's stamped time, and times that never go back. Each
   violation is a problem naming the entry and the rule: an operator that writes its own storage past the rules
   is caught, not trusted;
5. the grant tree: replaying the public GRANT and REVOKE events that the rules accept (a refused entry is left
   out, as the ledger would have refused it) rebuilds the grant root the checkpoint signed.

The auditor brings the ledger's EIP-712 domain, as it brings the operator key: pinned on first use
(:mod:`ehr.ledger_audit`), since patients' signatures are bound to it.

I/O comes in as callables (:class:`LedgerSource`), so the same audit runs against the HTTP API or a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from consent_chain import merkle
from consent_chain.eip712 import Domain
from consent_chain.entries import EntryType, GrantEntry, RevokeEntry, decode_entry
from consent_chain.errors import EntryError, ProofError
from consent_chain.note import Checkpoint, Verifier, check_consistent, verify_checkpoint
from consent_chain.replay import RuleReplay, Violation
from consent_chain.state_tree import GrantTree

__all__ = ["AuditReport", "LedgerSource", "audit_ledger"]

_PAGE = 1000


class LedgerSource(Protocol):
    def checkpoint(self) -> str: ...

    def entries(self, start: int, end: int) -> list[bytes]: ...

    def inclusion_proof(self, index: int, size: int) -> list[bytes]: ...

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...


@dataclass
class AuditReport:
    checkpoint: Checkpoint
    previous: Checkpoint | None
    entries: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    altered: list[int] = field(default_factory=list)  # entries whose bytes are not what the log committed to
    violations: list[Violation] = field(default_factory=list)  # entries that break the append rules
    problems: list[str] = field(default_factory=list)  # every finding, the violations among them

    @property
    def clean(self) -> bool:
        return not self.altered and not self.problems


def audit_ledger(
    source: LedgerSource, verifier: Verifier, *, domain: Domain, previous: Checkpoint | None = None
) -> AuditReport:
    """Audit the ledger behind ``source``, whose EIP-712 domain is ``domain``; raises NoteError/ForkError for a bad
    or forked checkpoint."""
    checkpoint = verify_checkpoint(source.checkpoint(), verifier)
    if previous is not None:
        if previous.origin != checkpoint.origin:
            raise ValueError(f"checkpoint origin {checkpoint.origin!r} is not the audited {previous.origin!r}")
        proof: Sequence[bytes] = []
        if previous.size != checkpoint.size:
            small, large = sorted((previous.size, checkpoint.size))
            proof = source.consistency_proof(small, large) if small else []
        check_consistent(previous, checkpoint, proof)
    report = AuditReport(checkpoint, previous)
    if previous is not None and checkpoint.size < previous.size:
        report.problems.append(
            f"the ledger served a checkpoint of {checkpoint.size} entries, older than the {previous.size} already "
            "verified: a rollback (the newer checkpoint stays the one later histories must extend)"
        )

    size = checkpoint.size
    raw: list[bytes] = []
    for start in range(0, size, _PAGE):
        raw.extend(source.entries(start, min(size, start + _PAGE)))
    if len(raw) != size:
        report.problems.append(f"the ledger served {len(raw)} entries for a checkpoint of {size}")
        return report
    report.entries = size

    tree = merkle.InMemoryTree(raw)
    if tree.root() != checkpoint.root_hash:
        for index, data in enumerate(raw):
            try:
                merkle.verify_inclusion(
                    merkle.hash_leaf(data), index, size, source.inclusion_proof(index, size), checkpoint.root_hash
                )
            except ProofError:
                report.altered.append(index)
        if not report.altered:
            report.problems.append("the entries do not hash to the signed root, and no single entry explains it")

    rules = RuleReplay(domain=domain)
    grants = GrantTree()
    leaf_of: dict[bytes, int] = {}
    for index, data in enumerate(raw):
        try:
            entry = decode_entry(data)
        except EntryError as exc:
            report.problems.append(f"entry {index} does not parse: {exc}")
            continue
        name = EntryType(entry.entry_type).name
        report.counts[name] = report.counts.get(name, 0) + 1
        violation = rules.check(index, entry)
        if violation is not None:
            report.violations.append(violation)
            report.problems.append(str(violation))
            if violation.refused:
                continue
        if isinstance(entry, GrantEntry):
            leaf_of[entry.grant_id] = grants.append(entry.commitment)
        elif isinstance(entry, RevokeEntry) and entry.grant_id in leaf_of:
            grants.revoke(leaf_of[entry.grant_id])
    if grants.root != checkpoint.grant_root:
        report.problems.append(
            "replaying the GRANT and REVOKE entries the rules accept does not give the signed grant root"
        )
    return report
