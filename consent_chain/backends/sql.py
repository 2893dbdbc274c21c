"""The SQL ledger backend: the consent ledger in tables of the vault's database (SQLite or PostgreSQL).

The only consent_chain module that imports SQLAlchemy/SQLModel. One append is one database transaction:

1. lock the single ``ledger_head`` row, so appends are serialised and log indices are gapless even with several
   server processes: on PostgreSQL with ``SELECT ... FOR UPDATE`` (a row lock, held to commit; every later
   statement of the transaction sees what the previous holder committed, at READ COMMITTED as
   :mod:`ehr.database` sets it), on SQLite with an UPDATE of the row (the database's write lock);
2. for each entry, run the append rules (:func:`consent_chain.rules.check_entry`) against the state as this
   transaction sees it, store the entry, the RFC 9162 subtree hashes it completes, the state the rules read
   (keys, nonces, grants) and the grant-tree nodes it changes, and record the grant root after it;
3. update the head and commit. Any refusal rolls back the whole batch.

ATTEST entries are indexed by request hash (``ledger_attest``), so that the model service refuses a request it
already scored without reading the log; a database made before that table is indexed once when it is opened.

Subtree hashes of the log never change once written, so they are cached in memory; grant-tree nodes change, so
they are read afresh inside each locked transaction.

Log indices, sizes and times are 64-bit columns on PostgreSQL (``bigint``); on SQLite an ``INTEGER`` primary key
is the table's rowid, which is 64-bit already.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    bindparam,
    func,
    insert,
    inspect,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from consent_chain import merkle
from consent_chain.entries import AttestEntry, Entry, EntryType, GrantEntry, KeyEntry, RevokeEntry, decode_entry
from consent_chain.errors import AppendRefused, LedgerError
from consent_chain.ledger import Appended
from consent_chain.rules import GrantRecord, LedgerView
from consent_chain.state_tree import DEPTH, GrantTree, MerklePath
from ehr.database import create_database_engine, create_tables

__all__ = ["SqlLedgerBackend"]

# A log index or size: bigint on PostgreSQL; INTEGER on SQLite, where a lone INTEGER primary key is the rowid.
_INDEX = BigInteger().with_variant(Integer(), "sqlite")
# Explicit values only: no sequence behind a lone integer primary key.
_NO_SEQUENCE = {"autoincrement": False}


class LedgerHeadRow(SQLModel, table=True):
    __tablename__ = "ledger_head"
    id: int = Field(primary_key=True, sa_column_kwargs=_NO_SEQUENCE)
    size: int = Field(sa_type=_INDEX)
    last_time: int = Field(sa_type=BigInteger)  # Unix seconds
    grant_leaves: int
    tree_size: int = Field(sa_type=_INDEX)  # the log size the grant-tree nodes reflect


class LedgerEntryRow(SQLModel, table=True):
    __tablename__ = "ledger_entry"
    idx: int = Field(primary_key=True, sa_type=_INDEX, sa_column_kwargs=_NO_SEQUENCE)
    kind: int
    data: bytes


class LedgerNodeRow(SQLModel, table=True):
    __tablename__ = "ledger_node"
    level: int = Field(primary_key=True)
    idx: int = Field(primary_key=True, sa_type=_INDEX)
    hash: bytes


class LedgerKeyRow(SQLModel, table=True):
    __tablename__ = "ledger_key"
    address: str = Field(primary_key=True, max_length=42)
    entry_idx: int = Field(sa_type=_INDEX)


class LedgerNonceRow(SQLModel, table=True):
    __tablename__ = "ledger_nonce"
    patient: str = Field(primary_key=True, max_length=42)
    next_nonce: int = Field(sa_type=BigInteger)


class LedgerGrantRow(SQLModel, table=True):
    __tablename__ = "ledger_grant"
    grant_id: bytes = Field(primary_key=True)
    patient: str = Field(index=True, max_length=42)
    leaf_index: int = Field(unique=True)
    entry_idx: int = Field(index=True, sa_type=_INDEX)
    revoked_idx: int | None = Field(default=None, index=True, sa_type=_INDEX)
    commitment: bytes


class LedgerAttestRow(SQLModel, table=True):
    """The ATTEST entries by request hash (the model service scores a request once)."""

    __tablename__ = "ledger_attest"
    entry_idx: int = Field(primary_key=True, sa_type=_INDEX, sa_column_kwargs=_NO_SEQUENCE)
    request_hash: bytes = Field(index=True)  # 32-byte big-endian field element


class GrantNodeRow(SQLModel, table=True):
    """Nodes of the Poseidon grant tree (level 0 the leaves, level 10 the root; a node absent is the empty subtree's
    hash)."""

    __tablename__ = "grant_node"
    level: int = Field(primary_key=True)
    idx: int = Field(primary_key=True)
    value: bytes  # 32-byte big-endian field element


class GrantRootRow(SQLModel, table=True):
    """The grant root after the first ``size`` entries, for each size the tree was synced to."""

    __tablename__ = "grant_root"
    size: int = Field(primary_key=True, sa_type=_INDEX, sa_column_kwargs=_NO_SEQUENCE)
    root: bytes


_HEAD = LedgerHeadRow.__table__  # type: ignore[attr-defined]
_ENTRY = LedgerEntryRow.__table__  # type: ignore[attr-defined]
_NODE = LedgerNodeRow.__table__  # type: ignore[attr-defined]
_KEY = LedgerKeyRow.__table__  # type: ignore[attr-defined]
_NONCE = LedgerNonceRow.__table__  # type: ignore[attr-defined]
_GRANT = LedgerGrantRow.__table__  # type: ignore[attr-defined]
_ATTEST = LedgerAttestRow.__table__  # type: ignore[attr-defined]
_GNODE = GrantNodeRow.__table__  # type: ignore[attr-defined]
_GROOT = GrantRootRow.__table__  # type: ignore[attr-defined]
_SELECT_HEAD = select(_HEAD.c.size, _HEAD.c.last_time, _HEAD.c.grant_leaves, _HEAD.c.tree_size).where(_HEAD.c.id == 1)
_SELECT_HEAD_FOR_UPDATE = _SELECT_HEAD.with_for_update()
_TOUCH_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(size=_HEAD.c.size)
_UPDATE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(
        size=bindparam("size"),
        last_time=bindparam("last_time"),
        grant_leaves=bindparam("grant_leaves"),
        tree_size=bindparam("tree_size"),
    )
)
_SELECT_ACTOR_KEY = (
    select(_ENTRY.c.data)
    .select_from(_KEY.join(_ENTRY, _ENTRY.c.idx == _KEY.c.entry_idx))
    .where(_KEY.c.address == bindparam("address"))
)
_SELECT_NONCE = select(_NONCE.c.next_nonce).where(_NONCE.c.patient == bindparam("patient"))
_UPDATE_NONCE = update(_NONCE).where(_NONCE.c.patient == bindparam("p")).values(next_nonce=bindparam("n"))
_SELECT_GRANT = select(_GRANT).where(_GRANT.c.grant_id == bindparam("grant_id"))
_SELECT_ATTEST = select(func.min(_ATTEST.c.entry_idx)).where(_ATTEST.c.request_hash == bindparam("request_hash"))
# Pairs per DELETE: 2 parameters each, well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
_DELETE_CHUNK = 4000
_TABLES = [_HEAD, _ENTRY, _NODE, _KEY, _NONCE, _GRANT, _ATTEST, _GNODE, _GROOT]


def _fe(value: int) -> bytes:
    return value.to_bytes(32, "big")


class _SqlGrantNodes:
    """The grant tree's node store over one connection, with writes buffered until :meth:`flush`."""

    def __init__(self, conn: Connection, cache: dict[tuple[int, int], int]) -> None:
        self._c = conn
        self._cache = cache
        self._dirty: dict[tuple[int, int], int] = {}

    def get(self, level: int, index: int) -> int | None:
        key = (level, index)
        if key in self._dirty:
            return self._dirty[key]
        if key not in self._cache:
            row = self._c.execute(select(_GNODE.c.value).where(_GNODE.c.level == level, _GNODE.c.idx == index)).first()
            if row is None:
                return None
            self._cache[key] = int.from_bytes(row.value, "big")
        return self._cache[key]

    def put_many(self, nodes: Sequence[tuple[int, int, int]]) -> None:
        for level, index, value in nodes:
            self._dirty[(level, index)] = value

    def flush(self) -> None:
        if not self._dirty:
            return
        keys = list(self._dirty)
        # Replaced nodes go in one DELETE per chunk, not one per node: a round trip each costs on a server.
        for start in range(0, len(keys), _DELETE_CHUNK):
            chunk = keys[start : start + _DELETE_CHUNK]
            self._c.execute(_GNODE.delete().where(tuple_(_GNODE.c.level, _GNODE.c.idx).in_(chunk)))
        self._c.execute(
            insert(_GNODE), [{"level": lv, "idx": ix, "value": _fe(self._dirty[(lv, ix)])} for lv, ix in keys]
        )
        self._cache.update(self._dirty)
        self._dirty.clear()


