"""Concurrent writers for tests/storage/test_concurrency.py, run in threads and in spawned processes alike.

Each writer opens an engine of its own on the shared database (as a separate server process would), waits for a
common start instant so that all of them contend from the first write, and reports what it was told it wrote:
the ledger index of each entry, the version of each update. The test then checks those reports against what the
database holds. Everything here crosses a process boundary, so it takes and returns plain picklable values.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from consent_chain.backends.sql import SqlLedgerBackend
from consent_chain.eip712 import Domain
from consent_chain.entries import decode_entry
from consent_chain.ledger import Ledger
from consent_chain.note import Signer
from ehr.errors import Conflict
from ehr.identity import Role
from ehr.policy import Principal
from ehr.scopes import grantable
from ehr.service import Vault
from ehr.store import Store

DOMAIN = Domain(chain_id=31337)
ORIGIN = "pchr.test/concurrent-ledger"
MAX_RETRIES = 500

# (index, entry as stored) for each entry a ledger writer appended.
LedgerReport = list[tuple[int, bytes]]
# (resource id, version, the value written) for each update a vault writer made, and how many conflicts it met.
VaultReport = tuple[list[tuple[str, int, float]], int]


def warm() -> None:
    """Process initializer: the imports above are done; build the FHIR models once so the first write is not slow."""
    from ehr.fhir import validate_resource

    validate_resource(observation("warm", "0x" + "00" * 20, 1.0), expected_type="Observation")


def ready(seconds: float) -> bool:
    time.sleep(seconds)  # keeps this process busy, so that the pool starts another for the next task
    return True


def _wait(start_at: float) -> None:
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)


# -- the consent ledger ---------------------------------------------------------------------------
def append_entries(url: str, batches: list[list[bytes]], start_at: float) -> LedgerReport:
    """Append pre-signed entries, batch by batch, through a ledger on an engine of its own.

    After every other batch it also takes a checkpoint, which syncs the grant tree: syncs race with appends too.
    """
    backend = SqlLedgerBackend(url)
    ledger = Ledger(backend, Signer.generate(ORIGIN), origin=ORIGIN, domain=DOMAIN)
    report: LedgerReport = []
    try:
        _wait(start_at)
        for n, batch in enumerate(batches):
            appended = ledger.append([decode_entry(raw) for raw in batch])
            report.extend((a.index, a.entry.to_bytes()) for a in appended)
            if n % 2:
                ledger.checkpoint()
    finally:
        backend.engine.dispose()
    return report


def append_entries_in_threads(url: str, writers: list[list[list[bytes]]], start_at: float) -> list[LedgerReport]:
    """Several ledger writers in threads of this process (each with its own engine)."""
    with ThreadPoolExecutor(len(writers)) as threads:
        futures = [threads.submit(append_entries, url, batches, start_at) for batches in writers]
        return [f.result() for f in futures]


# -- the vault ---------------------------------------------------------------------------------------
def observation(resource_id: str, patient: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}], "text": "Glucose"},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": value, "unit": "mmol/L"},
    }


def update_resources(
    url: str, patient: str, resource_ids: list[str], writes: int, writer: int, start_at: float
) -> VaultReport:
    """Update the resources in turn through a vault on an engine of its own, retrying each write on Conflict."""
    store = Store(url)
    vault = Vault(store)
    principal = Principal(patient, Role.PATIENT, grantable("patient/*.cruds", Role.PATIENT))
    report: list[tuple[str, int, float]] = []
    conflicts = 0
    try:
        _wait(start_at)
        for i in range(writes):
            rid = resource_ids[i % len(resource_ids)]
            value = float(writer * 1000 + i)
            for _ in range(MAX_RETRIES):
                try:
                    result = vault.update(principal, "Observation", rid, observation(rid, patient, value))
                    break
                except Conflict:
                    conflicts += 1
            else:
                raise RuntimeError(f"writer {writer} met {MAX_RETRIES} conflicts in a row on {rid}")
            report.append((rid, result.version_id, value))
    finally:
        store.close()
    return report, conflicts


def update_resources_in_threads(
    url: str, patient: str, resource_ids: list[str], writes: int, writers: list[int], start_at: float
) -> list[VaultReport]:
    """Several vault writers in threads of this process (each with its own engine)."""
    with ThreadPoolExecutor(len(writers)) as threads:
        futures = [threads.submit(update_resources, url, patient, resource_ids, writes, w, start_at) for w in writers]
        return [f.result() for f in futures]
