"""What only PostgreSQL can show: its bytes hold no plaintext, and the adapters cope with a real server.

Skipped unless ``PCHR_TEST_POSTGRES_URL`` names a server (``.ci/run`` always sets it). Every other storage test
runs on PostgreSQL too, through the ``database_url`` fixture; these are the checks that have no SQLite twin: the
tables' own bytes, column types, a server set to another time zone and isolation level, tables created by
several processes at once, a deadlock, and connections the server drops.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from consent_chain.backends.sql import SqlLedgerBackend
from ehr.client import VaultClient
from ehr.crypto import SealContext, SealedResource, WrappedKey
from ehr.demo import plaintext_needles, synthetic_record
from ehr.errors import Conflict
from ehr.fhir import canonical_json
from ehr.search import TimeBound
from ehr.store import Store, VersionRecord
from ehr.transaction import assign_patient
from tests.storage.databases import SERVER_TIME_ZONE, postgres_only

pytestmark = postgres_only

PATIENT = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
T0 = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 05:15 the next day in Kathmandu: a shift would change the date


@pytest.fixture
def raw(database_url: str) -> Iterator[Engine]:
    """A plain engine on the test database, for looking at what the adapters stored."""
    engine = create_engine(database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def record(rid: str, version: int, at: datetime) -> VersionRecord:
    context = SealContext("Observation", rid, str(version), PATIENT)
    return VersionRecord("Observation", rid, version, PATIENT, "PUT", at, SealedResource(context, bytes(12), bytes(40)))


KEY = WrappedKey(PATIENT, bytes(32), bytes(48))


def table_bytes(engine: Engine) -> bytes:
    """Every row of every table in the database's schema, as PostgreSQL's binary COPY writes it (bytea raw)."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
        tables = [name for (name,) in cursor.fetchall()]
        assert "resource_version" in tables
        assert "ledger_entry" in tables
        out = io.BytesIO()
        for table in tables:
            cursor.copy_expert(f'COPY "{table}" TO STDOUT (FORMAT binary)', out)
        return out.getvalue()
    finally:
        connection.close()


def test_postgresql_holds_no_plaintext(http: TestClient, patient: VaultClient, raw: Engine) -> None:
    # As tests/ehr/test_no_plaintext.py does with the SQLite file: one record sealed by the client, one by the vault.
    client_sealed = assign_patient(synthetic_record(seed=11), patient.address)
    server_sealed = assign_patient(synthetic_record(seed=12, profile="hypertension"), patient.address)
    patient.transaction(client_sealed, patient=patient.address)
    response = http.post("/", json=server_sealed, headers={"Authorization": f"Bearer {patient.access_token()}"})
    assert response.status_code == 200, response.text

    needles = plaintext_needles(client_sealed) | plaintext_needles(server_sealed)
    assert len(needles) > 200
    plain = b"".join(canonical_json(e["resource"]) for b in (client_sealed, server_sealed) for e in b["entry"])
    assert all(n.encode() in plain for n in needles)  # the search finds them where they are

    dump = table_bytes(raw)
    assert len(dump) > 50_000
    assert patient.address.encode() in dump  # the pseudonym is metadata the vault keeps in clear: the dump is real
    leaked = sorted(n for n in needles if n.encode() in dump)
    assert leaked == []
    assert len(patient.everything("Observation")) > 0


def test_tables_land_in_the_test_schema_with_postgresql_types(store: Store, database_url: str, raw: Engine) -> None:
    SqlLedgerBackend(database_url).engine.dispose()
    with raw.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        assert schema.startswith("pchr_test_")
        assert conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar_one() == 0
        columns = {
            (t, c): d
            for t, c, d in conn.execute(
                text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = :s"
                ),
                {"s": schema},
            )
        }
    assert columns[("resource_version", "ciphertext")] == "bytea"
    assert columns[("ledger_entry", "data")] == "bytea"
    assert columns[("resource_version", "last_updated")] == "timestamp with time zone"
    # Log indices, sizes, Unix times and nonces are 64-bit: a 32-bit integer would run out (times in 2038).
    for column in [
        ("ledger_entry", "idx"),
        ("ledger_head", "size"),
        ("ledger_head", "last_time"),
        ("ledger_nonce", "next_nonce"),
        ("ledger_attest", "entry_idx"),
        ("grant_root", "size"),
        ("grant_policy", "ledger_index"),
    ]:
        assert columns[column] == "bigint", column
    with raw.connect() as conn:
        sequences = conn.execute(
            text("SELECT count(*) FROM information_schema.sequences WHERE sequence_schema = :s"), {"s": schema}
        ).scalar_one()
    assert sequences == 0  # every key is given explicitly; no serial column hides behind one


