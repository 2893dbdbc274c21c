"""The vault's storage: SQLModel tables for sealed versions, wrapped keys and public actor records.

The only module that imports SQLModel/SQLAlchemy. SQLite file by default; any SQLAlchemy URL (PostgreSQL) by
setting. What is stored is ciphertext and metadata only: resource type, id, version, the patient's pseudonym
(their pchr address), timestamps, and per-recipient wrapped data keys. There is no column a plaintext could go in.

Writes happen inside :meth:`Store.session`, one database transaction: a failure anywhere rolls everything back,
so a transaction Bundle with one bad entry leaves nothing behind. Two writers racing for the same version
collide on the primary key and the loser gets :class:`~ehr.errors.Conflict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, event, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from ehr.crypto import SealContext, SealedResource, WrappedKey
from ehr.errors import Conflict
from ehr.identity import ActorPublic, Role
from ehr.search import TimeBound

__all__ = ["Head", "Store", "StoreSession", "VersionRecord"]


class ActorRow(SQLModel, table=True):
    __tablename__ = "actor"
    address: str = Field(primary_key=True, max_length=42)
    role: str = Field(max_length=16)
    identity_public: bytes
    x25519_public: bytes
    binding_signature: bytes
    registered_at: datetime


class WriterRow(SQLModel, table=True):
    __tablename__ = "named_writer"
    patient: str = Field(primary_key=True, max_length=42)
    writer: str = Field(primary_key=True, max_length=42)
    named_at: datetime


class HeadRow(SQLModel, table=True):
    """The current version of each resource: what read and search look at."""

    __tablename__ = "resource_head"
    resource_type: str = Field(primary_key=True, max_length=64)
    resource_id: str = Field(primary_key=True, max_length=64)
    patient: str = Field(index=True, max_length=42)
    version_id: int
    deleted: bool
    last_updated: datetime = Field(index=True)


class VersionRow(SQLModel, table=True):
    __tablename__ = "resource_version"
    resource_type: str = Field(primary_key=True, max_length=64)
    resource_id: str = Field(primary_key=True, max_length=64)
    version_id: int = Field(primary_key=True)
    patient: str = Field(index=True, max_length=42)
    method: str = Field(max_length=8)
    last_updated: datetime = Field(index=True)
    nonce: bytes | None = None
    ciphertext: bytes | None = None  # None for a deletion


class WrappedKeyRow(SQLModel, table=True):
    __tablename__ = "wrapped_key"
    resource_type: str = Field(primary_key=True, max_length=64)
    resource_id: str = Field(primary_key=True, max_length=64)
    version_id: int = Field(primary_key=True)
    recipient: str = Field(primary_key=True, max_length=42)
    ephemeral_public: bytes
    wrapped: bytes


class UsedAssertionRow(SQLModel, table=True):
    """Client-assertion ``jti`` values seen, kept until the assertion would have expired (replay guard)."""

    __tablename__ = "used_assertion"
    key: str = Field(primary_key=True, max_length=200)
    expires_at: datetime = Field(index=True)


@dataclass(frozen=True)
class Head:
    resource_type: str
    resource_id: str
    patient: str
    version_id: int
    deleted: bool
    last_updated: datetime


@dataclass(frozen=True)
class VersionRecord:
    resource_type: str
    resource_id: str
    version_id: int
    patient: str
    method: str
    last_updated: datetime
    sealed: SealedResource | None  # None for a deletion
    key: WrappedKey | None = None  # the key wrapped for whoever asked, if any

    @property
    def deleted(self) -> bool:
        return self.sealed is None


def _naive(dt: datetime) -> datetime:
    # SQLModel's DateTime stores aware datetimes (as UTC); normalise so comparisons are exact.
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _record(row: VersionRow, key: WrappedKeyRow | None) -> VersionRecord:
    sealed = None
    if row.ciphertext is not None and row.nonce is not None:
        context = SealContext(row.resource_type, row.resource_id, str(row.version_id), row.patient)
        sealed = SealedResource(context, row.nonce, row.ciphertext)
    wrapped = WrappedKey(key.recipient, key.ephemeral_public, key.wrapped) if key is not None else None
    return VersionRecord(
        row.resource_type,
        row.resource_id,
        row.version_id,
        row.patient,
        row.method,
        _aware(row.last_updated),
        sealed,
        wrapped,
    )


class StoreSession:
    """Operations inside one database transaction."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # -- actors ---------------------------------------------------------------------------------
    def get_actor(self, address: str) -> ActorPublic | None:
        row = self._s.get(ActorRow, address)
        if row is None:
            return None
        # The binding was verified at registration; the constructor re-checks the address against the key.
        return ActorPublic(row.address, Role(row.role), row.identity_public, row.x25519_public, row.binding_signature)

    def put_actor(self, actor: ActorPublic, now: datetime) -> None:
        self._s.add(
            ActorRow(
                address=actor.address,
                role=actor.role.value,
                identity_public=actor.identity_public,
                x25519_public=actor.x25519_public,
                binding_signature=actor.binding_signature,
                registered_at=_naive(now),
            )
        )
        self._s.flush()

    # -- named writers --------------------------------------------------------------------------
    def is_writer(self, patient: str, writer: str) -> bool:
        return self._s.get(WriterRow, (patient, writer)) is not None

    def add_writer(self, patient: str, writer: str, now: datetime) -> None:
        if not self.is_writer(patient, writer):
            self._s.add(WriterRow(patient=patient, writer=writer, named_at=_naive(now)))
            self._s.flush()

    def remove_writer(self, patient: str, writer: str) -> bool:
        row = self._s.get(WriterRow, (patient, writer))
        if row is None:
            return False
        self._s.delete(row)
        self._s.flush()
        return True

    def writers(self, patient: str) -> list[str]:
        rows = self._s.exec(select(WriterRow).where(WriterRow.patient == patient).order_by(col(WriterRow.writer)))
        return [r.writer for r in rows]

    # -- resources ------------------------------------------------------------------------------
    def head(self, resource_type: str, resource_id: str) -> Head | None:
        row = self._s.get(HeadRow, (resource_type, resource_id))
        if row is None:
            return None
        return Head(
            row.resource_type, row.resource_id, row.patient, row.version_id, row.deleted, _aware(row.last_updated)
        )

    def add_version(self, record: VersionRecord, keys: Iterable[WrappedKey]) -> None:
        """Append a version (and its wrapped keys) and make it the head; Conflict if that version exists."""
        at = _naive(record.last_updated)
        sealed = record.sealed
        try:
            with self._s.no_autoflush:
                self._s.add(
                    VersionRow(
                        resource_type=record.resource_type,
                        resource_id=record.resource_id,
                        version_id=record.version_id,
                        patient=record.patient,
                        method=record.method,
                        last_updated=at,
                        nonce=sealed.nonce if sealed else None,
                        ciphertext=sealed.ciphertext if sealed else None,
                    )
                )
                for key in keys:
                    self._s.add(
                        WrappedKeyRow(
                            resource_type=record.resource_type,
                            resource_id=record.resource_id,
                            version_id=record.version_id,
                            recipient=key.recipient,
                            ephemeral_public=key.ephemeral_public,
                            wrapped=key.wrapped,
                        )
                    )
                head = self._s.get(HeadRow, (record.resource_type, record.resource_id))
                if head is None:
                    head = HeadRow(
                        resource_type=record.resource_type,
                        resource_id=record.resource_id,
                        patient=record.patient,
                        version_id=record.version_id,
                        deleted=record.deleted,
                        last_updated=at,
                    )
                else:
                    head.version_id, head.deleted, head.last_updated = record.version_id, record.deleted, at
                self._s.add(head)
            self._s.flush()
        except IntegrityError as exc:
            raise Conflict(
                f"{record.resource_type}/{record.resource_id} version {record.version_id} was written concurrently"
            ) from exc

    def version(self, resource_type: str, resource_id: str, version_id: int, recipient: str) -> VersionRecord | None:
        stmt = (
            select(VersionRow, WrappedKeyRow)
            .join(WrappedKeyRow, and_(*self._key_join(recipient)), isouter=True)
            .where(
                VersionRow.resource_type == resource_type,
                VersionRow.resource_id == resource_id,
                VersionRow.version_id == version_id,
            )
        )
        found = self._s.exec(stmt).first()
        return _record(*found) if found else None

    def history(
        self,
        recipient: str,
        patients: Sequence[str],
        *,
        resource_type: str | None = None,
        resource_id: str | None = None,
        since: datetime | None = None,
        offset: int = 0,
        count: int = 20,
    ) -> tuple[int, list[VersionRecord]]:
        """Versions newest first, within the given patients' compartments."""
        where: list[Any] = [col(VersionRow.patient).in_(list(patients))]
        if resource_type is not None:
            where.append(VersionRow.resource_type == resource_type)
        if resource_id is not None:
            where.append(VersionRow.resource_id == resource_id)
        if since is not None:
            where.append(col(VersionRow.last_updated) >= _naive(since))
        total = self._s.exec(select(func.count()).select_from(VersionRow).where(*where)).one()
        stmt = (
            select(VersionRow, WrappedKeyRow)
            .join(WrappedKeyRow, and_(*self._key_join(recipient)), isouter=True)
            .where(*where)
            .order_by(col(VersionRow.last_updated).desc(), col(VersionRow.version_id).desc())
            .offset(offset)
            .limit(count)
        )
        return int(total), [_record(v, k) for v, k in self._s.exec(stmt)]

    def search(
        self,
        recipient: str,
        resource_type: str,
        patients: Sequence[str],
        *,
        ids: Sequence[str] = (),
        bounds: Sequence[TimeBound] = (),
        newest_first: bool = False,
        offset: int = 0,
        count: int = 20,
    ) -> tuple[int, list[VersionRecord]]:
        """Current, non-deleted versions of a type in the given compartments, oldest first by default."""
        where: list[Any] = [
            HeadRow.resource_type == resource_type,
            col(HeadRow.patient).in_(list(patients)),
            col(HeadRow.deleted).is_(False),
        ]
        if ids:
            where.append(col(HeadRow.resource_id).in_(list(ids)))
        for bound in bounds:
            where.append(_bound_clause(bound))
        total = self._s.exec(select(func.count()).select_from(HeadRow).where(*where)).one()
        if count == 0:
            return int(total), []
        order = (
            col(HeadRow.last_updated).desc() if newest_first else col(HeadRow.last_updated).asc(),
            col(HeadRow.resource_id).asc(),
        )
        stmt = (
            select(VersionRow, WrappedKeyRow)
            .join(
                HeadRow,
                and_(
                    col(HeadRow.resource_type) == col(VersionRow.resource_type),
                    col(HeadRow.resource_id) == col(VersionRow.resource_id),
                    col(HeadRow.version_id) == col(VersionRow.version_id),
                ),
            )
            .join(WrappedKeyRow, and_(*self._key_join(recipient)), isouter=True)
            .where(*where)
            .order_by(*order)
            .offset(offset)
            .limit(count)
        )
        return int(total), [_record(v, k) for v, k in self._s.exec(stmt)]

    @staticmethod
    def _key_join(recipient: str) -> list[Any]:
        return [
            WrappedKeyRow.resource_type == VersionRow.resource_type,
            WrappedKeyRow.resource_id == VersionRow.resource_id,
            WrappedKeyRow.version_id == VersionRow.version_id,
            WrappedKeyRow.recipient == recipient,
        ]

    # -- replay guard ---------------------------------------------------------------------------
    def use_assertion(self, key: str, expires_at: datetime, now: datetime) -> bool:
        """Record a client assertion id; False if it was already used (a replay)."""
        self._s.exec(
            UsedAssertionRow.__table__.delete().where(  # type: ignore[attr-defined]
                UsedAssertionRow.__table__.c.expires_at < _naive(now)  # type: ignore[attr-defined]
            )
        )
        if self._s.get(UsedAssertionRow, key) is not None:
            return False
        self._s.add(UsedAssertionRow(key=key, expires_at=_naive(expires_at)))
        try:
            self._s.flush()
        except IntegrityError:
            return False
        return True


def _bound_clause(bound: TimeBound) -> Any:
    column = col(HeadRow.last_updated)
    at = _naive(bound.at)
    if bound.op == "<":
        return column < at
    if bound.op == "<=":
        return column <= at
    if bound.op == ">":
        return column > at
    if bound.op == ">=":
        return column >= at
    if bound.op == "ne" and bound.until is not None:
        return or_(column < at, column >= _naive(bound.until))
    raise ValueError(f"unknown time bound {bound.op!r}")


class Store:
    """A database holding sealed versions; build with a SQLAlchemy URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        kwargs: dict[str, Any] = {"echo": echo}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.url = url
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        SQLModel.metadata.create_all(self.engine)

    @contextmanager
    def session(self) -> Iterator[StoreSession]:
        """One database transaction: committed if the block succeeds, rolled back entirely if it raises."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield StoreSession(session)
                session.commit()
            except IntegrityError as exc:
                session.rollback()
                raise Conflict("the write collided with a concurrent write; retry") from exc
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; NORMAL sync is durable across application crashes in WAL mode.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
