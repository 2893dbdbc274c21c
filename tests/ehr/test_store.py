"""The SQL store: versions append, collisions conflict, a failed session leaves nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ehr.crypto import SealContext, SealedResource, WrappedKey
from ehr.errors import Conflict
from ehr.search import TimeBound
from ehr.store import Store, VersionRecord

PATIENT = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def record(rid: str, version: int, at: datetime, *, deleted: bool = False) -> VersionRecord:
    context = SealContext("Observation", rid, str(version), PATIENT)
    sealed = None if deleted else SealedResource(context, bytes(12), bytes(40))
    return VersionRecord("Observation", rid, version, PATIENT, "PUT", at, sealed)


KEY = WrappedKey(PATIENT, bytes(32), bytes(48))


def test_versions_append_and_head_follows(store: Store) -> None:
    with store.session() as tx:
        tx.add_version(record("a", 1, T0), [KEY])
        tx.add_version(record("a", 2, T0 + timedelta(seconds=1)), [KEY])
    with store.session() as tx:
        head = tx.head("Observation", "a")
        assert head is not None
        assert (head.version_id, head.deleted) == (2, False)
        old = tx.version("Observation", "a", 1, PATIENT)
        assert old is not None
        assert old.key == KEY
        assert tx.version("Observation", "a", 1, "0x0000000000000000000000000000000000000001").key is None


def test_same_version_twice_is_a_conflict(store: Store) -> None:
    with store.session() as tx:
        tx.add_version(record("a", 1, T0), [KEY])
    with pytest.raises(Conflict, match="written concurrently"), store.session() as tx:
        tx.add_version(record("a", 1, T0), [KEY])


def _two_writes_then_failure(store: Store) -> None:
    with store.session() as tx:
        tx.add_version(record("a", 1, T0), [KEY])
        tx.add_version(record("b", 1, T0), [KEY])
        raise RuntimeError("the third entry failed")


def test_a_failed_session_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError, match="third entry"):
        _two_writes_then_failure(store)
    with store.session() as tx:
        assert tx.head("Observation", "a") is None
        assert tx.search(PATIENT, "Observation", [PATIENT]) == (0, [])


def test_search_sees_heads_only_and_skips_deletions(store: Store) -> None:
    with store.session() as tx:
        tx.add_version(record("a", 1, T0), [KEY])
        tx.add_version(record("a", 2, T0 + timedelta(hours=1)), [KEY])
        tx.add_version(record("b", 1, T0 + timedelta(hours=2)), [KEY])
        tx.add_version(record("b", 2, T0 + timedelta(hours=3), deleted=True), [])
    with store.session() as tx:
        total, found = tx.search(PATIENT, "Observation", [PATIENT])
        assert total == 1
        assert [(r.resource_id, r.version_id) for r in found] == [("a", 2)]
        total, _ = tx.search(PATIENT, "Observation", [PATIENT], bounds=[TimeBound("<", T0 + timedelta(minutes=30))])
        assert total == 0
        total, history = tx.history(PATIENT, [PATIENT], resource_type="Observation")
        assert total == 4
        assert history[0].deleted


def test_other_patients_compartments_are_not_searched(store: Store) -> None:
    with store.session() as tx:
        tx.add_version(record("a", 1, T0), [KEY])
    with store.session() as tx:
        assert tx.search(PATIENT, "Observation", ["0x0000000000000000000000000000000000000009"])[0] == 0
        assert tx.search(PATIENT, "Observation", [])[0] == 0


def test_assertion_ids_are_single_use_until_they_expire(store: Store) -> None:
    with store.session() as tx:
        assert tx.use_assertion("k1", T0 + timedelta(minutes=5), T0)
        assert not tx.use_assertion("k1", T0 + timedelta(minutes=5), T0)
    with store.session() as tx:
        # Expired entries are pruned; the assertion itself would be refused for its exp anyway.
        assert tx.use_assertion("k1", T0 + timedelta(minutes=20), T0 + timedelta(minutes=10))


def test_history_pages_neither_repeat_nor_skip_resources_written_at_one_instant(store: Store) -> None:
    # A transaction Bundle stamps its resources with one instant: paging must still be a total order.
    ids = [f"r{n:02d}" for n in range(12)]
    with store.session() as tx:
        for rid in reversed(ids):
            tx.add_version(record(rid, 1, T0), [KEY])
    with store.session() as tx:
        pages = [tx.history(PATIENT, [PATIENT], offset=offset, count=5) for offset in (0, 5, 10)]
    assert [total for total, _ in pages] == [12, 12, 12]
    seen = [r.resource_id for _, page in pages for r in page]
    assert seen == ids
