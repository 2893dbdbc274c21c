"""The vault's storage: SQLModel tables for sealed versions, wrapped keys and public actor records.

The vault's only module on SQLModel (its engine comes from :mod:`ehr.database`). SQLite file by default;
PostgreSQL by URL. What is stored is ciphertext and metadata only: resource type, id, version, the patient's
pseudonym (their pchr address), timestamps, and wrapped data keys. There is no column a plaintext could go in.

A version's data key is wrapped for its patient when it is written (``wrapped_key``), and re-wrapped for a grantee
by the patient's client under one grant (``key_share``, one row per version and grant): a share belongs to the
grant it was made under, so it opens nothing once that grant has ended, and revoking a grant deletes its shares
and no other grant's. Which shares may be served is the access policy's decision (:mod:`ehr.policy`); the queries
here take the grant ids it allows.

Writes happen inside :meth:`Store.session`, one database transaction: a failure anywhere rolls everything back,
so a transaction Bundle with one bad entry leaves nothing behind. Two writers racing for the same version
collide on the primary key and the loser gets :class:`~ehr.errors.Conflict`, as does a transaction PostgreSQL
aborts for a concurrent one (a deadlock between two Bundles).

Times go in and come out as aware UTC datetimes: ``timestamp with time zone`` on PostgreSQL (so the server's or
session's time zone never shifts them), text on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Engine, and_, bindparam, case, func, insert, inspect, or_, select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Field, Session, SQLModel

from ehr.crypto import SealContext, SealedResource, WrappedKey
from ehr.database import create_database_engine, create_tables, is_transient
from ehr.errors import Conflict
from ehr.identity import ActorPublic, Role
from ehr.search import TimeBound

__all__ = ["GrantPolicy", "Head", "SharedKey", "Store", "StoreSession", "VersionRecord"]


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
    """A version's data key wrapped for its patient, as written (grantees' keys are in ``key_share``)."""

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


class GrantPolicyRow(SQLModel, table=True):
    """A grant's opening as the vault enforces it (off the ledger, which holds only the commitment)."""

    __tablename__ = "grant_policy"
    grant_id: str = Field(primary_key=True, max_length=64)  # hex
    patient: str = Field(index=True, max_length=42)
    grantee: str = Field(index=True, max_length=42)
    purpose: str = Field(max_length=80)
    scope: str = Field(max_length=16)  # 64-bit mask as hex: SQL integers are signed 64-bit
    catalogue_id: str = Field(max_length=64)
    expiry: datetime
    granted_at: datetime
    ledger_index: int = Field(sa_type=BigInteger)
    revoked_at: datetime | None = None
    salt: str = Field(max_length=64)  # hex: the grantee needs it to prove membership (zk attestations)


class KeyShareRow(SQLModel, table=True):
    """A version's data key re-wrapped for a grantee by the patient's client, under one grant."""

    __tablename__ = "key_share"
    resource_type: str = Field(primary_key=True, max_length=64)
    resource_id: str = Field(primary_key=True, max_length=64)
    version_id: int = Field(primary_key=True)
    # hex; indexed for revocation, which deletes one grant's shares
    grant_id: str = Field(primary_key=True, max_length=64, foreign_key="grant_policy.grant_id", index=True)
    recipient: str = Field(max_length=42)  # the grant's grantee
    ephemeral_public: bytes
    wrapped: bytes


@dataclass(frozen=True)
class GrantPolicy:
    grant_id: bytes
    patient: str
    grantee: str
    purpose: str
    scope: int
    catalogue_id: str
    expiry: datetime
    granted_at: datetime
    ledger_index: int
    revoked_at: datetime | None
    salt: int
    """The commitment's salt: known to the grant's parties (and the vault), never to the ledger."""

    def active_at(self, when: datetime) -> bool:
        return self.revoked_at is None and when < self.expiry


# Hot-path statements, built once: constructing SQLAlchemy expressions per request costs more than running them.
_HEAD_T = HeadRow.__table__  # type: ignore[attr-defined]
_VERSION_T = VersionRow.__table__  # type: ignore[attr-defined]
_KEY_T = WrappedKeyRow.__table__  # type: ignore[attr-defined]
_ACTOR_T = ActorRow.__table__  # type: ignore[attr-defined]
_WRITER_T = WriterRow.__table__  # type: ignore[attr-defined]
_ASSERTION_T = UsedAssertionRow.__table__  # type: ignore[attr-defined]
_POLICY_T = GrantPolicyRow.__table__  # type: ignore[attr-defined]
_SHARE_T = KeyShareRow.__table__  # type: ignore[attr-defined]