def test_times_survive_a_server_in_another_time_zone(store: Store, raw: Engine) -> None:
    with raw.connect() as conn:
        assert conn.execute(text("SHOW timezone")).scalar_one() == SERVER_TIME_ZONE
    with store.session() as tx:
        tx.add_version(record("a", 1, T0), [KEY])
    with store.session() as tx:
        head = tx.head("Observation", "a")
        assert head is not None
        assert head.last_updated == T0
        assert head.last_updated.utcoffset() == timedelta(0)
        assert tx.search(PATIENT, "Observation", [PATIENT], bounds=[TimeBound(">=", T0)])[0] == 1
        assert tx.search(PATIENT, "Observation", [PATIENT], bounds=[TimeBound(">", T0)])[0] == 0
    with raw.connect() as conn:
        stored = conn.execute(text("SELECT last_updated AT TIME ZONE 'UTC' FROM resource_head")).scalar_one()
    assert stored == T0.replace(tzinfo=None)


def test_engines_run_read_committed_whatever_the_server_default(store: Store, database_url: str, raw: Engine) -> None:
    with raw.connect() as conn:
        assert conn.execute(text("SHOW transaction_isolation")).scalar_one() == "repeatable read"
    backend = SqlLedgerBackend(database_url)
    for engine in (store.engine, backend.engine):
        with engine.connect() as conn:
            assert conn.execute(text("SHOW transaction_isolation")).scalar_one() == "read committed"
    backend.engine.dispose()


def test_processes_starting_together_create_the_tables_once(database_url: str, raw: Engine) -> None:
    # `pchr serve --workers N` on an empty database: every worker creates the tables it finds missing.
    barrier = threading.Barrier(6)

    def open_both() -> None:
        barrier.wait()
        store = Store(database_url)
        backend = SqlLedgerBackend(database_url)
        store.close()
        backend.engine.dispose()

    with ThreadPoolExecutor(6) as threads:
        for future in [threads.submit(open_both) for _ in range(6)]:
            future.result()
    with raw.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ledger_head")).scalar_one() == 1
        tables = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")).scalar_one()
    assert tables == 17  # the vault's 8 (key_share among them) and the ledger's 9 (ledger_attest among them)


def test_a_deadlock_between_two_writes_is_a_conflict_not_a_crash(store: Store) -> None:
    # Two Bundles touching the same two resources in opposite orders: PostgreSQL aborts one of them.
    with store.session() as tx:
        tx.add_version(record("a", 1, T0), [KEY])
        tx.add_version(record("b", 1, T0), [KEY])
    both_in = threading.Barrier(2)

    def write(first: str, second: str) -> str:
        try:
            with store.session() as tx:
                tx.add_version(record(first, 2, T0), [KEY])
                both_in.wait()
                tx.add_version(record(second, 2, T0), [KEY])
        except Conflict as exc:
            return str(exc)
        return "committed"

    with ThreadPoolExecutor(2) as threads:
        outcomes = sorted(f.result() for f in [threads.submit(write, "a", "b"), threads.submit(write, "b", "a")])
    assert outcomes == ["committed", "the database aborted this write for a concurrent one; retry"]
    with store.session() as tx:
        assert [tx.head("Observation", r).version_id for r in "ab"] == [2, 2]  # type: ignore[union-attr]


def test_connections_the_server_dropped_are_replaced_unnoticed(store: Store, raw: Engine) -> None:
    # As after a database restart: the pool still holds connections the server has closed.
    with store.session() as tx:
        tx.add_version(record("a", 1, T0), [KEY])
    with raw.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE usename = current_user AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    assert killed >= 1
    with store.session() as tx:
        head = tx.head("Observation", "a")
    assert head is not None
    assert head.version_id == 1
