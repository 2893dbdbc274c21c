"""Who may do what to whose records: the vault's access policy, as a pure function.

The rules are:

- a patient reads, searches, writes and deletes the records in their own compartment;
- a *grantee* reads and searches a patient's resources of a type while an active grant (signed on the consent
  ledger, unexpired, not revoked) covers that type; which resources of the type it covers is enforced by the
  data keys: the patient's client wraps a key for the grantee only for resources in the grant's scope, under
  that grant. A key opens a version only while *the grant it was shared under* is an active read grant whose
  scope covers the type (:func:`share_grant`): never under another grant of the same patient and grantee, so a
  narrower grant made after a broader one ended reopens nothing the broader one covered;
- a *writer* the patient has named (a clinician, a lab) may create and update records for that patient,
  but cannot read them back unless a grant also covers them;
- nobody else may do anything with the patient's records;
- every interaction must also be allowed by the access token's SMART scopes (:mod:`ehr.scopes`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from consent_chain.grants import READ_PURPOSES
from ehr.errors import Forbidden
from ehr.identity import Role
from ehr.scopes import Scope, needed_scope

__all__ = [
    "Action",
    "GrantTerms",
    "Principal",
    "authorize",
    "expired_grants",
    "opening_grants",
    "require_scope",
    "share_grant",
]


class Action(enum.StrEnum):
    """An interaction, named by its SMART v2 permission letter."""

    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"

    @property
    def verb(self) -> str:
        return {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}[self.value]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, as established by its access token."""

    address: str
    role: Role
    scopes: tuple[Scope, ...]


def require_scope(principal: Principal, resource_type: str, *actions: Action) -> None:
    """Raise Forbidden, naming the missing scope, unless the token's scopes allow every one of ``actions`` on
    ``resource_type``. ``"*"`` means every resource type, which only a ``*`` scope (``patient/*.cu``) allows."""
    missing = [a for a in actions if not any(s.allows(resource_type, a.value) for s in principal.scopes)]
    if missing:
        what = "every resource type" if resource_type == "*" else resource_type
        needed = needed_scope(principal.role, resource_type, "".join(a.value for a in missing))
        verbs = " and ".join(a.verb for a in missing)
        raise Forbidden(f"the access token's scopes do not allow {verbs} on {what} (it needs {needed})")


def authorize(
    principal: Principal,
    action: Action,
    resource_type: str,
    patient: str,
    *,
    named_writer: bool,
    granted: bool = False,
) -> None:
    """Raise Forbidden unless ``principal`` may perform ``action`` on ``patient``'s ``resource_type``."""
    require_scope(principal, resource_type, action)
    if principal.address == patient:
        return
    if action in (Action.CREATE, Action.UPDATE) and named_writer:
        return
    if action in (Action.READ, Action.SEARCH) and granted:
        return
    if action in (Action.CREATE, Action.UPDATE):
        raise Forbidden("only the patient, or a writer the patient has named, may write to this record")
    raise Forbidden(f"no active grant lets you {action.verb} this patient's {resource_type} resources")


class GrantTerms(Protocol):
    """What the policy reads of a grant as the vault enforces it (:class:`ehr.store.GrantPolicy` is one)."""

    @property
    def grant_id(self) -> bytes: ...
    @property
    def purpose(self) -> str: ...
    @property
    def scope(self) -> int: ...
    @property
    def expiry(self) -> datetime: ...
    @property
    def revoked_at(self) -> datetime | None: ...


G = TypeVar("G", bound=GrantTerms)


def _opens(grant: GrantTerms, type_mask: int, now: datetime) -> bool:
    return (
        grant.revoked_at is None
        and now < grant.expiry
        and grant.purpose in READ_PURPOSES
        and bool(grant.scope & type_mask)
    )


def opening_grants(grants: Iterable[G], type_mask: int, now: datetime) -> list[G]:
    """The grants under which a shared key may open a resource of a type (``type_mask``: the catalogue bits that
    can match that type) at ``now``: read grants, not revoked, not expired at the vault's clock, covering the type.
    """
    return [g for g in grants if _opens(g, type_mask, now)]


def share_grant(shared_under: Sequence[bytes], grants: Iterable[G], type_mask: int, now: datetime) -> G | None:
    """The grant under which a version's key, shared under the grants ``shared_under``, may be served; None: refuse.

    Only the grant a key was shared under counts. The patient's client shares a key under a grant only for a
    resource that grant's scope covers (it sees the plaintext; the vault sees only the type), so the share is
    that grant's word for this exact resource, and the grant must still open the type now. The first such grant
    in ``shared_under`` order is named (the access log records it).
    """
    opening = {g.grant_id: g for g in opening_grants(grants, type_mask, now)}
    return next((opening[g] for g in shared_under if g in opening), None)


def expired_grants(grants: Iterable[G], now: datetime) -> list[G]:
    """Grants that ended by expiry (revocation already deleted its shares): their shares open nothing any more."""
    return [g for g in grants if g.revoked_at is None and not now < g.expiry]