_SELECT_HEAD = select(_HEAD_T.c.patient, _HEAD_T.c.version_id, _HEAD_T.c.deleted, _HEAD_T.c.last_updated).where(
    _HEAD_T.c.resource_type == bindparam("rt"), _HEAD_T.c.resource_id == bindparam("rid")
)
# A version and the data key wrapped for ``recipient`` as its patient: outer for reads (a deletion has no key),
# inner for search. A ``wrapped_key`` row for anyone else opens nothing (grantees' keys are shares, below).
_KEY_FOR_RECIPIENT = and_(
    _KEY_T.c.resource_type == _VERSION_T.c.resource_type,
    _KEY_T.c.resource_id == _VERSION_T.c.resource_id,
    _KEY_T.c.version_id == _VERSION_T.c.version_id,
    _KEY_T.c.recipient == bindparam("recipient"),
    _VERSION_T.c.patient == bindparam("recipient"),
)
_KEY_JOIN = _VERSION_T.outerjoin(_KEY_T, _KEY_FOR_RECIPIENT)
_HEAD_OF_VERSION = and_(
    _HEAD_T.c.resource_type == _VERSION_T.c.resource_type,
    _HEAD_T.c.resource_id == _VERSION_T.c.resource_id,
    _HEAD_T.c.version_id == _VERSION_T.c.version_id,
)
_SEARCH_JOIN = _VERSION_T.join(_KEY_T, _KEY_FOR_RECIPIENT).join(_HEAD_T, _HEAD_OF_VERSION)
_VERSION_COLUMNS = (
    _VERSION_T.c.resource_type,
    _VERSION_T.c.resource_id,
    _VERSION_T.c.version_id,
    _VERSION_T.c.patient,
    _VERSION_T.c.method,
    _VERSION_T.c.last_updated,
    _VERSION_T.c.nonce,
    _VERSION_T.c.ciphertext,
    _KEY_T.c.recipient,
    _KEY_T.c.ephemeral_public,
    _KEY_T.c.wrapped,
)
_SELECT_VERSION = (
    select(*_VERSION_COLUMNS)
    .select_from(_KEY_JOIN)
    .where(
        _VERSION_T.c.resource_type == bindparam("rt"),
        _VERSION_T.c.resource_id == bindparam("rid"),
        _VERSION_T.c.version_id == bindparam("vid"),
    )
)
_SELECT_SHARES = (
    select(_SHARE_T.c.grant_id, _SHARE_T.c.recipient, _SHARE_T.c.ephemeral_public, _SHARE_T.c.wrapped)
    .where(
        _SHARE_T.c.resource_type == bindparam("rt"),
        _SHARE_T.c.resource_id == bindparam("rid"),
        _SHARE_T.c.version_id == bindparam("vid"),
        _SHARE_T.c.recipient == bindparam("recipient"),
    )
    .order_by(_SHARE_T.c.grant_id)
)


def _keyed(versions: Any, grants: Sequence[bytes]) -> tuple[Any, tuple[Any, ...], Any]:
    """``versions`` joined to the key ``recipient`` may use for each: its own, or a share under one of ``grants``.

    Returns (join, the columns of _VERSION_COLUMNS plus the share's grant id, a clause true where there is a key).
    At most one share per version is taken (that of the lowest grant id): two grants sharing one version must
    neither repeat it in a page nor count it twice.
    """
    chosen = (
        select(
            _SHARE_T.c.resource_type,
            _SHARE_T.c.resource_id,
            _SHARE_T.c.version_id,
            func.min(_SHARE_T.c.grant_id).label("grant_id"),
        )
        .where(_SHARE_T.c.recipient == bindparam("recipient"), _SHARE_T.c.grant_id.in_([g.hex() for g in grants]))
        .group_by(_SHARE_T.c.resource_type, _SHARE_T.c.resource_id, _SHARE_T.c.version_id)
        .subquery("chosen")
    )
    join = (
        versions.outerjoin(_KEY_T, _KEY_FOR_RECIPIENT)
        .outerjoin(
            chosen,
            and_(
                chosen.c.resource_type == _VERSION_T.c.resource_type,
                chosen.c.resource_id == _VERSION_T.c.resource_id,
                chosen.c.version_id == _VERSION_T.c.version_id,
            ),
        )
        .outerjoin(
            _SHARE_T,
            and_(
                _SHARE_T.c.resource_type == chosen.c.resource_type,
                _SHARE_T.c.resource_id == chosen.c.resource_id,
                _SHARE_T.c.version_id == chosen.c.version_id,
                _SHARE_T.c.grant_id == chosen.c.grant_id,
            ),
        )
    )
    own = _KEY_T.c.recipient.is_not(None)
    columns = (
        *_VERSION_COLUMNS[:-3],
        func.coalesce(_KEY_T.c.recipient, _SHARE_T.c.recipient),
        func.coalesce(_KEY_T.c.ephemeral_public, _SHARE_T.c.ephemeral_public),
        func.coalesce(_KEY_T.c.wrapped, _SHARE_T.c.wrapped),
        case((own, None), else_=_SHARE_T.c.grant_id),
    )
    return join, columns, or_(own, _SHARE_T.c.grant_id.is_not(None))


