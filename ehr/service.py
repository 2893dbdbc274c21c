"""The vault's service layer: FHIR interactions over sealed storage, with the access policy applied.

Routers call these methods and translate the results to HTTP; nothing here knows about HTTP. Every write
happens in one store session (one database transaction), so a refused write, or a transaction Bundle with
one bad entry, leaves nothing behind.

Writes arrive either as plain FHIR (validated, sealed to the patient's registered X25519 key, the plaintext
dropped) or as a sealed envelope made by the writer's own client. Reads return sealed versions with the data
key wrapped for the caller: the vault never holds a key that opens a record.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from consent_chain.catalogue import read_catalogue
from consent_chain.entries import KeyEntry
from consent_chain.errors import AppendRefused
from ehr.audit import access_event
from ehr.crypto import SealContext, seal
from ehr.envelope import Envelope, EnvelopeError, is_sealed_binary
from ehr.errors import (
    Conflict,
    Forbidden,
    Gone,
    InvalidRequest,
    NotFound,
    OAuthError,
    PreconditionFailed,
    Unauthorized,
    Unprocessable,
    VaultError,
)
from ehr.fhir import ID_RE, canonical_json, is_resource_type, patient_of, validate_resource
from ehr.identity import ActorPublic, Role, normalize_address
from ehr.policy import Action, Principal, authorize, expired_grants, opening_grants, require_scope, share_grant
from ehr.scopes import grantable, scope_string
from ehr.search import SearchQuery
from ehr.store import GrantPolicy, Head, Store, StoreSession, VersionRecord
from ehr.tokens import ASSERTION_TYPE, AccessTokens, verify_client_assertion
from ehr.transaction import PlannedEntry, plan_transaction

if TYPE_CHECKING:
    from consent_chain.ledger import Ledger

__all__ = ["Page", "TokenGrant", "Vault", "WriteResult", "instant"]

Clock = Callable[[], datetime]
Rng = Callable[[int], bytes]

# A version number as stored: 1, 2, ... in at most nine ASCII digits (the database column is 32-bit).
_VERSION_NUMBER = re.compile(r"[0-9]{1,9}")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def instant(dt: datetime) -> str:
    """A FHIR ``instant`` in UTC with microseconds."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class WriteResult:
    resource_type: str
    resource_id: str
    version_id: int
    last_updated: datetime
    created: bool
    deleted: bool = False
    changed: bool = True  # False for a delete of something already deleted

    @property
    def location(self) -> str:
        return f"{self.resource_type}/{self.resource_id}/_history/{self.version_id}"


@dataclass(frozen=True)
class Page:
    total: int
    records: list[VersionRecord]
    offset: int
    count: int


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_in: int
    scope: str
    actor: ActorPublic


