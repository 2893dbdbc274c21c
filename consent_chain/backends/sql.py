"""The SQL ledger backend: the consent ledger in tables of the vault's database (SQLite or PostgreSQL).

The only consent_chain module that imports SQLAlchemy/SQLModel. One append is one database transaction:

1. lock the single ``ledger_head`` row (an UPDATE: SQLite takes its write lock, PostgreSQL a row lock), so
   appends are serialised and log indices are gapless even with several server processes;
2. for each entry, run the append rules (:func:`consent_chain.rules.check_entry`) against the state as this
   transaction sees it, store the entry, the RFC 9162 subtree hashes it completes, the state the rules read
   (keys, nonces, grants) and the grant-tree nodes it changes, and record the grant root after it;
3. update the head and commit. Any refusal rolls back the whole batch.

Subtree hashes of the log never change once written, so they are cached in memory; grant-tree nodes change, so
their cache is dropped whenever another process has appended since (the head's size says so).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, create_engine

from consent_chain import merkle
from consent_chain.entries import Entry, GrantEntry, KeyEntry, RevokeEntry, decode_entry
from consent_chain.errors import AppendRefused
from consent_chain.ledger import Appended
from consent_chain.rules import GrantRecord, LedgerView
from consent_chain.state_tree import GrantTree, MerklePath

__all__ = ["SqlLedgerBackend"]


class LedgerHeadRow(SQLModel, table=True):
    __tablename__ = "ledger_head"
    id: int = Field(primary_key=True)
    size: int
    last_time: int
    grant_leaves: int


class LedgerEntryRow(SQLModel, table=True):
    __tablename__ = "ledger_entry"
    idx: int = Field(primary_key=True)
    kind: int
    data: bytes


class LedgerNodeRow(SQLModel, table=True):
    __tablename__ = "ledger_node"
    level: int = Field(primary_key=True)
    idx: int = Field(primary_key=True)
    hash: bytes


class LedgerKeyRow(SQLModel, table=True):
    __tablename__ = "ledger_key"
    address: str = Field(primary_key=True, max_length=42)
    entry_idx: int


class LedgerNonceRow(SQLModel, table=True):
    __tablename__ = "ledger_nonce"
    patient: str = Field(primary_key=True, max_length=42)
    next_nonce: int


class LedgerGrantRow(SQLModel, table=True):
    __tablename__ = "ledger_grant"
    grant_id: bytes = Field(primary_key=True)
    patient: str = Field(index=True, max_length=42)
    leaf_index: int = Field(unique=True)
    entry_idx: int
    revoked_idx: int | None = None


class GrantNodeRow(SQLModel, table=True):
    """Non-zero nodes of the depth-20 Poseidon grant tree (a node absent is the empty subtree's hash)."""

    __tablename__ = "grant_node"
    level: int = Field(primary_key=True)
    idx: int = Field(primary_key=True)
    value: bytes  # 32-byte big-endian field element


class GrantRootRow(SQLModel, table=True):
    __tablename__ = "grant_root"
    entry_idx: int = Field(primary_key=True)
    root: bytes


_HEAD = LedgerHeadRow.__table__  # type: ignore[attr-defined]
_ENTRY = LedgerEntryRow.__table__  # type: ignore[attr-defined]
_NODE = LedgerNodeRow.__table__  # type: ignore[attr-defined]
_KEY = LedgerKeyRow.__table__  # type: ignore[attr-defined]
_NONCE = LedgerNonceRow.__table__  # type: ignore[attr-defined]
_GRANT = LedgerGrantRow.__table__  # type: ignore[attr-defined]
_GNODE = GrantNodeRow.__table__  # type: ignore[attr-defined]
_GROOT = GrantRootRow.__table__  # type: ignore[attr-defined]
_TABLES = [_HEAD, _ENTRY, _NODE, _KEY, _NONCE, _GRANT, _GNODE, _GROOT]


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
        for level, index in keys:
            self._c.execute(_GNODE.delete().where(_GNODE.c.level == level, _GNODE.c.idx == index))
        self._c.execute(
            insert(_GNODE), [{"level": lv, "idx": ix, "value": _fe(self._dirty[(lv, ix)])} for lv, ix in keys]
        )
        self._cache.update(self._dirty)
        self._dirty.clear()


class _View:
    """The state the append rules read, from inside the append transaction."""

    def __init__(self, conn: Connection, head: dict[str, int]) -> None:
        self._c = conn
        self._head = head

    def actor_key(self, address: str) -> KeyEntry | None:
        row = self._c.execute(
            select(_ENTRY.c.data)
            .select_from(_KEY.join(_ENTRY, _ENTRY.c.idx == _KEY.c.entry_idx))
            .where(_KEY.c.address == address)
        ).first()
        if row is None:
            return None
        entry = decode_entry(row.data)
        assert isinstance(entry, KeyEntry)
        return entry

    def next_nonce(self, patient: str) -> int:
        row = self._c.execute(select(_NONCE.c.next_nonce).where(_NONCE.c.patient == patient)).first()
        return int(row.next_nonce) if row is not None else 0

    def grant(self, grant_id: bytes) -> GrantRecord | None:
        row = self._c.execute(select(_GRANT).where(_GRANT.c.grant_id == grant_id)).first()
        if row is None:
            return None
        return GrantRecord(row.grant_id, row.patient, row.leaf_index, row.entry_idx, row.revoked_idx is not None)

    def last_time(self) -> int:
        return self._head["last_time"]


class SqlLedgerBackend:
    """A consent ledger stored in SQL tables; build with a SQLAlchemy URL or an existing engine."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        if isinstance(url_or_engine, str):
            kwargs: dict[str, Any] = {}
            if url_or_engine.startswith("sqlite"):
                kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            self.engine = create_engine(url_or_engine, **kwargs)
            if url_or_engine.startswith("sqlite"):
                event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = url_or_engine
        SQLModel.metadata.create_all(self.engine, tables=_TABLES)
        # Another process may create the head row first: then this insert fails, and that is fine.
        with contextlib.suppress(IntegrityError), self.engine.begin() as conn:
            if conn.execute(select(_HEAD.c.id)).first() is None:
                conn.execute(insert(_HEAD), {"id": 1, "size": 0, "last_time": 0, "grant_leaves": 0})
        self._log_nodes: dict[tuple[int, int], bytes] = {}
        self._grant_nodes: dict[tuple[int, int], int] = {}
        self._grant_nodes_at = -1  # the log size the grant-node cache is valid for

    # -- append -----------------------------------------------------------------------------------
    def append(self, entries: Sequence[Entry], check: Callable[[LedgerView, Entry], Entry]) -> list[Appended]:
        try:
            with self.engine.begin() as conn:
                conn.execute(update(_HEAD).where(_HEAD.c.id == 1).values(size=_HEAD.c.size))  # take the lock
                row = conn.execute(select(_HEAD).where(_HEAD.c.id == 1)).one()
                head = {"size": row.size, "last_time": row.last_time, "grant_leaves": row.grant_leaves}
                if self._grant_nodes_at != head["size"]:
                    self._grant_nodes.clear()
                nodes = _SqlGrantNodes(conn, self._grant_nodes)
                tree = GrantTree(nodes, size=head["grant_leaves"])
                view = _View(conn, head)
                created: dict[tuple[int, int], bytes] = {}
                appended = [self._append_one(conn, view, head, tree, created, check(view, e)) for e in entries]
                nodes.flush()
                conn.execute(update(_HEAD).where(_HEAD.c.id == 1).values(**head))
        except IntegrityError as exc:
            self._grant_nodes.clear()
            raise AppendRefused("conflict", "a concurrent append collided with this one; retry") from exc
        except BaseException:
            self._grant_nodes.clear()  # the rolled-back transaction may have cached unwritten nodes
            raise
        # Only now, after the commit: a rolled-back batch must leave no node in the cache.
        self._log_nodes.update(created)
        self._grant_nodes_at = head["size"]
        return appended

    def _append_one(
        self,
        conn: Connection,
        view: _View,
        head: dict[str, int],
        tree: GrantTree,
        created: dict[tuple[int, int], bytes],
        entry: Entry,
    ) -> Appended:
        index = head["size"]
        data = entry.to_bytes()
        conn.execute(insert(_ENTRY), {"idx": index, "kind": int(entry.entry_type), "data": data})
        fresh = merkle.new_nodes(
            index, merkle.hash_leaf(data), lambda lv, ix: created.get((lv, ix)) or self._node(conn, lv, ix)
        )
        conn.execute(insert(_NODE), [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in fresh])
        created.update(((lv, ix), h) for lv, ix, h in fresh)
        leaf_index = None
        if isinstance(entry, KeyEntry):
            conn.execute(insert(_KEY), {"address": entry.actor, "entry_idx": index})
        elif isinstance(entry, GrantEntry | RevokeEntry):
            self._bump_nonce(conn, view, entry.patient)
            if isinstance(entry, GrantEntry):
                leaf_index = tree.append(entry.commitment)
                conn.execute(
                    insert(_GRANT),
                    {
                        "grant_id": entry.grant_id,
                        "patient": entry.patient,
                        "leaf_index": leaf_index,
                        "entry_idx": index,
                        "revoked_idx": None,
                    },
                )
                head["grant_leaves"] = tree.size
            else:
                record = view.grant(entry.grant_id)
                assert record is not None  # the rules checked it
                tree.revoke(record.leaf_index)
                conn.execute(update(_GRANT).where(_GRANT.c.grant_id == entry.grant_id).values(revoked_idx=index))
            conn.execute(insert(_GROOT), {"entry_idx": index, "root": _fe(tree.root)})
        head["size"] = index + 1
        head["last_time"] = entry.time
        return Appended(index, entry, tree.root, leaf_index)

    @staticmethod
    def _bump_nonce(conn: Connection, view: _View, patient: str) -> None:
        current = view.next_nonce(patient)
        if current == 0:
            conn.execute(insert(_NONCE), {"patient": patient, "next_nonce": 1})
        else:
            conn.execute(update(_NONCE).where(_NONCE.c.patient == patient).values(next_nonce=current + 1))

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

    def grant_root(self) -> int:
        with self._read() as conn:
            leaves = conn.execute(select(_HEAD.c.grant_leaves).where(_HEAD.c.id == 1)).scalar_one()
            return GrantTree(_SqlGrantNodes(conn, {}), size=int(leaves)).root

    def grant_roots(self) -> list[tuple[int, int]]:
        with self._read() as conn:
            rows = conn.execute(select(_GROOT).order_by(_GROOT.c.entry_idx))
            return [(int(r.entry_idx), int.from_bytes(r.root, "big")) for r in rows]

    def grant_path(self, leaf_index: int) -> MerklePath:
        with self._read() as conn:
            leaves = conn.execute(select(_HEAD.c.grant_leaves).where(_HEAD.c.id == 1)).scalar_one()
            return GrantTree(_SqlGrantNodes(conn, {}), size=int(leaves)).path(leaf_index)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