class _View:
    """The state the append rules read, from inside the append transaction.

    A batch's rows are written together at its end (one executemany per table), so the view overlays what the
    batch has appended so far on what the database holds.
    """

    def __init__(self, conn: Connection, head: dict[str, int], key_cache: dict[str, KeyEntry] | None = None) -> None:
        self._c = conn
        self._head = head
        self._keys = key_cache if key_cache is not None else {}
        self._absent_grants: set[bytes] = set()
        self.pending_entries: dict[int, bytes] = {}
        self.pending_keys: dict[str, int] = {}
        self.pending_nonces: dict[str, int] = {}
        self.pending_grants: dict[bytes, GrantRecord] = {}
        self._stored_nonces: dict[str, int | None] = {}

    def actor_key(self, address: str) -> KeyEntry | None:
        # A key binding is written once and never changes: committed ones are cached for the process.
        cached = self._keys.get(address)
        if cached is not None:
            return cached
        if address in self.pending_keys:
            entry = decode_entry(self.pending_entries[self.pending_keys[address]])
            assert isinstance(entry, KeyEntry)
            return entry
        row = self._c.execute(_SELECT_ACTOR_KEY, {"address": address}).first()
        if row is None:
            return None
        entry = decode_entry(row.data)
        assert isinstance(entry, KeyEntry)
        self._keys[address] = entry
        return entry

    def prefetch_grants(self, grant_ids: list[bytes]) -> None:
        """Learn in one query which of a batch's grant ids are new (the duplicate check, without a query each)."""
        found = {
            bytes(r.grant_id)
            for r in self._c.execute(select(_GRANT.c.grant_id).where(_GRANT.c.grant_id.in_(grant_ids)))
        }
        self._absent_grants.update(g for g in grant_ids if g not in found)

    def _stored_nonce(self, patient: str) -> int | None:
        if patient not in self._stored_nonces:
            row = self._c.execute(_SELECT_NONCE, {"patient": patient}).first()
            self._stored_nonces[patient] = int(row.next_nonce) if row is not None else None
        return self._stored_nonces[patient]

    def next_nonce(self, patient: str) -> int:
        if patient in self.pending_nonces:
            return self.pending_nonces[patient]
        return self._stored_nonce(patient) or 0

    def grant(self, grant_id: bytes) -> GrantRecord | None:
        if grant_id in self.pending_grants:
            return self.pending_grants[grant_id]
        if grant_id in self._absent_grants:
            return None
        row = self._c.execute(_SELECT_GRANT, {"grant_id": grant_id}).first()
        if row is None:
            return None
        return GrantRecord(row.grant_id, row.patient, row.leaf_index, row.entry_idx, row.revoked_idx is not None)

    def last_time(self) -> int:
        return self._head["last_time"]

    def write_nonces(self) -> None:
        inserts = [
            {"patient": p, "next_nonce": n} for p, n in self.pending_nonces.items() if self._stored_nonce(p) is None
        ]
        if inserts:
            self._c.execute(insert(_NONCE), inserts)
        for patient, nonce in self.pending_nonces.items():
            if self._stored_nonce(patient) is not None:
                self._c.execute(_UPDATE_NONCE, {"p": patient, "n": nonce})


