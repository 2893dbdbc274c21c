"""Auditing the ATTEST entries of a consent ledger from public data alone (issue 5 item 6).

For every ATTEST entry, in log order, an auditor checks:

1. the entry parses, and its proof field is a well-formed attestation (:class:`zk.attestation.Attestation`)
   whose request hash, model and grant root are the entry's own;
2. the attestation's grant root was acceptable **when the entry was appended**: the grant-root history is
   rebuilt by replaying the GRANT and REVOKE entries before it (:mod:`consent_chain.root_history`), and asked as
   of the entry's ledger time, with the service's window (a root from before a revocation is refused). Only the
   entries the append rules accept count (:mod:`consent_chain.replay`, in the ledger's EIP-712 domain): a grant
   the patient never signed adds no root, so a proof under it names a root the auditor does not know;
3. ``t`` lies within the window of the entry's time, and the Groth16 proof verifies against the consent
   circuit's verifying key (:func:`zk.attestation.check_attestation`; the auditor holds no ciphertext, so the
   request hash is taken as the service checked it);
4. the entry's time does not go back (the ledger's rule), and no earlier ATTEST entry has its request hash: the
   service scores a request once, so a second entry for one request is a replayed attestation.

That each entry is included in a signed checkpoint is :func:`consent_chain.audit.audit_ledger`'s job; run both
over the same entries (``pchr audit attestations`` does). Pure: entries in, findings out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from consent_chain.eip712 import Domain
from consent_chain.entries import AttestEntry, decode_entry
from consent_chain.errors import EntryError
from consent_chain.replay import RuleReplay
from consent_chain.root_history import RootHistory
from zk.attestation import Attestation, AttestationRefused, check_attestation
from zk.consent_circuit import model_field
from zk.groth16 import PreparedVerifyingKey

__all__ = ["AttestationFinding", "audit_attestations"]


@dataclass(frozen=True)
class AttestationFinding:
    """The verdict on one ATTEST entry: ``problem`` is None when it verifies."""

    index: int
    model_id: str | None
    grantee: str | None
    used_mask: int | None
    time: int
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def audit_attestations(
    raw_entries: Sequence[bytes], prepared: PreparedVerifyingKey, *, window: int, domain: Domain
) -> list[AttestationFinding]:
    """A finding for every ATTEST entry among ``raw_entries`` (the whole log, from entry 0, in order), of the ledger
    whose EIP-712 domain is ``domain``."""
    history = RootHistory()
    rules = RuleReplay(domain=domain)
    first_of: dict[int, int] = {}  # request hash -> the first ATTEST entry with it
    findings: list[AttestationFinding] = []
    for index, data in enumerate(raw_entries):
        try:
            entry = decode_entry(data)
        except EntryError:
            history.skip()  # the ledger audit reports it; it is no tree event
            continue
        violation = rules.check(index, entry)
        if isinstance(entry, AttestEntry):
            finding = _check(index, entry, history, prepared, window)
            first = first_of.setdefault(entry.request_hash, index)
            if finding.ok and violation is not None:
                finding = replace(finding, problem=str(violation))
            elif finding.ok and first != index:
                finding = replace(
                    finding,
                    problem=f"entry {first} already attests this request (request hash {entry.request_hash:064x}): "
                    "a replayed attestation",
                )
            findings.append(finding)
        if violation is not None and violation.refused:
            history.skip()  # the ledger would have refused it: no event of the grant tree
        else:
            history.extend([entry])
    return findings


def _check(
    index: int, entry: AttestEntry, history: RootHistory, prepared: PreparedVerifyingKey, window: int
) -> AttestationFinding:
    try:
        attestation = Attestation.from_bytes(entry.proof)
    except AttestationRefused as exc:
        return AttestationFinding(index, None, None, None, entry.time, str(exc))
    s = attestation.statement
    found = (attestation.model_id, attestation.grantee, s.used_mask)
    if (s.request_hash, model_field(attestation.model_id), s.root) != (
        entry.request_hash,
        entry.model_id,
        entry.grant_root,
    ):
        return AttestationFinding(index, *found, entry.time, "the entry's fields are not its attestation's")
    try:
        check_attestation(
            prepared,
            attestation,
            known_roots=history.known_roots(entry.time, window),
            now=entry.time,
            window_seconds=window,
            expected_request_hash=None,
            retired=history.retired(),
        )
    except AttestationRefused as exc:
        return AttestationFinding(index, *found, entry.time, str(exc))
    return AttestationFinding(index, *found, entry.time, None)
