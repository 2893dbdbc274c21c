"""Auditing attestations (issue 5 item 8): ``consent_chain.attest_audit`` over a ledger of 100 ATTEST entries.

Setup (not timed): a development setup of the consent circuit; a SQL ledger (temporary SQLite file) with four
patients' KEY entries and scoring GRANT entries; four real proofs of consent (``zk.attestation.attest``, one per
grant, each for its own request hash); then 100 ATTEST entries, the four attestations in turn, appended as the
model service appends them. Reusing four proofs is honest for this figure: the audit's cost per entry (parse,
root history as of the entry's time, one Groth16 verification) does not depend on which proof it is. The audit
verifies every entry's proof and then names the fifth ATTEST entry and every later one as a replayed attestation
(an earlier entry has its request hash), which costs a dictionary lookup each.

Timed: ``audit_attestations`` over every entry of the ledger (median of ``runs``), in this process, CPU time of the
process with wall time beside it; the figure is attestations verified per second. No goal was set for it; the
verify goal (0.4 s) implies at least 2.5/s.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from report import number, ratio, table

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from consent_chain.attest_audit import audit_attestations  # noqa: E402
from consent_chain.backends.sql import SqlLedgerBackend  # noqa: E402
from consent_chain.eip712 import Domain, GrantMessage, sign  # noqa: E402
from consent_chain.entries import AttestEntry, GrantEntry, KeyEntry  # noqa: E402
from consent_chain.grants import Grant  # noqa: E402
from consent_chain.ledger import Ledger  # noqa: E402
from consent_chain.note import Signer  # noqa: E402
from ehr.identity import ActorKeys, Role  # noqa: E402
from ehr.zk_keys import load_or_create_consent_keys  # noqa: E402
from models.features import DIABETES, catalogue_for  # noqa: E402
from zk.attestation import attest  # noqa: E402
from zk.consent_circuit import model_field  # noqa: E402

Log = Callable[[str], None]
MODEL_ID = "ab" * 32
VERIFY_GOAL_RATE = 1 / 0.4


@dataclass
class AttestPlan:
    attestations: int = 100
    grants: int = 4
    runs: int = 5
    window: int = 300


@dataclass
class AttestResults:
    plan: AttestPlan
    setup_s: float = 0.0
    prove_s: list[float] = field(default_factory=list)
    audit_cpu_s: list[float] = field(default_factory=list)
    audit_wall_s: list[float] = field(default_factory=list)
    entries: int = 0

    def rate(self) -> float:
        return self.plan.attestations / statistics.median(self.audit_cpu_s)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": self.rate()}


def measure_attest(log: Log, plan: AttestPlan | None = None) -> AttestResults:
    plan = plan or AttestPlan()
    out = AttestResults(plan)
    began = time.process_time()
    keys = load_or_create_consent_keys(None)
    out.setup_s = time.process_time() - began
    log(f"  development setup of the consent circuit: {out.setup_s:.1f} s CPU")
    domain = Domain(chain_id=31337)
    catalogue = catalogue_for(DIABETES)
    t0 = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="pchr-attest-") as tmp:
        signer = Signer.generate("pchr.bench/attest")
        ledger = Ledger(
            SqlLedgerBackend(f"sqlite:///{tmp}/ledger.db"), signer, origin=signer.name, domain=domain, clock=lambda: t0
        )
        clinician = ActorKeys.generate(Role.CLINICIAN)
        patients = [ActorKeys.generate(Role.PATIENT) for _ in range(plan.grants)]
        ledger.append([_key(k) for k in (clinician, *patients)])
        grants = []
        for patient in patients:
            grant = Grant.new(
                patient.address,
                clinician.address,
                f"model:{MODEL_ID}",
                DIABETES.full_mask,
                t0 + timedelta(days=1),
                catalogue,
            )
            message = GrantMessage(grant.grant_id, grant.commitment(), 0, int(t0.timestamp()))
            entry = GrantEntry(
                grant.grant_id,
                patient.address,
                grant.commitment(),
                0,
                message.issued_at,
                sign(patient, domain, message),
            )
            (appended,) = ledger.append([entry])
            grants.append((grant, appended.leaf_index))
        attestations = []
        for n, (grant, leaf) in enumerate(grants):
            assert leaf is not None
            _, root, path = ledger.grant_path(leaf)
            began = time.process_time()
            attestations.append(
                attest(keys.proving_key, grant, path, root, used_mask=0b11, t=int(t0.timestamp()), request_hash=n + 1)
            )
            out.prove_s.append(time.process_time() - began)
        log(f"  {len(attestations)} proofs, median {statistics.median(out.prove_s):.2f} s CPU each")
        entries = []
        for i in range(plan.attestations):
            a = attestations[i % len(attestations)]
            s = a.statement
            entries.append(AttestEntry(s.request_hash, model_field(MODEL_ID), s.root, a.to_bytes()))
        ledger.append(entries)
        raw = ledger.backend.entry_bytes(0, ledger.size())
        out.entries = len(raw)
        for _ in range(plan.runs):
            cpu, wall = time.process_time(), time.perf_counter()
            findings = audit_attestations(raw, keys.prepared, window=plan.window, domain=domain)
            out.audit_cpu_s.append(time.process_time() - cpu)
            out.audit_wall_s.append(time.perf_counter() - wall)
            first, reused = findings[: len(attestations)], findings[len(attestations) :]
            if (
                len(findings) != plan.attestations
                or not all(f.ok for f in first)
                or not all(f.problem and f.problem.endswith("a replayed attestation") for f in reused)
            ):
                raise RuntimeError("the benchmark's attestations did not all verify")
        log(f"  audit of {plan.attestations} attestations: {out.rate():.1f}/s (CPU)")
    return out


def _key(keys: ActorKeys) -> KeyEntry:
    public = keys.public()
    return KeyEntry(public.address, public.role, public.x25519_public, public.binding_signature)


def headline_rows(results: AttestResults) -> list[list[str]]:
    rate = results.rate()
    return [
        [
            f"ZK: attestations audited per second ({results.plan.attestations} ATTEST entries, one core)",
            number(rate, 1),
            "(none; verify goal implies >= 2.5)",
            ratio(rate, VERIFY_GOAL_RATE),
            "yes" if rate >= VERIFY_GOAL_RATE else "no",
        ]
    ]


def attest_sections(results: AttestResults) -> str:
    cpu, wall = results.audit_cpu_s, results.audit_wall_s
    rows = [
        [
            f"`audit_attestations`, {results.plan.attestations} ATTEST entries of {results.entries}",
            f"{statistics.median(cpu):.2f} s ({min(cpu):.2f}-{max(cpu):.2f})",
            f"{statistics.median(wall):.2f} s",
            number(results.rate(), 1),
        ]
    ]
    return (
        "## Auditing attestations (`consent_chain.attest_audit`)\n\n"
        + (__doc__ or "").split("\n\n", 1)[1].strip()
        + "\n\n"
        + table(["measurement", "CPU, median (min-max)", "wall, median", "attestations/s (CPU)"], rows)
        + f"\n\nSetup {results.setup_s:.1f} s CPU; proving each of the {len(results.prove_s)} attestations took "
        f"{statistics.median(results.prove_s):.2f} s CPU (median)."
    )


if __name__ == "__main__":
    print(attest_sections(measure_attest(lambda line: print(line, file=sys.stderr))))
