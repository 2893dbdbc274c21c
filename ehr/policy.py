"""Who may do what to whose records: the vault's access policy, as a pure function.

The rules are:

- a patient reads, searches, writes and deletes the records in their own compartment;
- a *grantee* reads and searches a patient's resources of a type while an active grant (signed on the consent
  ledger, unexpired, not revoked) covers that type; which resources of the type it covers is enforced by the
  data keys: the patient's client wraps a key for the grantee only for resources in the grant's scope;
- a *writer* the patient has named (a clinician, a lab) may create and update records for that patient,
  but cannot read them back unless a grant also covers them;
- nobody else may do anything with the patient's records;
- every interaction must also be allowed by the access token's SMART scopes (:mod:`ehr.scopes`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ehr.errors import Forbidden
from ehr.identity import Role
from ehr.scopes import Scope, needed_scope

__all__ = ["Action", "Principal", "authorize", "require_scope"]


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