class Vault:
    """The record vault. Build one per process with a Store and the vault's token-signing key."""

    def __init__(
        self,
        store: Store,
        *,
        token_key: ed25519.Ed25519PrivateKey | None = None,
        issuer: str = "pchr-vault",
        clock: Clock = _utcnow,
        rng: Rng = os.urandom,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        ledger: Ledger | None = None,
    ) -> None:
        self.store = store
        self.tokens = AccessTokens(token_key or ed25519.Ed25519PrivateKey.generate(), issuer)
        self.ledger = ledger
        self.catalogue = read_catalogue()
        self.clock = self._clock = clock
        self._rng = rng
        self._new_id = new_id

    # -- actors and authentication --------------------------------------------------------------
    def register(self, actor: ActorPublic) -> bool:
        """Store an actor's verified public record; True if new, False if already registered identically.

        The key binding goes on the consent ledger first: if the ledger refuses it, nothing is stored.
        """
        with self.store.session() as tx:
            existing = tx.get_actor(actor.address)
        if existing is not None:
            if existing == actor:
                return False
            raise Conflict(f"{actor.address} is already registered with other keys")
        if self.ledger is not None:
            key = KeyEntry(actor.address, actor.role, actor.x25519_public, actor.binding_signature)
            try:
                self.ledger.append([key])
            except AppendRefused as exc:
                if exc.reason != "duplicate":
                    raise Unprocessable(f"the ledger refused the key binding: {exc}") from exc
                on_ledger = self.ledger.actor_key(actor.address)
                if on_ledger is None or on_ledger.x25519_public != actor.x25519_public:
                    raise Conflict(f"{actor.address} has another key binding on the ledger") from exc
        with self.store.session() as tx:
            if tx.get_actor(actor.address) is not None:
                return False  # registered concurrently, identically (the ledger allows one binding)
            tx.put_actor(actor, self._clock())
        return True

    def actor(self, address: str) -> ActorPublic:
        with self.store.session() as tx:
            found = tx.get_actor(_address(address))
        if found is None:
            raise NotFound(f"no actor {address} is registered")
        return found

    def issue_token(
        self, *, grant_type: str, assertion_type: str, assertion: str, scope: str, audiences: tuple[str, ...]
    ) -> TokenGrant:
        """An access token for a client assertion whose ``aud`` is one of ``audiences`` (this vault's token
        endpoint, from its settings: never from the request)."""
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        if assertion_type != ASSERTION_TYPE or not assertion:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        now = self._clock()
        with self.store.session() as tx:
            try:
                checked = verify_client_assertion(assertion, audiences=audiences, now=now, lookup=tx.get_actor)
            except Unauthorized as exc:
                raise OAuthError("invalid_client", exc.message, status=401) from exc
            if not tx.use_assertion(checked.jti_key, checked.expires_at + timedelta(minutes=1), now):
                raise OAuthError("invalid_client", "client assertion was already used (jti replay)", status=401)
        scopes = grantable(scope, checked.actor.role)
        if not scopes:
            raise OAuthError("invalid_scope", f"none of the requested scopes may be issued to a {checked.actor.role}")
        token = self.tokens.issue(checked.actor, scopes, now=now)
        return TokenGrant(token, int(self.tokens.lifetime.total_seconds()), scope_string(scopes), checked.actor)

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthorized("this endpoint needs a bearer access token (POST /auth/token)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be 'Bearer <access token>'")
        return self.tokens.verify(token.strip(), now=self._clock())

    # -- named writers --------------------------------------------------------------------------
    def add_writer(self, principal: Principal, writer: str) -> None:
        writer = _address(writer)
        self._require_writer_manager(principal)
        with self.store.session() as tx:
            if tx.get_actor(writer) is None:
                raise Unprocessable(f"{writer} is not registered with this vault")
            tx.add_writer(principal.address, writer, self._clock())

    def remove_writer(self, principal: Principal, writer: str) -> None:
        writer = _address(writer)
        self._require_writer_manager(principal)
        with self.store.session() as tx:
            if not tx.remove_writer(principal.address, writer):
                raise NotFound(f"{writer} is not a named writer")

    def writers(self, principal: Principal) -> list[str]:
        self._require_patient(principal)
        with self.store.session() as tx:
            return tx.writers(principal.address)

    @staticmethod
    def _require_patient(principal: Principal) -> None:
        if principal.role is not Role.PATIENT:
            raise Forbidden("only a patient names the writers of their record")

    @classmethod
    def _require_writer_manager(cls, principal: Principal) -> None:
        """Naming or removing a writer: the patient, with a token that may create and update every resource type.

        A named writer may create and update any resource type in the record, and keeps that after the token that
        named it expires; a token may not hand out more than it may do, so it needs ``c`` and ``u`` on ``*``
        (``patient/*.cu``, ``patient/*.write`` or ``patient/*.cruds``). Removing needs the same: otherwise a
        leaked read-only token could cut off the patient's lab. Listing needs a patient's token of any scope.
        """
        cls._require_patient(principal)
        require_scope(principal, "*", Action.CREATE, Action.UPDATE)

    # -- writes ---------------------------------------------------------------------------------
    def create(self, principal: Principal, resource_type: str, body: dict[str, Any]) -> WriteResult:
        _check_type(resource_type)
        with self.store.session() as tx:
            resource_id = self._id_for_create(principal, resource_type, body)
            return self._write(
                tx,
                principal,
                Action.CREATE,
                resource_type,
                resource_id,
                body,
                None,
                default_patient=_self_patient(principal),
            )

    def update(
        self,
        principal: Principal,
        resource_type: str,
        resource_id: str,
        body: dict[str, Any],
        *,
        if_match: str | None = None,
    ) -> WriteResult:
        _check_type(resource_type)
        _check_id(resource_id)
        if not is_sealed_binary(body) and body.get("id") != resource_id:
            raise InvalidRequest("the resource's id must match the id in the URL (FHIR update)", expression="id")
        with self.store.session() as tx:
            return self._write(
                tx,
                principal,
                Action.UPDATE,
                resource_type,
                resource_id,
                body,
                if_match,
                default_patient=_self_patient(principal),
            )

    def delete(
        self, principal: Principal, resource_type: str, resource_id: str, *, if_match: str | None = None
    ) -> WriteResult:
        _check_type(resource_type)
        _check_id(resource_id)
        with self.store.session() as tx:
            return self._delete(tx, principal, resource_type, resource_id, if_match)

    def transaction(self, principal: Principal, bundle: dict[str, Any]) -> list[tuple[PlannedEntry, WriteResult]]:
        """Process a transaction Bundle all-or-nothing; results in the Bundle's entry order."""
        default_patient = _self_patient(principal)

        def new_id(resource_type: str) -> str:
            if resource_type == "Patient" and default_patient is not None:
                return default_patient
            return self._new_id()

        plan = plan_transaction(bundle, new_id, id_of_sealed=_sealed_id)
        patients = {
            e.resource_id
            for e in plan
            if e.resource_type == "Patient" and e.method != "DELETE" and _is_address(e.resource_id)
        }
        if len(patients) == 1:
            default_patient = normalize_address(patients.pop())
        results: list[tuple[PlannedEntry, WriteResult]] = []
        with self.store.session() as tx:
            for entry in plan:
                try:
                    _check_type(entry.resource_type)
                    if entry.method == "DELETE":
                        result = self._delete(tx, principal, entry.resource_type, entry.resource_id, entry.if_match)
                    else:
                        assert entry.resource is not None
                        action = Action.CREATE if entry.method == "POST" else Action.UPDATE
                        result = self._write(
                            tx,
                            principal,
                            action,
                            entry.resource_type,
                            entry.resource_id,
                            entry.resource,
                            entry.if_match,
                            default_patient=default_patient,
                        )
                except VaultError as exc:
                    raise exc.at(f"Bundle.entry[{entry.index}]") from exc
                results.append((entry, result))
        return sorted(results, key=lambda r: r[0].index)

    def _id_for_create(self, principal: Principal, resource_type: str, body: dict[str, Any]) -> str:
        if is_sealed_binary(body):
            return _sealed_id(body)
        if resource_type == "Patient":
            if principal.role is not Role.PATIENT:
                raise Unprocessable("a Patient is created by PUT Patient/<patient address>, not POST")
            return principal.address
        return self._new_id()

    def _now(self, head: Head | None) -> datetime:
        now = self._clock()
        # lastUpdated never goes backwards for a resource, even if the wall clock does.
        if head is not None and now <= head.last_updated:
            now = head.last_updated + timedelta(microseconds=1)
        return now

    def _write(
        self,
        tx: StoreSession,
        principal: Principal,
        action: Action,
        resource_type: str,
        resource_id: str,
        body: dict[str, Any],
        if_match: str | None,
        *,
        default_patient: str | None,
    ) -> WriteResult:
        head = tx.head(resource_type, resource_id)
        if action is Action.CREATE and head is not None:
            raise Conflict(f"{resource_type}/{resource_id} already exists")
        version = head.version_id + 1 if head else 1
        now = self._now(head)
        if is_sealed_binary(body):
            envelope = _envelope(body)
            c = envelope.context
            if (c.resource_type, c.resource_id) != (resource_type, resource_id):
                raise InvalidRequest("the sealed envelope names another resource than the request")
            patient = _address(c.patient)
            self._authorize_write(tx, principal, action, resource_type, patient, head, if_match)
            _check_patient_resource(resource_type, resource_id, patient)
            if c.version_id != str(version):
                raise Conflict(f"sealed for version {c.version_id[:16]} but the next version is {version}")
            if envelope.key.recipient != c.patient:
                raise Unprocessable("a sealed write must carry its data key wrapped for the patient")
            self._registered_patient(tx, patient)
            sealed, key = envelope.sealed, envelope.key
        else:
            resource = validate_resource(body, expected_type=resource_type)
            resource["id"] = resource_id
            owner = patient_of(resource) or (head.patient if head else None) or default_patient
            if owner is None:
                raise Unprocessable(
                    f"{resource_type} names no patient (subject or patient): the vault cannot tell whose record it is"
                )
            patient = owner
            self._authorize_write(tx, principal, action, resource_type, patient, head, if_match)
            _check_patient_resource(resource_type, resource_id, patient)
            actor = self._registered_patient(tx, patient)
            resource["meta"] = {**resource.get("meta", {}), "versionId": str(version), "lastUpdated": instant(now)}
            context = SealContext(resource_type, resource_id, str(version), patient)
            sealed, key = seal(canonical_json(resource), context, patient, actor.encryption_key(), rng=self._rng)
        method = "POST" if action is Action.CREATE else "PUT"
        tx.add_version(VersionRecord(resource_type, resource_id, version, patient, method, now, sealed), [key])
        return WriteResult(resource_type, resource_id, version, now, created=head is None)

    def _authorize_write(
        self,
        tx: StoreSession,
        principal: Principal,
        action: Action,
        resource_type: str,
        patient: str,
        head: Head | None,
        if_match: str | None,
    ) -> None:
        if head is not None and head.patient != patient:
            authorize(
                principal,
                Action.UPDATE,
                resource_type,
                head.patient,
                named_writer=tx.is_writer(head.patient, principal.address),
            )
            raise Unprocessable("a resource cannot move to another patient's record")
        authorize(principal, action, resource_type, patient, named_writer=tx.is_writer(patient, principal.address))
        _check_if_match(if_match, head)

    @staticmethod
    def _registered_patient(tx: StoreSession, patient: str) -> ActorPublic:
        actor = tx.get_actor(patient)
        if actor is None or actor.role is not Role.PATIENT:
            raise Unprocessable(f"{patient} is not a patient registered with this vault")
        return actor

    def _delete(
        self, tx: StoreSession, principal: Principal, resource_type: str, resource_id: str, if_match: str | None
    ) -> WriteResult:
        head = tx.head(resource_type, resource_id)
        if head is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        authorize(principal, Action.DELETE, resource_type, head.patient, named_writer=False)
        _check_if_match(if_match, head)
        if head.deleted:
            return WriteResult(
                resource_type,
                resource_id,
                head.version_id,
                head.last_updated,
                created=False,
                deleted=True,
                changed=False,
            )
        now = self._now(head)
        version = head.version_id + 1
        tx.add_version(VersionRecord(resource_type, resource_id, version, head.patient, "DELETE", now, None), [])
        return WriteResult(resource_type, resource_id, version, now, created=False, deleted=True)

    # -- reads ----------------------------------------------------------------------------------
    def read(
        self, principal: Principal, resource_type: str, resource_id: str, version_id: str | None = None
    ) -> VersionRecord:
        """The current (or a given) version, sealed, with the data key wrapped for the caller.

        A grantee gets the key shared with it under a grant that is active now and covers the type
        (:func:`ehr.policy.share_grant`), and its read is recorded as an AuditEvent, naming that grant, sealed for
        the patient.
        """
        _check_type(resource_type)
        _check_id(resource_id)
        if version_id is not None:
            _check_id(version_id, "versionId")
        now = self._clock()
        mask = self.catalogue.type_mask(resource_type)
        expired: list[bytes] = []
        try:
            with self.store.session() as tx:
                head = tx.head(resource_type, resource_id)
                if head is None:
                    raise NotFound(f"{resource_type}/{resource_id} is not known")
                grants = self._grants(tx, principal, head.patient)
                expired = [g.grant_id for g in expired_grants(grants, now)]
                granted = bool(opening_grants(grants, mask, now))
                authorize(principal, Action.READ, resource_type, head.patient, named_writer=False, granted=granted)
                if version_id is None:
                    if head.deleted:
                        raise Gone(f"{resource_type}/{resource_id} was deleted")
                    number = head.version_id
                else:
                    # Versions are 1, 2, ...: a valid FHIR id that is not a number of at most 9 ASCII digits names
                    # none of them (and would not fit the database's version column).
                    if not _VERSION_NUMBER.fullmatch(version_id):
                        raise NotFound(f"{resource_type}/{resource_id} has no version {version_id[:16]!r}")
                    number = int(version_id)
                record = tx.version(resource_type, resource_id, number, principal.address)
                if record is None:
                    raise NotFound(f"{resource_type}/{resource_id} has no version {number}")
                if record.deleted:
                    raise Gone(f"{resource_type}/{resource_id} version {number} is deleted or erased")
                if principal.address == head.patient:
                    if record.key is None:
                        raise Forbidden("no data key for this version is wrapped for you")
                    return record
                shares = tx.shares(resource_type, resource_id, number, principal.address)
                grant = share_grant([s.grant_id for s in shares], grants, mask, now)
                if grant is None:
                    raise Forbidden(f"your grant does not cover {resource_type}/{resource_id}")
                key = next(s.key for s in shares if s.grant_id == grant.grant_id)
                record = replace(record, key=key, grant_id=grant.grant_id)
                interaction = "read" if version_id is None else "vread"
                self._audit(tx, principal, head.patient, interaction, [record], grant)
            return record
        finally:
            self._drop_expired_shares(expired)

    def history(
        self,
        principal: Principal,
        resource_type: str | None,
        resource_id: str | None,
        *,
        since: datetime | None,
        offset: int,
        count: int,
    ) -> Page:
        now = self._clock()
        expired: list[bytes] = []
        try:
            with self.store.session() as tx:
                opening: list[GrantPolicy] = []
                if resource_id is not None:
                    assert resource_type is not None
                    head = tx.head(resource_type, resource_id)
                    if head is None:
                        raise NotFound(f"{resource_type}/{resource_id} is not known")
                    grants = self._grants(tx, principal, head.patient)
                    expired = [g.grant_id for g in expired_grants(grants, now)]
                    opening = opening_grants(grants, self.catalogue.type_mask(resource_type), now)
                    authorize(
                        principal, Action.READ, resource_type, head.patient, named_writer=False, granted=bool(opening)
                    )
                    patients = [head.patient]
                else:
                    if resource_type is not None:
                        _check_type(resource_type)
                        require_scope(principal, resource_type, Action.SEARCH)
                    # Type- and system-level history: the caller's own compartment only.
                    patients = [principal.address] if principal.role is Role.PATIENT else []
                total, records = tx.history(
                    principal.address,
                    patients,
                    resource_type=resource_type,
                    resource_id=resource_id,
                    since=since,
                    offset=offset,
                    count=count,
                    grants=[g.grant_id for g in opening],
                )
                self._audit_shared(tx, principal, "history-instance", records, opening)
        finally:
            self._drop_expired_shares(expired)
        return Page(total, records, offset, count)

    def search(self, principal: Principal, resource_type: str, query: SearchQuery) -> Page:
        """Current versions the caller holds a usable data key for, in the compartments it may search."""
        _check_type(resource_type)
        require_scope(principal, resource_type, Action.SEARCH)
        now = self._clock()
        mask = self.catalogue.type_mask(resource_type)
        expired: list[bytes] = []
        try:
            with self.store.session() as tx:
                opening: list[GrantPolicy] = []
                if query.patients:
                    patients = [_address(p) for p in query.patients]
                    for patient in patients:
                        grants = self._grants(tx, principal, patient)
                        expired += [g.grant_id for g in expired_grants(grants, now)]
                        found = opening_grants(grants, mask, now)
                        authorize(
                            principal, Action.SEARCH, resource_type, patient, named_writer=False, granted=bool(found)
                        )
                        opening += found
                else:
                    patients = [principal.address] if principal.role is Role.PATIENT else []
                    grants = [g for g in tx.grant_policies(grantee=principal.address) if g.patient != principal.address]
                    expired = [g.grant_id for g in expired_grants(grants, now)]
                    opening = opening_grants(grants, mask, now)
                    patients += sorted({g.patient for g in opening} - set(patients))
                total, records = tx.search(
                    principal.address,
                    resource_type,
                    patients,
                    ids=query.ids,
                    bounds=query.bounds,
                    newest_first=query.newest_first,
                    offset=query.offset,
                    count=query.count,
                    grants=[g.grant_id for g in opening],
                )
                self._audit_shared(tx, principal, "search-type", records, opening)
        finally:
            self._drop_expired_shares(expired)
        return Page(total, records, query.offset, query.count)

    # -- grants -----------------------------------------------------------------------------------
    @staticmethod
    def _grants(tx: StoreSession, principal: Principal, patient: str) -> list[GrantPolicy]:
        """Every grant ``patient`` gave the caller, in any state (none when the caller is the patient)."""
        if principal.address == patient:
            return []
        return tx.grant_policies(patient=patient, grantee=principal.address)

    def _drop_expired_shares(self, grant_ids: list[bytes]) -> None:
        """Delete the keys shared under grants a request found expired, so that expiry ends a grant as revocation does.

        The read check already refuses them; this removes them from the vault. In a transaction of its own, so
        that a refused request does not roll it back; a read (no write lock) when there is nothing left to delete.
        """
        if not grant_ids:
            return
        with self.store.session() as tx:
            if tx.has_shares(grant_ids):
                tx.delete_shares(grant_ids)

    def _audit_shared(
        self,
        tx: StoreSession,
        principal: Principal,
        interaction: str,
        records: list[VersionRecord],
        grants: list[GrantPolicy],
    ) -> None:
        """One AuditEvent per grant whose shared keys this response carries, naming that grant."""
        for grant in grants:
            seen = [r for r in records if r.grant_id == grant.grant_id and r.key is not None]
            if seen:
                self._audit(tx, principal, grant.patient, interaction, seen, grant)

    def _audit(
        self,
        tx: StoreSession,
        principal: Principal,
        patient: str,
        interaction: str,
        records: list[VersionRecord],
        grant: GrantPolicy,
    ) -> None:
        """Record a grantee's access as an AuditEvent sealed to the patient, in the same transaction."""
        now = self._clock()
        what = [f"{r.resource_type}/{r.resource_id}/_history/{r.version_id}" for r in records]
        event = access_event(
            agent=principal.address,
            patient=patient,
            interaction=interaction,
            what=what,
            when=now,
            grant_id=grant.grant_id,
        )
        actor = self._registered_patient(tx, patient)
        event_id = self._new_id()
        event["id"] = event_id
        event["meta"] = {"versionId": "1", "lastUpdated": instant(now)}
        context = SealContext("AuditEvent", event_id, "1", patient)
        sealed, key = seal(canonical_json(event), context, patient, actor.encryption_key(), rng=self._rng)
        tx.add_version(VersionRecord("AuditEvent", event_id, 1, patient, "POST", now, sealed), [key])


