"""The databases the storage tests run on: a SQLite file always, PostgreSQL when a server is named.

``PCHR_TEST_POSTGRES_URL`` names a PostgreSQL server and a role allowed to create roles (``.ci/postgres.sh
start`` prints one; ``.ci/run`` always sets it). Each test then gets a database of its own: a new login role with a
schema of the same name, which PostgreSQL's default ``search_path`` (``"$user", public``) puts first, so whatever
the test creates lands there, empty at the start and dropped afterwards. The URL the code under test gets is an
ordinary one (``postgresql+psycopg2://role:password@host:port/db``) for an ordinary, unprivileged role. A schema
costs about a millisecond where ``CREATE DATABASE`` costs a quarter of a second or more, which over a hundred
tests is the difference between seconds and a minute.

Each test role is set up unlike PostgreSQL's defaults in the two ways pchr must not depend on: a time zone other
than UTC (Asia/Kathmandu, +05:45) and REPEATABLE READ as the default isolation level. The engines set what they
rely on themselves (aware UTC times, READ COMMITTED); tests on these databases fail if they stop doing so.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

__all__ = [
    "DATABASES",
    "NO_POSTGRES",
    "POSTGRES_URL",
    "fresh_postgres_database",
    "postgres_only",
    "select_databases",
    "sqlite_only",
]

POSTGRES_URL = os.environ.get("PCHR_TEST_POSTGRES_URL") or None
DATABASES = ("sqlite", "postgresql") if POSTGRES_URL else ("sqlite",)
NO_POSTGRES = "no PostgreSQL server: set PCHR_TEST_POSTGRES_URL (see .ci/postgres.sh; .ci/run sets it)"
SERVER_TIME_ZONE = "Asia/Kathmandu"

# For tests that look at a SQLite file itself, or at PostgreSQL itself (tests/conftest.py applies them).
sqlite_only = pytest.mark.sqlite_only
postgres_only = pytest.mark.postgres_only


def select_databases(items: list[pytest.Item]) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """(kept, deselected): a ``sqlite_only`` test runs on SQLite alone, a ``postgres_only`` one on PostgreSQL alone.

    Without a PostgreSQL server a ``postgres_only`` test is kept, and skipped with the reason.
    """
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        database = callspec.params.get("database_url") if callspec is not None else None
        if database is None:
            kept.append(item)
        elif item.get_closest_marker("sqlite_only") is not None and database != "sqlite":
            dropped.append(item)
        elif item.get_closest_marker("postgres_only") is not None and database != "postgresql":
            if POSTGRES_URL is None:
                item.add_marker(pytest.mark.skip(reason=NO_POSTGRES))
                kept.append(item)
            else:
                dropped.append(item)
        else:
            kept.append(item)
    return kept, dropped


_admin: Engine | None = None


def _admin_engine() -> Engine:
    global _admin
    if _admin is None:
        if POSTGRES_URL is None:
            raise RuntimeError(NO_POSTGRES)
        _admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    return _admin


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server (a role and its schema); dropped on exit."""
    name = f"pchr_test_{uuid.uuid4().hex[:20]}"
    password = secrets.token_hex(16)
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
        conn.execute(text(f"CREATE SCHEMA {name} AUTHORIZATION {name}"))
        conn.execute(text(f"ALTER ROLE {name} SET timezone TO '{SERVER_TIME_ZONE}'"))
        conn.execute(text(f"ALTER ROLE {name} SET default_transaction_isolation TO 'repeatable read'"))
    try:
        yield make_url(POSTGRES_URL).set(username=name, password=password).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :n"), {"n": name})
            conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
            conn.execute(text(f"DROP ROLE {name}"))
