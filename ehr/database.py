"""Engines for pchr's SQL database, shared by the vault's store and the SQL consent ledger.

Both adapters (:mod:`ehr.store` and :mod:`consent_chain.backends.sql`) live in one database named by a SQLAlchemy
URL, and build their engines here so that the database is set up one way whichever opens it first:

- **SQLite** (the default, one machine): WAL journal, so readers never block the writer, and ``synchronous=NORMAL``,
  durable across application crashes in WAL mode. A connection waits up to 30 s for the write lock.
- **PostgreSQL** (``postgresql+psycopg2://user:password@host/db``): READ COMMITTED set explicitly, whatever the
  server's default. The ledger's append holds the ledger's head row locked (``SELECT ... FOR UPDATE``) and then
  relies on each later statement seeing everything committed before the lock was granted, which READ COMMITTED
  gives and REPEATABLE READ or SERIALIZABLE would not. Pooled connections are pinged before use, so a database
  restart costs no failed request.

Tables are created by :func:`create_tables`: on PostgreSQL under a transaction-scoped advisory lock, because
server processes starting together on an empty database would otherwise race to create the same tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.exc import DBAPIError

__all__ = ["create_database_engine", "create_tables", "is_transient"]

# SQLSTATEs after which the same transaction, run again, may well succeed: serialization failure, deadlock
# detected, lock not available (PostgreSQL Appendix A, class 40 and 55P03).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
# One advisory-lock key for "pchr creates its tables": 64 bits of a hash of the phrase, as a signed bigint.
_SCHEMA_LOCK = int.from_bytes(hashlib.sha256(b"pchr: create tables").digest()[:8], "big", signed=True)


def create_database_engine(url: str, *, sqlite_pool_size: int | None = None, echo: bool = False) -> Engine:
    """An engine for ``url`` with pchr's settings for SQLite or PostgreSQL (any other URL: SQLAlchemy defaults).

    ``sqlite_pool_size`` keeps that many SQLite connections open for good. A PostgreSQL engine keeps SQLAlchemy's
    pool (5 connections, 10 more under load): the server's ``max_connections`` bounds them all together.
    """
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if sqlite_pool_size is not None:
            # A connection per server thread: a pool that closes and reopens connections under load repeats
            # the PRAGMAs below each time.
            kwargs.update(pool_size=sqlite_pool_size, max_overflow=0, pool_timeout=30)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        kwargs.update(isolation_level="READ COMMITTED", pool_pre_ping=True)
    return create_engine(url, **kwargs)


def create_tables(engine: Engine, metadata: MetaData, tables: Sequence[Table] | None = None) -> None:
    """Create the tables that do not exist yet (all of ``metadata``'s, or ``tables``); safe to race."""
    if engine.dialect.name != "postgresql":
        metadata.create_all(engine, tables=tables)
        return
    # PostgreSQL's DDL is transactional: the lock is held until the CREATEs commit, and whoever waited finds
    # the tables there.
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        metadata.create_all(conn, tables=tables)


def is_transient(exc: DBAPIError) -> bool:
    """True if the database aborted the transaction for a concurrent one (deadlock, serialization), not for the data."""
    return getattr(exc.orig, "pgcode", None) in _TRANSIENT_SQLSTATES


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
