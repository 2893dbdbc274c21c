"""``pchr audit ledger``: audit a vault's consent ledger over HTTP, remembering the last checkpoint seen.

The state file keeps what the auditor trusts from one run to the next: the operator's checkpoint key, the ledger's
EIP-712 domain (which patients' grant and revocation signatures are bound to, so the audit re-checks them in it),
both pinned on first use, and the last checkpoint verified. A vault that later serves another domain is not
believed: the pinned one stays, and signatures made in any other do not verify.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import httpx

from consent_chain.audit import audit_ledger
from consent_chain.eip712 import Domain, sql_ledger_domain
from consent_chain.errors import ForkError, NoteError
from consent_chain.note import Checkpoint, Verifier

__all__ = ["HttpLedgerSource", "run_attestation_audit", "run_ledger_audit"]


class HttpLedgerSource:
    """The ledger's public API as the audit's :class:`~consent_chain.audit.LedgerSource`."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def _get(self, path: str, **params: int) -> httpx.Response:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response

    def checkpoint(self) -> str:
        return self._get("/ledger/checkpoint").text

    def entries(self, start: int, end: int) -> list[bytes]:
        return [base64.b64decode(e) for e in self._get("/ledger/entries", start=start, end=end).json()["entries"]]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        data = self._get("/ledger/proof/inclusion", index=index, size=size).json()
        return [base64.b64decode(p) for p in data["proof"]]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        data = self._get("/ledger/proof/consistency", old=old_size, new=new_size).json()
        return [base64.b64decode(p) for p in data["proof"]]


def run_ledger_audit(
    vault: str, state: Path, vkey: str | None, *, echo: Callable[[str], None] = print, http: httpx.Client | None = None
) -> int:
    """Audit and print a report; returns 0 when clean, 1 when anything failed."""
    saved = json.loads(state.read_text()) if state.exists() else {}
    client = http or httpx.Client(base_url=vault, timeout=60)
    try:
        pinned = vkey or saved.get("key") or client.get("/ledger/key").text.strip()
        if not (vkey or saved.get("key")):
            echo(f"pinning the operator key on first use: {pinned}")
        verifier = Verifier.from_vkey(pinned)
        if "domain" in saved:
            domain = Domain.from_json(saved["domain"])
        else:
            try:
                domain = Domain.from_json(client.get("/ledger/domain").raise_for_status().json())
            except ValueError as exc:
                echo(f"BAD DOMAIN: the ledger's EIP-712 domain does not parse: {exc}")
                return 1
            echo(
                f"pinning the ledger's EIP-712 domain on first use: {domain.name!r} version {domain.version}, "
                f"chain {domain.chain_id}, contract {domain.to_json()['verifyingContract']}"
            )
            if domain == sql_ledger_domain(verifier.to_vkey(), chain_id=domain.chain_id):
                echo("  (derived from the pinned operator key: this ledger's own, no other ledger signs in it)")
            else:
                echo(
                    "  (not derived from the operator key: an EVM ledger's contract, or a domain the operator set; "
                    "check that the contract is this ledger's, or signatures made for another ledger could count)"
                )
        previous = Checkpoint.from_text(saved["checkpoint"]) if "checkpoint" in saved else None
        try:
            report = audit_ledger(HttpLedgerSource(client), verifier, domain=domain, previous=previous)
        except ForkError as exc:
            echo(f"FORK: {exc}")
            echo(f"  seen before: size {exc.old.size} root {exc.old.root_hash.hex()}")
            echo(f"  served now:  size {exc.new.size} root {exc.new.root_hash.hex()}")
            return 1
        except NoteError as exc:
            echo(f"BAD CHECKPOINT: {exc}")
            return 1
    finally:
        if http is None:
            client.close()
    cp = report.checkpoint
    echo(f"checkpoint {cp.origin}: {cp.size} entries, root {cp.root_hash.hex()[:16]}…, signature valid")
    if previous is not None:
        echo(f"consistent with the checkpoint seen before (size {previous.size})")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items()))
    if not report.altered:
        echo(f"every entry is included in the signed root ({counts})")
    if not report.violations:
        echo("every entry follows the append rules, replayed: each signature in the pinned domain, keys, nonces, times")
    for index in report.altered:
        echo(f"ALTERED: entry {index} is not what the log committed to")
    for problem in report.problems:
        echo(f"PROBLEM: {problem}")
    if report.clean:
        echo(f"the grant tree replayed from the public events gives the signed grant root {str(cp.grant_root)[:20]}…")
        state.write_text(
            json.dumps({**saved, "key": pinned, "domain": domain.to_json(), "checkpoint": cp.to_text()}, indent=2)
        )
        echo("audit clean")
        return 0
    return 1


def run_attestation_audit(
    vault: str, state: Path, vkey: str | None, *, echo: Callable[[str], None] = print, http: httpx.Client | None = None
) -> int:
    """``pchr audit attestations``: the ledger audit, then every ATTEST entry's proof and grant root.

    The consent circuit's verifying key and the service's window are pinned in ``state`` on first use, like the
    operator key. Returns 0 when everything verifies, 1 otherwise.
    """
    from consent_chain.attest_audit import audit_attestations
    from zk.groth16 import prepare
    from zk.snarkjs import verifying_key_from_json

    client = http or httpx.Client(base_url=vault, timeout=60)
    try:
        if run_ledger_audit(vault, state, vkey, echo=echo, http=client) != 0:
            return 1
        saved = json.loads(state.read_text())
        if "zk" not in saved:
            described = client.get("/zk").raise_for_status().json()
            key = client.get("/zk/verifying-key").raise_for_status().json()
            saved["zk"] = {"verifyingKey": key, "windowSeconds": int(described["windowSeconds"])}
            echo(
                f"pinning the consent circuit's verifying key on first use ({described['circuit']}, "
                f"{described['constraints']} constraints, {described['setup']} setup)"
            )
            if described.get("warning"):
                echo(f"  WARNING: {described['warning']}")
        prepared = prepare(verifying_key_from_json(saved["zk"]["verifyingKey"]))
        window = int(saved["zk"]["windowSeconds"])
        size = Checkpoint.from_text(saved["checkpoint"]).size
        source = HttpLedgerSource(client)
        raw: list[bytes] = []
        for start in range(0, size, 1000):
            raw.extend(source.entries(start, min(size, start + 1000)))
    finally:
        if http is None:
            client.close()
    findings = audit_attestations(raw, prepared, window=window, domain=Domain.from_json(saved["domain"]))
    for f in findings:
        if f.ok:
            echo(
                f"ATTEST entry {f.index}: proof valid, grant root acceptable at its time; "
                f"model {(f.model_id or '')[:12]}…, grantee {f.grantee}, features {f.used_mask:#x}"
            )
        else:
            echo(f"ATTEST entry {f.index}: REFUSED: {f.problem}")
    bad = [f for f in findings if not f.ok]
    if bad:
        echo(f"{len(bad)} of {len(findings)} attestation(s) do not verify")
        return 1
    state.write_text(json.dumps(saved, indent=2))
    echo(f"{len(findings)} attestation(s) verified from public data; attestations audit clean")
    return 0