_SELECT_ACTOR = select(
    _ACTOR_T.c.address,
    _ACTOR_T.c.role,
    _ACTOR_T.c.identity_public,
    _ACTOR_T.c.x25519_public,
    _ACTOR_T.c.binding_signature,
).where(_ACTOR_T.c.address == bindparam("address"))
_SELECT_WRITER = select(_WRITER_T.c.writer).where(
    _WRITER_T.c.patient == bindparam("patient"), _WRITER_T.c.writer == bindparam("writer")
)
_UPDATE_HEAD = (
    sa_update(_HEAD_T)
    .where(_HEAD_T.c.resource_type == bindparam("rt"), _HEAD_T.c.resource_id == bindparam("rid"))
    .values(version_id=bindparam("vid"), deleted=bindparam("del"), last_updated=bindparam("at"))
)


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
    grant_id: bytes | None = None  # the grant ``key`` was shared under; None for the patient's own key

    @property
    def deleted(self) -> bool:
        return self.sealed is None


def _naive(dt: datetime) -> datetime:
    # SQLModel's DateTime stores aware datetimes (as UTC); normalise so comparisons are exact.
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@dataclass(frozen=True)
class SharedKey:
    """A data key re-wrapped for a grantee, and the grant it was shared under."""

    grant_id: bytes
    key: WrappedKey


def _record(row: Any) -> VersionRecord:
    """A VersionRecord from a row of _VERSION_COLUMNS, or of _keyed's columns (which add the share's grant id)."""
    (rtype, rid, vid, patient, method, at, nonce, ciphertext, recipient, epk, wrapped, *share) = tuple(row)
    sealed = None
    if ciphertext is not None and nonce is not None:
        sealed = SealedResource(SealContext(rtype, rid, str(vid), patient), nonce, ciphertext)
    key = WrappedKey(recipient, epk, wrapped) if recipient is not None else None
    grant_id = bytes.fromhex(share[0]) if share and share[0] is not None else None
    return VersionRecord(rtype, rid, vid, patient, method, _aware(at), sealed, key, grant_id)


