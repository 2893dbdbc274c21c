"""SMART on FHIR scopes: parse them, decide which a role may hold, and check an interaction against them.

Grammar (SMART App Launch 2.x, section "Scopes for requesting FHIR resources")::

    scope    := context "/" type "." perms
    context  := "patient" | "user" | "system"
    type     := "*" | ResourceType
    perms    := v2 letters in order from "cruds"  |  v1 "read" | "write" | "*"

v1 ``read`` is ``rs``, ``write`` is ``cud``, ``*`` is ``cruds``. A scope only ever narrows what the access
policy (:mod:`ehr.policy`) allows; it never grants access to someone else's records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ehr.identity import Role

__all__ = ["Scope", "grantable", "needed_scope", "parse_scope", "scope_string"]

_SCOPE_RE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.([a-z*]+)$")
_V2_ORDER = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}

# The scope contexts each role may be issued.
_CONTEXTS: dict[Role, frozenset[str]] = {
    Role.PATIENT: frozenset({"patient"}),
    Role.CLINICIAN: frozenset({"user", "system"}),
    Role.AUDITOR: frozenset({"system"}),
}
# The context named when telling a role which scope it lacks.
_NAMED_CONTEXT: dict[Role, str] = {Role.PATIENT: "patient", Role.CLINICIAN: "user", Role.AUDITOR: "system"}
# Auditors verify the ledger; they never need to write records.
_MAX_PERMISSIONS: dict[Role, str] = {Role.PATIENT: "cruds", Role.CLINICIAN: "cruds", Role.AUDITOR: "rs"}


@dataclass(frozen=True)
class Scope:
    context: str
    resource_type: str
    permissions: str  # a subsequence of "cruds"

    def allows(self, resource_type: str, permission: str) -> bool:
        return self.resource_type in ("*", resource_type) and permission in self.permissions

    def __str__(self) -> str:
        return f"{self.context}/{self.resource_type}.{self.permissions}"


def parse_scope(text: str) -> Scope | None:
    """Parse one FHIR resource scope; None for anything else (``openid``, ``launch``, typos)."""
    match = _SCOPE_RE.match(text)
    if not match:
        return None
    context, resource_type, perms = match.groups()
    if perms in _V1:
        perms = _V1[perms]
    elif not _is_v2(perms):
        return None
    return Scope(context, resource_type, perms)


def _is_v2(perms: str) -> bool:
    positions = [_V2_ORDER.find(p) for p in perms]
    return bool(perms) and -1 not in positions and positions == sorted(set(positions))


def grantable(requested: str, role: Role) -> tuple[Scope, ...]:
    """The subset of the requested scopes a role may be issued, each capped at the role's permissions."""
    granted: list[Scope] = []
    for word in requested.split():
        scope = parse_scope(word)
        if scope is None or scope.context not in _CONTEXTS[role]:
            continue
        perms = "".join(p for p in scope.permissions if p in _MAX_PERMISSIONS[role])
        if perms and Scope(scope.context, scope.resource_type, perms) not in granted:
            granted.append(Scope(scope.context, scope.resource_type, perms))
    return tuple(granted)


def needed_scope(role: Role, resource_type: str, permissions: str) -> Scope:
    """The scope a ``role`` would ask for to hold ``permissions`` on ``resource_type`` (to say what is missing)."""
    return Scope(_NAMED_CONTEXT[role], resource_type, "".join(p for p in _V2_ORDER if p in permissions))


def scope_string(scopes: tuple[Scope, ...]) -> str:
    return " ".join(str(s) for s in scopes)