# -- helpers ----------------------------------------------------------------------------------------
def _check_patient_resource(resource_type: str, resource_id: str, patient: str) -> None:
    """A Patient resource is its patient: ``Patient/<address>``, filed in that address's own record.

    Refused otherwise (422: the caller may write to the record it names, but the resource contradicts it), or
    any patient could file ``Patient/<someone else>`` in their own record: that patient could then never write
    her own, and whoever the squatter grants would read the fake as hers. Every write path ends in ``_write``:
    create, update, transaction entries, plain and client-sealed alike.
    """
    if resource_type == "Patient" and resource_id != patient:
        raise Unprocessable(
            f"a Patient resource's id must be the address of the patient whose record holds it: Patient/{patient}",
            expression="Patient.id",
        )


def _self_patient(principal: Principal) -> str | None:
    return principal.address if principal.role is Role.PATIENT else None


def _check_type(resource_type: str) -> None:
    if not is_resource_type(resource_type):
        raise NotFound(f"unknown resource type {resource_type[:64]!r}")


def _check_id(resource_id: str, element: str = "id") -> None:
    if not ID_RE.fullmatch(resource_id):
        raise InvalidRequest(f"not a valid FHIR {element}", expression=element)


def _address(value: str) -> str:
    try:
        return normalize_address(value)
    except ValueError:
        raise InvalidRequest("not a pchr address (0x followed by 40 hex digits)") from None


def _is_address(value: str) -> bool:
    try:
        normalize_address(value)
    except ValueError:
        return False
    return True


def _envelope(body: dict[str, Any]) -> Envelope:
    try:
        return Envelope.from_binary(body)
    except EnvelopeError as exc:
        raise InvalidRequest(str(exc)) from exc


def _sealed_id(body: dict[str, Any]) -> str:
    resource_id = _envelope(body).context.resource_id
    _check_id(resource_id)
    return resource_id


def _check_if_match(if_match: str | None, head: Head | None) -> None:
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    current = str(head.version_id) if head is not None else None
    if wanted != current:
        raise PreconditionFailed(f"If-Match {if_match[:20]!r} does not match the current version ({current or 'none'})")
