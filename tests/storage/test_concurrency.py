"""Many writers at once, on SQLite and on PostgreSQL: nothing lost, nothing duplicated, no gap.

Writers run as threads of the test process and as threads of two other processes, each with an engine of its own
on the same database, as the workers of ``pchr serve --workers N`` would. They start together at one instant.

- **Consent ledger**: every writer appends its own patient's pre-signed grants and revocations, in batches of one
  to three, and takes checkpoints (which sync the grant tree) as it goes. Afterwards the log holds exactly the
  entries the writers were told they appended, each at the index it was told, indices 0..n-1 without a gap; every
  grant root ever recorded equals a replay of the log up to that size; the audit (signed root, every entry, grant
  root) is clean.
- **Vault**: every writer updates the same two resources in turn, retrying on Conflict. Afterwards each resource's
  versions are 1..n without a gap, every acknowledged write is the version it was told it got, and that version
  decrypts to what that writer wrote.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from consent_chain.audit import audit_ledger
from consent_chain.backends.sql import SqlLedgerBackend
from consent_chain.catalogue import read_catalogue
from consent_chain.eip712 import GrantMessage, RevokeMessage, sign
from consent_chain.entries import GrantEntry, KeyEntry, RevokeEntry, decode_entry
from consent_chain.grants import Grant
from consent_chain.ledger import Ledger
from consent_chain.note import Signer
from consent_chain.state_tree import GrantTree
from ehr.crypto import unseal
from ehr.identity import ActorKeys, Role
from ehr.policy import Principal
from ehr.scopes import grantable
from ehr.service import Vault
from ehr.store import Store
from tests.storage import workers

THREADS_HERE = 3  # writers in the test process
PROCESSES = 2
THREADS_PER_PROCESS = 2
WRITERS = THREADS_HERE + PROCESSES * THREADS_PER_PROCESS
START_DELAY = 1.0  # seconds from handing out the work to the common start instant


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessPoolExecutor]:
    """Two spawned worker processes, started and warmed up before any test times them."""
    context = multiprocessing.get_context("spawn")  # no fork: the test process has threads and open engines
    with ProcessPoolExecutor(PROCESSES, mp_context=context, initializer=workers.warm) as pool:
        assert all(pool.map(workers.ready, [0.5] * PROCESSES))
        yield pool


# -- the consent ledger ---------------------------------------------------------------------------
CATALOGUE = read_catalogue()


def _key_entry(keys: ActorKeys) -> KeyEntry:
    public = keys.public()
    return KeyEntry(public.address, public.role, public.x25519_public, public.binding_signature)


def _writer_batches(patient: ActorKeys, grantee: str, issued: int) -> list[list[bytes]]:
    """Six grants and two revocations by one patient, nonces 0..7 in order, in batches of 1, 3, 2, 1 and 1."""
    entries: list[bytes] = []
    grant_ids: list[bytes] = []
    for nonce in range(6):
        grant = Grant.new(
            patient.address,
            grantee,
            "TREAT",
            CATALOGUE.mask(["laboratory"]),
            datetime.now(UTC) + timedelta(days=1),
            CATALOGUE,
        )
        message = GrantMessage(grant.grant_id, grant.commitment(), nonce, issued)
        signature = sign(patient, workers.DOMAIN, message)
        entry = GrantEntry(grant.grant_id, patient.address, grant.commitment(), nonce, issued, signature)
        entries.append(entry.to_bytes())
        grant_ids.append(grant.grant_id)
    for nonce, grant_id in ((6, grant_ids[1]), (7, grant_ids[4])):
        revoke = RevokeMessage(grant_id, nonce, issued)
        entries.append(
            RevokeEntry(grant_id, patient.address, nonce, issued, sign(patient, workers.DOMAIN, revoke)).to_bytes()
        )
    sizes = [1, 3, 2, 1, 1]
    batches, start = [], 0
    for size in sizes:
        batches.append(entries[start : start + size])
        start += size
    assert start == len(entries)
    return batches


def test_concurrent_ledger_appends_leave_a_gapless_consistent_log(
    database_url: str, processes: ProcessPoolExecutor
) -> None:
    patients = [ActorKeys.generate(Role.PATIENT) for _ in range(WRITERS)]
    doctor = ActorKeys.generate(Role.CLINICIAN)
    signer = Signer.generate(workers.ORIGIN)
    backend = SqlLedgerBackend(database_url)
    ledger = Ledger(backend, signer, origin=workers.ORIGIN, domain=workers.DOMAIN)
    setup = ledger.append([_key_entry(k) for k in [*patients, doctor]])
    base = len(setup)

    issued = int(time.time())
    work = [_writer_batches(p, doctor.address, issued) for p in patients]
    start_at = time.time() + START_DELAY
    remote = [
        processes.submit(
            workers.append_entries_in_threads,
            database_url,
            work[THREADS_HERE + n * THREADS_PER_PROCESS : THREADS_HERE + (n + 1) * THREADS_PER_PROCESS],
            start_at,
        )
        for n in range(PROCESSES)
    ]
    local = workers.append_entries_in_threads(database_url, work[:THREADS_HERE], start_at)
    reports = local + [r for future in remote for r in future.result(timeout=120)]
    assert len(reports) == WRITERS

    size = ledger.size()
    submitted = sum(len(batch) for batches in work for batch in batches)
    assert size == base + submitted

    # Every acknowledged entry is in the log at the index it was given; no index was given twice, none skipped.
    acknowledged = {index: raw for report in reports for index, raw in report}
    assert len(acknowledged) == submitted
    assert sorted(acknowledged) == list(range(base, size))
    stored = backend.entry_bytes(0, size)
    assert all(stored[index] == raw for index, raw in acknowledged.items())

    # Each writer's entries are in its nonce order, and times never go back along the log.
    entries = [decode_entry(raw) for raw in stored]
    for report in reports:
        indices = [index for index, _ in report]
        assert indices == sorted(indices)
        nonces = [entry.nonce for entry in (decode_entry(raw) for _, raw in report)]
        assert nonces == list(range(8))
    times = [entry.time for entry in entries]
    assert times == sorted(times)
    kinds = Counter(type(entry).__name__ for entry in entries[base:])
    assert kinds == {"GrantEntry": 6 * WRITERS, "RevokeEntry": 2 * WRITERS}

    # Every grant root recorded while writers raced equals a replay of the log up to that size.
    replay, leaf_of, roots_by_size = GrantTree(), {}, {0: GrantTree().root}
    for index, entry in enumerate(entries):
        if isinstance(entry, GrantEntry):
            leaf_of[entry.grant_id] = replay.append(entry.commitment)
        elif isinstance(entry, RevokeEntry):
            replay.revoke(leaf_of[entry.grant_id])
        roots_by_size[index + 1] = replay.root
    recorded = ledger.grant_roots()
    assert len(recorded) >= PROCESSES  # the writers' checkpoints synced the tree along the way
    assert all(root == roots_by_size[at] for at, root in recorded)
    assert ledger.grant_root() == replay.root
    for entry in entries[base:]:
        if isinstance(entry, GrantEntry):
            record = ledger.grant(entry.grant_id)
            assert record is not None
            assert record.revoked == any(
                isinstance(e, RevokeEntry) and e.grant_id == entry.grant_id for e in entries[base:]
            )

    report = audit_ledger(_Source(ledger), signer.verifier, domain=workers.DOMAIN)
    assert report.clean, report.problems
    assert report.counts == {"KEY": WRITERS + 1, "GRANT": 6 * WRITERS, "REVOKE": 2 * WRITERS}
    backend.engine.dispose()


class _Source:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def checkpoint(self) -> str:
        return self.ledger.checkpoint()

    def entries(self, start: int, end: int) -> list[bytes]:
        return self.ledger.backend.entry_bytes(start, end)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self.ledger.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return self.ledger.consistency_proof(old_size, new_size)


# -- the vault ---------------------------------------------------------------------------------------
WRITES_PER_WRITER = 10
RESOURCES = ["glucose-1", "glucose-2"]


def test_concurrent_vault_updates_leave_gapless_versions(database_url: str, processes: ProcessPoolExecutor) -> None:
    patient = ActorKeys.generate(Role.PATIENT)
    store = Store(database_url)
    vault = Vault(store)
    vault.register(patient.public())
    principal = Principal(patient.address, Role.PATIENT, grantable("patient/*.cruds", Role.PATIENT))
    for rid in RESOURCES:
        assert vault.update(principal, "Observation", rid, workers.observation(rid, patient.address, -1.0)).created

    start_at = time.time() + START_DELAY
    numbers = list(range(WRITERS))
    remote = [
        processes.submit(
            workers.update_resources_in_threads,
            database_url,
            patient.address,
            RESOURCES,
            WRITES_PER_WRITER,
            numbers[THREADS_HERE + n * THREADS_PER_PROCESS : THREADS_HERE + (n + 1) * THREADS_PER_PROCESS],
            start_at,
        )
        for n in range(PROCESSES)
    ]
    local = workers.update_resources_in_threads(
        database_url, patient.address, RESOURCES, WRITES_PER_WRITER, numbers[:THREADS_HERE], start_at
    )
    reports = local + [r for future in remote for r in future.result(timeout=120)]
    writes = [w for report, _ in reports for w in report]
    assert len(writes) == WRITERS * WRITES_PER_WRITER
    conflicts = sum(c for _, c in reports)

    with store.session() as tx:
        for rid in RESOURCES:
            versions = sorted(version for r, version, _ in writes if r == rid)
            # Version 1 is the create above; every acknowledged update got its own next version, none skipped.
            assert versions == list(range(2, len(versions) + 2)), f"{rid}: {versions}"
            head = tx.head("Observation", rid)
            assert head is not None
            assert head.version_id == len(versions) + 1
            total, _ = tx.history(patient.address, [patient.address], resource_type="Observation", resource_id=rid)
            assert total == head.version_id
        for rid, version, value in writes:
            record = tx.version("Observation", rid, version, patient.address)
            assert record is not None
            assert record.sealed is not None
            assert record.key is not None
            resource = json.loads(unseal(record.sealed, record.key, patient.encryption))
            assert resource["valueQuantity"]["value"] == value
            assert resource["meta"]["versionId"] == str(version)
    store.close()
    # With seven writers on two resources some writes must have collided and been retried: the race was real.
    assert conflicts > 0