class StoreSession:
    """Operations inside one database transaction."""

    def __init__(self, session: Session) -> None:
        self._s = session

    @property
    def _c(self) -> Connection:
        return self._s.connection()

    # -- actors ---------------------------------------------------------------------------------
    def get_actor(self, address: str) -> ActorPublic | None:
        row = self._c.execute(_SELECT_ACTOR, {"address": address}).first()
        if row is None:
            return None
        # The binding was verified at registration; the constructor re-checks the address against the key.
        return ActorPublic(row.address, Role(row.role), row.identity_public, row.x25519_public, row.binding_signature)

    def put_actor(self, actor: ActorPublic, now: datetime) -> None:
        self._c.execute(
            insert(_ACTOR_T),
            {
                "address": actor.address,
                "role": actor.role.value,
                "identity_public": actor.identity_public,
                "x25519_public": actor.x25519_public,
                "binding_signature": actor.binding_signature,
                "registered_at": _naive(now),
            },
        )

    # -- named writers --------------------------------------------------------------------------
    def is_writer(self, patient: str, writer: str) -> bool:
        return self._c.execute(_SELECT_WRITER, {"patient": patient, "writer": writer}).first() is not None

    def add_writer(self, patient: str, writer: str, now: datetime) -> None:
        if not self.is_writer(patient, writer):
            self._c.execute(insert(_WRITER_T), {"patient": patient, "writer": writer, "named_at": _naive(now)})

    def remove_writer(self, patient: str, writer: str) -> bool:
        result = self._c.execute(_WRITER_T.delete().where(_WRITER_T.c.patient == patient, _WRITER_T.c.writer == writer))
        return bool(result.rowcount)

    def writers(self, patient: str) -> list[str]:
        rows = self._c.execute(
            select(_WRITER_T.c.writer).where(_WRITER_T.c.patient == patient).order_by(_WRITER_T.c.writer)
        )
        return [r.writer for r in rows]

    # -- resources ------------------------------------------------------------------------------
    def head(self, resource_type: str, resource_id: str) -> Head | None:
        row = self._c.execute(_SELECT_HEAD, {"rt": resource_type, "rid": resource_id}).first()
        if row is None:
            return None
        return Head(resource_type, resource_id, row.patient, row.version_id, row.deleted, _aware(row.last_updated))

    def add_version(self, record: VersionRecord, keys: Iterable[WrappedKey]) -> None:
        """Append a version (and its wrapped keys) and make it the head; Conflict if that version exists."""
        at = _naive(record.last_updated)
        sealed = record.sealed
        ids = {"resource_type": record.resource_type, "resource_id": record.resource_id}
        try:
            self._c.execute(
                insert(_VERSION_T),
                {
                    **ids,
                    "version_id": record.version_id,
                    "patient": record.patient,
                    "method": record.method,
                    "last_updated": at,
                    "nonce": sealed.nonce if sealed else None,
                    "ciphertext": sealed.ciphertext if sealed else None,
                },
            )
            wrapped = [
                {
                    **ids,
                    "version_id": record.version_id,
                    "recipient": k.recipient,
                    "ephemeral_public": k.ephemeral_public,
                    "wrapped": k.wrapped,
                }
                for k in keys
            ]
            if wrapped:
                self._c.execute(insert(_KEY_T), wrapped)
            if record.version_id == 1:
                self._c.execute(
                    insert(_HEAD_T),
                    {**ids, "patient": record.patient, "version_id": 1, "deleted": record.deleted, "last_updated": at},
                )
            else:
                self._c.execute(
                    _UPDATE_HEAD,
                    {
                        "rt": record.resource_type,
                        "rid": record.resource_id,
                        "vid": record.version_id,
                        "del": record.deleted,
                        "at": at,
                    },
                )
        except IntegrityError as exc:
            raise Conflict(
                f"{record.resource_type}/{record.resource_id} version {record.version_id} was written concurrently"
            ) from exc

    def version(self, resource_type: str, resource_id: str, version_id: int, recipient: str) -> VersionRecord | None:
        row = self._c.execute(
            _SELECT_VERSION, {"rt": resource_type, "rid": resource_id, "vid": version_id, "recipient": recipient}
        ).first()
        return _record(row) if row is not None else None

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
        grants: Sequence[bytes] = (),
    ) -> tuple[int, list[VersionRecord]]:
        """Versions newest first, within the given patients' compartments.

        Each comes with the key ``recipient`` may use for it, if any: its own as the patient, or one shared under
        one of ``grants``.
        """
        where: list[Any] = [_VERSION_T.c.patient.in_(list(patients))]
        if resource_type is not None:
            where.append(_VERSION_T.c.resource_type == resource_type)
        if resource_id is not None:
            where.append(_VERSION_T.c.resource_id == resource_id)
        if since is not None:
            where.append(_VERSION_T.c.last_updated >= _naive(since))
        total = self._c.execute(select(func.count()).select_from(_VERSION_T).where(*where)).scalar_one()
        join: Any = _KEY_JOIN
        columns: tuple[Any, ...] = _VERSION_COLUMNS
        if grants:
            join, columns, _ = _keyed(_VERSION_T, grants)
        stmt = (
            select(*columns)
            .select_from(join)
            .where(*where)
            # The id columns break ties between resources written at the same instant: paging needs a total order.
            .order_by(
                _VERSION_T.c.last_updated.desc(),
                _VERSION_T.c.resource_type,
                _VERSION_T.c.resource_id,
                _VERSION_T.c.version_id.desc(),
            )
            .offset(offset)
            .limit(count)
        )
        rows = self._c.execute(stmt, {"recipient": recipient})
        return int(total), [_record(r) for r in rows]

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
        grants: Sequence[bytes] = (),
    ) -> tuple[int, list[VersionRecord]]:
        """Current, non-deleted versions of a type in the given compartments that ``recipient`` holds a key for.

        Oldest first by default. Only versions with a key the caller may use count: its own as the patient, or one
        shared under one of ``grants``; a grantee sees the resources the patient's client shared with it under
        those grants, and the total counts only those.
        """
        where: list[Any] = [
            _HEAD_T.c.resource_type == resource_type,
            _HEAD_T.c.patient.in_(list(patients)),
            _HEAD_T.c.deleted.is_(False),
        ]
        if ids:
            where.append(_HEAD_T.c.resource_id.in_(list(ids)))
        where.extend(_bound_clause(bound) for bound in bounds)
        join: Any = _SEARCH_JOIN
        columns: tuple[Any, ...] = _VERSION_COLUMNS
        if grants:
            join, columns, keyed = _keyed(_VERSION_T.join(_HEAD_T, _HEAD_OF_VERSION), grants)
            where.append(keyed)
        params = {"recipient": recipient}
        total = self._c.execute(select(func.count()).select_from(join).where(*where), params).scalar_one()
        if count == 0:
            return int(total), []
        order = (
            _HEAD_T.c.last_updated.desc() if newest_first else _HEAD_T.c.last_updated.asc(),
            _HEAD_T.c.resource_id.asc(),
        )
        stmt = select(*columns).select_from(join).where(*where).order_by(*order).offset(offset).limit(count)
        rows = self._c.execute(stmt, params)
        return int(total), [_record(r) for r in rows]

    # -- key shares, grants, erasure ------------------------------------------------------------
    def add_share(
        self, grant_id: bytes, resource_type: str, resource_id: str, version_id: int, key: WrappedKey
    ) -> None:
        """Store a data key the patient's client re-wrapped under a grant; one already there is replaced."""
        ids = {"resource_type": resource_type, "resource_id": resource_id, "version_id": version_id}
        self._c.execute(
            _SHARE_T.delete().where(
                _SHARE_T.c.resource_type == resource_type,
                _SHARE_T.c.resource_id == resource_id,
                _SHARE_T.c.version_id == version_id,
                _SHARE_T.c.grant_id == grant_id.hex(),
            )
        )
        self._c.execute(
            insert(_SHARE_T),
            {
                **ids,
                "grant_id": grant_id.hex(),
                "recipient": key.recipient,
                "ephemeral_public": key.ephemeral_public,
                "wrapped": key.wrapped,
            },
        )

    def shares(self, resource_type: str, resource_id: str, version_id: int, recipient: str) -> list[SharedKey]:
        """The keys of a version shared with ``recipient``, under whichever grants, by grant id."""
        rows = self._c.execute(
            _SELECT_SHARES, {"rt": resource_type, "rid": resource_id, "vid": version_id, "recipient": recipient}
        )
        return [
            SharedKey(bytes.fromhex(r.grant_id), WrappedKey(r.recipient, r.ephemeral_public, r.wrapped)) for r in rows
        ]

    def has_shares(self, grant_ids: Sequence[bytes]) -> bool:
        """Whether any key is still shared under one of these grants (a read, where a delete would take a lock)."""
        if not grant_ids:
            return False
        found = select(_SHARE_T.c.grant_id).where(_SHARE_T.c.grant_id.in_([g.hex() for g in grant_ids])).limit(1)
        return self._c.execute(found).first() is not None

    def delete_shares(self, grant_ids: Sequence[bytes]) -> int:
        """Delete every key shared under these grants, and no other (on revocation, or found expired)."""
        if not grant_ids:
            return 0
        result = self._c.execute(_SHARE_T.delete().where(_SHARE_T.c.grant_id.in_([g.hex() for g in grant_ids])))
        return int(result.rowcount)

    def erase(self, resource_type: str, resource_id: str) -> int:
        """Crypto-shred every version: delete all wrapped keys and ciphertext; returns versions shredded."""
        for table in (_KEY_T, _SHARE_T):
            self._c.execute(
                table.delete().where(table.c.resource_type == resource_type, table.c.resource_id == resource_id)
            )
        result = self._c.execute(
            sa_update(_VERSION_T)
            .where(_VERSION_T.c.resource_type == resource_type, _VERSION_T.c.resource_id == resource_id)
            .values(nonce=None, ciphertext=None, method="ERASE")
        )
        self._c.execute(
            sa_update(_HEAD_T)
            .where(_HEAD_T.c.resource_type == resource_type, _HEAD_T.c.resource_id == resource_id)
            .values(deleted=True)
        )
        return int(result.rowcount)

    def put_grant_policy(self, policy: GrantPolicy) -> None:
        self._c.execute(
            insert(_POLICY_T),
            {
                "grant_id": policy.grant_id.hex(),
                "patient": policy.patient,
                "grantee": policy.grantee,
                "purpose": policy.purpose,
                "scope": format(policy.scope, "016x"),
                "catalogue_id": policy.catalogue_id,
                "expiry": _naive(policy.expiry),
                "granted_at": _naive(policy.granted_at),
                "ledger_index": policy.ledger_index,
                "revoked_at": None,
                "salt": format(policy.salt, "064x"),
            },
        )

    def grant_policy(self, grant_id: bytes) -> GrantPolicy | None:
        row = self._c.execute(select(_POLICY_T).where(_POLICY_T.c.grant_id == grant_id.hex())).first()
        return _policy(row) if row is not None else None

    def grant_policies(self, *, patient: str | None = None, grantee: str | None = None) -> list[GrantPolicy]:
        stmt = select(_POLICY_T)
        if patient is not None:
            stmt = stmt.where(_POLICY_T.c.patient == patient)
        if grantee is not None:
            stmt = stmt.where(_POLICY_T.c.grantee == grantee)
        return [_policy(r) for r in self._c.execute(stmt.order_by(_POLICY_T.c.granted_at))]

    def revoke_grant_policy(self, grant_id: bytes, at: datetime) -> None:
        self._c.execute(
            sa_update(_POLICY_T).where(_POLICY_T.c.grant_id == grant_id.hex()).values(revoked_at=_naive(at))
        )

    # -- replay guard ---------------------------------------------------------------------------
    def use_assertion(self, key: str, expires_at: datetime, now: datetime) -> bool:
        """Record a client assertion id; False if it was already used (a replay)."""
        self._c.execute(_ASSERTION_T.delete().where(_ASSERTION_T.c.expires_at < _naive(now)))
        try:
            with self._c.begin_nested():
                self._c.execute(insert(_ASSERTION_T), {"key": key, "expires_at": _naive(expires_at)})
        except IntegrityError:
            return False
        return True