class SqlLedgerBackend:
    """A consent ledger stored in SQL tables; build with a SQLAlchemy URL or an existing engine."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self.engine = create_database_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        # SELECT ... FOR UPDATE where the database has row locks; SQLite has none (SQLAlchemy drops the clause),
        # so there a no-op UPDATE of the row takes the database's write lock first.
        self._row_locks = self.engine.dialect.name != "sqlite"
        attest_index_existed = inspect(self.engine).has_table(_ATTEST.name)
        create_tables(self.engine, SQLModel.metadata, _TABLES)
        # Another process may create the head row first: then this insert fails, and that is fine.
        with contextlib.suppress(IntegrityError), self.engine.begin() as conn:
            if conn.execute(select(_HEAD.c.id)).first() is None:
                conn.execute(insert(_HEAD), {"id": 1, "size": 0, "last_time": 0, "grant_leaves": 0, "tree_size": 0})
        with self.engine.connect() as conn:
            if conn.execute(select(_GNODE.c.level).where(_GNODE.c.level > DEPTH).limit(1)).first() is not None:
                # pchr before the 4-ary grant tree kept a binary tree of depth 20, whose root is at level 20.
                raise LedgerError(
                    "this ledger's grant tree was written by an earlier pchr (a binary tree of depth 20); this "
                    f"version keeps a tree of arity 4 and depth {DEPTH} and cannot extend it: start a new ledger "
                    "(a new database), or keep this one on the pchr version that made it"
                )
        self._log_nodes: dict[tuple[int, int], bytes] = {}
        self._keys: dict[str, KeyEntry] = {}  # committed key bindings (immutable)
        if not attest_index_existed:
            self._index_attestations()

    def _index_attestations(self) -> None:
        """Fill ``ledger_attest`` from a log written before it existed (once: under the head's lock, so a process
        opening the same database at the same time finds it filled, and no append runs meanwhile)."""
        with self.engine.begin() as conn:
            self._lock_head(conn)
            if conn.execute(select(_ATTEST.c.entry_idx).limit(1)).first() is not None:
                return
            rows = []
            for row in conn.execute(select(_ENTRY.c.idx, _ENTRY.c.data).where(_ENTRY.c.kind == EntryType.ATTEST)):
                entry = decode_entry(bytes(row.data))
                assert isinstance(entry, AttestEntry)
                rows.append({"entry_idx": row.idx, "request_hash": _fe(entry.request_hash)})
            if rows:
                conn.execute(insert(_ATTEST), rows)

    # -- append -----------------------------------------------------------------------------------
    def append(self, entries: Sequence[Entry], check: Callable[[LedgerView, Entry], Entry]) -> list[Appended]:
        created: dict[tuple[int, int], bytes] = {}
        try:
            with self.engine.begin() as conn:
                head = self._lock_head(conn)
                view = _View(conn, head, self._keys)
                new_grants = [e.grant_id for e in entries if isinstance(e, GrantEntry)]
                if len(new_grants) > 1:
                    view.prefetch_grants(new_grants)
                rows: dict[str, list[dict[str, Any]]] = {"entry": [], "node": [], "key": [], "grant": [], "attest": []}
                appended = [self._append_one(conn, view, head, created, rows, check(view, e)) for e in entries]
                for table, name in (
                    (_ENTRY, "entry"),
                    (_NODE, "node"),
                    (_KEY, "key"),
                    (_GRANT, "grant"),
                    (_ATTEST, "attest"),
                ):
                    if rows[name]:
                        conn.execute(insert(table), rows[name])
                view.write_nonces()
                conn.execute(_UPDATE_HEAD, head)
        except IntegrityError as exc:
            raise AppendRefused("conflict", "a concurrent append collided with this one; retry") from exc
        # Only now, after the commit: a rolled-back batch must leave no node in the cache.
        self._log_nodes.update(created)
        return appended

    def _lock_head(self, conn: Connection) -> dict[str, int]:
        """Lock the head row until commit and read it: one writer at a time, on the state the last one left."""
        if self._row_locks:
            row = conn.execute(_SELECT_HEAD_FOR_UPDATE).one()
        else:
            conn.execute(_TOUCH_HEAD)
            row = conn.execute(_SELECT_HEAD).one()
        return {
            "size": row.size,
            "last_time": row.last_time,
            "grant_leaves": row.grant_leaves,
            "tree_size": row.tree_size,
        }

    def _append_one(
        self,
        conn: Connection,
        view: _View,
        head: dict[str, int],
        created: dict[tuple[int, int], bytes],
        rows: dict[str, list[dict[str, Any]]],
        entry: Entry,
    ) -> Appended:
        index = head["size"]
        data = entry.to_bytes()
        rows["entry"].append({"idx": index, "kind": int(entry.entry_type), "data": data})
        fresh = merkle.new_nodes(
            index, merkle.hash_leaf(data), lambda lv, ix: created.get((lv, ix)) or self._node(conn, lv, ix)
        )
        rows["node"].extend({"level": lv, "idx": ix, "hash": h} for lv, ix, h in fresh)
        created.update(((lv, ix), h) for lv, ix, h in fresh)
        view.pending_entries[index] = data
        leaf_index = None
        if isinstance(entry, KeyEntry):
            rows["key"].append({"address": entry.actor, "entry_idx": index})
            view.pending_keys[entry.actor] = index
        elif isinstance(entry, AttestEntry):
            rows["attest"].append({"entry_idx": index, "request_hash": _fe(entry.request_hash)})
        elif isinstance(entry, GrantEntry | RevokeEntry):
            view.pending_nonces[entry.patient] = view.next_nonce(entry.patient) + 1
            if isinstance(entry, GrantEntry):
                leaf_index = head["grant_leaves"]
                head["grant_leaves"] += 1
                rows["grant"].append(
                    {
                        "grant_id": entry.grant_id,
                        "patient": entry.patient,
                        "leaf_index": leaf_index,
                        "entry_idx": index,
                        "revoked_idx": None,
                        "commitment": _fe(entry.commitment),
                    }
                )
                view.pending_grants[entry.grant_id] = GrantRecord(
                    entry.grant_id, entry.patient, leaf_index, index, False
                )
            else:
                record = view.grant(entry.grant_id)
                assert record is not None  # the rules checked it
                view.pending_grants[entry.grant_id] = GrantRecord(
                    record.grant_id, record.patient, record.leaf_index, record.entry_index, True
                )
                if entry.grant_id in {r["grant_id"] for r in rows["grant"]}:
                    for r in rows["grant"]:
                        if r["grant_id"] == entry.grant_id:
                            r["revoked_idx"] = index
                else:
                    conn.execute(update(_GRANT).where(_GRANT.c.grant_id == entry.grant_id).values(revoked_idx=index))
        head["size"] = index + 1
        head["last_time"] = entry.time
        return Appended(index, entry, leaf_index)

    # -- the grant tree, synced a batch at a time ---------------------------------------------------
    def sync(self) -> tuple[int, int]:
        with self.engine.begin() as conn:
            head = self._lock_head(conn)
            root = self._sync(conn, head)
            return head["size"], root

    def grant_path(self, leaf_index: int) -> tuple[int, int, MerklePath]:
        with self.engine.begin() as conn:
            head = self._lock_head(conn)
            root = self._sync(conn, head)
            tree = GrantTree(_SqlGrantNodes(conn, {}), size=head["grant_leaves"])
            return head["size"], root, tree.path(leaf_index)

    def _sync(self, conn: Connection, head: dict[str, int]) -> int:
        """Apply the GRANT/REVOKE entries since the last sync to the grant tree; returns the root at head size."""
        size, synced = head["size"], head["tree_size"]
        nodes = _SqlGrantNodes(conn, {})
        if synced == size:
            leaves_before = head["grant_leaves"]
            stored = conn.execute(select(_GROOT.c.root).where(_GROOT.c.size == size)).first()
            if stored is not None:
                return int.from_bytes(stored.root, "big")
            return GrantTree(nodes, size=leaves_before).root
        new = conn.execute(
            select(_GRANT.c.leaf_index, _GRANT.c.commitment)
            .where(_GRANT.c.entry_idx >= synced, _GRANT.c.entry_idx < size)
            .order_by(_GRANT.c.leaf_index)
        ).all()
        revoked = conn.execute(
            select(_GRANT.c.leaf_index).where(_GRANT.c.revoked_idx >= synced, _GRANT.c.revoked_idx < size)
        ).all()
        leaves_before = head["grant_leaves"] - len(new)
        tree = GrantTree(nodes, size=leaves_before)
        tree.advance([int.from_bytes(r.commitment, "big") for r in new], [r.leaf_index for r in revoked])
        nodes.flush()
        root = tree.root
        conn.execute(insert(_GROOT), {"size": size, "root": _fe(root)})
        head["tree_size"] = size
        conn.execute(_UPDATE_HEAD, head)
        return root

    # -- reads ------------------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def _node(self, conn: Connection, level: int, index: int) -> bytes:
        key = (level, index)
        cached = self._log_nodes.get(key)
        if cached is None:
            row = conn.execute(select(_NODE.c.hash).where(_NODE.c.level == level, _NODE.c.idx == index)).first()
            if row is None:
                raise KeyError(f"no log node at level {level}, index {index}")
            cached = self._log_nodes[key] = bytes(row.hash)
        return cached

    def prefetch(self, compute: Callable[[merkle.NodeReader], object]) -> None:
        """Load, in one query, every log node ``compute`` will read (a proof needs O(log n) of them).

        Which nodes a proof reads depends on sizes and indices only, never on hash values, so a dry run with
        placeholder hashes names them all.
        """
        wanted: list[tuple[int, int]] = []

        def record(level: int, index: int) -> bytes:
            wanted.append((level, index))
            return bytes(32)

        compute(record)
        missing = [k for k in dict.fromkeys(wanted) if k not in self._log_nodes]
        if not missing:
            return
        by_level: dict[int, list[int]] = {}
        for level, index in missing:
            by_level.setdefault(level, []).append(index)
        # One (level = ? AND idx IN (...)) per level: SQLite serves that from the primary key, a row-value IN
        # not. Written as text: building the same with SQLAlchemy operators cost more than the query.
        clauses, params = [], {}
        for n, (level, indices) in enumerate(by_level.items()):
            names = [f"i{n}_{k}" for k in range(len(indices))]
            clauses.append(f"(level = :l{n} AND idx IN ({', '.join(':' + name for name in names)}))")
            params[f"l{n}"] = level
            params.update(zip(names, indices, strict=True))
        query = text(f"SELECT level, idx, hash FROM ledger_node WHERE {' OR '.join(clauses)}")  # noqa: S608
        with self._read() as conn:
            rows = conn.execute(query, params)
            for row in rows:
                self._log_nodes[(row.level, row.idx)] = bytes(row.hash)

    def node(self, level: int, index: int) -> bytes:
        cached = self._log_nodes.get((level, index))
        if cached is not None:
            return cached
        with self._read() as conn:
            return self._node(conn, level, index)

    def size(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(_HEAD.c.size).where(_HEAD.c.id == 1)).scalar_one())

    def entry_bytes(self, start: int, end: int) -> list[bytes]:
        with self._read() as conn:
            rows = conn.execute(
                select(_ENTRY.c.data).where(_ENTRY.c.idx >= start, _ENTRY.c.idx < end).order_by(_ENTRY.c.idx)
            )
            return [bytes(r.data) for r in rows]

    def grant(self, grant_id: bytes) -> GrantRecord | None:
        with self._read() as conn:
            return _View(conn, {"last_time": 0}).grant(grant_id)

    def next_nonce(self, patient: str) -> int:
        with self._read() as conn:
            return _View(conn, {"last_time": 0}).next_nonce(patient)

    def actor_key(self, address: str) -> KeyEntry | None:
        with self._read() as conn:
            return _View(conn, {"last_time": 0}).actor_key(address)

    def attestation_entry(self, request_hash: int) -> int | None:
        with self._read() as conn:
            found = conn.execute(_SELECT_ATTEST, {"request_hash": _fe(request_hash)}).scalar()
            return None if found is None else int(found)

    def grant_roots(self) -> list[tuple[int, int]]:
        with self._read() as conn:
            rows = conn.execute(select(_GROOT).order_by(_GROOT.c.size))
            return [(int(r.size), int.from_bytes(r.root, "big")) for r in rows]