def _policy(row: Any) -> GrantPolicy:
    return GrantPolicy(
        bytes.fromhex(row.grant_id),
        row.patient,
        row.grantee,
        row.purpose,
        int(row.scope, 16),
        row.catalogue_id,
        _aware(row.expiry),
        _aware(row.granted_at),
        row.ledger_index,
        _aware(row.revoked_at) if row.revoked_at is not None else None,
        int(row.salt, 16),
    )


def _bound_clause(bound: TimeBound) -> Any:
    column = _HEAD_T.c.last_updated
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


def _has_table(engine: Engine, name: str) -> bool:
    with engine.connect() as conn:
        return inspect(conn).has_table(name)


def _drop_unattributed_shares(engine: Engine) -> None:
    """Delete grantees' keys kept in ``wrapped_key`` by a vault from before ``key_share``.

    Those rows do not say which grant they were shared under, so no read check can tie them to an active grant
    that covers them: they are deleted, not guessed at (a guess by type would reopen what an ended grant covered).
    Grantees of such a vault read nothing until the patient's client shares again under each active grant
    (:meth:`ehr.client.VaultClient.share_under`). Idempotent: processes starting together may all run it.
    """
    owner = (
        select(_VERSION_T.c.patient)
        .where(
            _VERSION_T.c.resource_type == _KEY_T.c.resource_type,
            _VERSION_T.c.resource_id == _KEY_T.c.resource_id,
            _VERSION_T.c.version_id == _KEY_T.c.version_id,
        )
        .correlate(_KEY_T)
        .scalar_subquery()
    )
    with engine.begin() as conn:
        conn.execute(_KEY_T.delete().where(_KEY_T.c.recipient != owner))


class Store:
    """A database holding sealed versions; build with a SQLAlchemy URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        # 40: uvicorn's worker threads, each keeping its own SQLite connection.
        self.engine: Engine = create_database_engine(url, sqlite_pool_size=40, echo=echo)
        unattributed = _has_table(self.engine, _KEY_T.name) and not _has_table(self.engine, _SHARE_T.name)
        create_tables(self.engine, SQLModel.metadata)
        if unattributed:
            _drop_unattributed_shares(self.engine)

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
            except DBAPIError as exc:
                session.rollback()
                if is_transient(exc):
                    raise Conflict("the database aborted this write for a concurrent one; retry") from exc
                raise
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()
