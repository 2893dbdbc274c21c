"""Grants and revocations at the vault: put them on the consent ledger, and enforce them with data keys.

Flow (DESIGN.md section 7):

- **grant**: the patient's client makes a :class:`~consent_chain.grants.Grant`, signs its commitment (EIP-712)
  and sends the signed entry with the grant's opening. The vault checks that the opening matches the commitment,
  appends the GRANT entry to the ledger (which checks the signature, the nonce and the patient's key), and keeps
  the opening as the policy it enforces. The client then re-wraps the data keys of in-scope resources for the
  grantee (:meth:`ConsentService.add_keys`): the vault checks each against the grant and stores it as that
  grant's share, which opens the version only while that grant is active (:func:`ehr.policy.share_grant`).
- **revoke**: the patient signs a revocation; the ledger appends the REVOKE entry (refusing anyone but the
  grant's patient), the vault marks the policy revoked and deletes the keys shared under that grant, and no
  other grant's: the grantee keeps what another active grant shared with it. What the grantee already
  downloaded cannot be recalled. An expired grant's shares open nothing, and are deleted once a request by the
  grantee finds the grant expired.
- **erase**: the patient crypto-shreds a resource: every wrapped key and ciphertext of every version is deleted.

Two kinds of grant share the ledger and this service. A **read grant** (a PurposeOfUse such as ``TREAT``, over
the ``pchr-read-v1`` catalogue) opens records: the vault enforces it with re-wrapped data keys. A **scoring grant**
(purpose ``model:<model id>``, over that model's feature catalogue, one bit per feature) opens no record; it lets
the grantee have that model score the features in its scope (:meth:`ConsentService.scoring_grant`), which the
model service checks before any homomorphic work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from consent_chain.entries import GrantEntry, RevokeEntry
from consent_chain.errors import AppendRefused
from consent_chain.grants import READ_PURPOSES, Grant
from consent_chain.ledger import Appended, Ledger
from ehr.crypto import WrappedKey
from ehr.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unprocessable
from ehr.identity import Role
from ehr.policy import Action, Principal, authorize
from ehr.service import Vault
from ehr.store import GrantPolicy

__all__ = ["MODEL_PURPOSE_PREFIX", "ConsentService", "KeyShare"]

# How AppendRefused reasons map to HTTP: a replay or a race is a conflict, a bad signature is forbidden.
_REFUSAL_ERRORS: dict[str, type[Conflict] | type[Forbidden] | type[Unprocessable] | type[NotFound]] = {
    "unregistered": Unprocessable,
    "bad-signature": Forbidden,
    "replay": Conflict,
    "duplicate": Conflict,
    "unknown-grant": NotFound,
    "not-your-grant": Forbidden,
    "already-revoked": Conflict,
    "stale": Unprocessable,
    "bad-commitment": Unprocessable,
    "conflict": Conflict,
}


@dataclass(frozen=True)
class KeyShare:
    """A data key of one resource version, wrapped for a grantee."""

    resource_type: str
    resource_id: str
    version_id: int
    key: WrappedKey


def _refused(exc: AppendRefused) -> Exception:
    return _REFUSAL_ERRORS[exc.reason](f"the consent ledger refused the entry ({exc.reason}): {exc}")


MODEL_PURPOSE_PREFIX = "model:"


class ConsentService:
    """Grants, revocations and erasure at the vault (module docstring).

    ``model_catalogue`` maps a served model's id to the catalogue its scoring grants are written over (None for a
    model the service does not score); without it, the vault accepts read grants only.
    """

    def __init__(
        self, vault: Vault, ledger: Ledger, *, model_catalogue: Callable[[str], str | None] = lambda _: None
    ) -> None:
        self.vault = vault
        self.ledger = ledger
        self._model_catalogue = model_catalogue

    def _now(self) -> datetime:
        return self.vault.clock()

    def grant(self, principal: Principal, grant: Grant, entry: GrantEntry) -> tuple[Appended, GrantPolicy]:
        """Put a signed grant on the ledger and start enforcing its opening."""
        if principal.role is not Role.PATIENT or principal.address != grant.patient:
            raise Forbidden("only the patient grants access to their record")
        if entry.patient != grant.patient or entry.grant_id != grant.grant_id:
            raise InvalidRequest("the signed entry and the grant name different patients or grant ids")
        if entry.commitment != grant.commitment():
            raise InvalidRequest("the grant's opening does not match the signed commitment")
        self._check_kind(grant)
        if not grant.active_at(self._now()):
            raise Unprocessable("the grant has already expired")
        with self.vault.store.session() as tx:
            if tx.get_actor(grant.grantee) is None:
                raise Unprocessable(f"the grantee {grant.grantee} is not registered with this vault")
        # Ledger first: the vault enforces only what the ledger accepted.
        try:
            (appended,) = self.ledger.append([entry])
        except AppendRefused as exc:
            raise _refused(exc) from exc
        policy = GrantPolicy(
            grant.grant_id,
            grant.patient,
            grant.grantee,
            grant.purpose,
            grant.scope,
            grant.catalogue_id,
            grant.expiry,
            self._now(),
            appended.index,
            None,
            grant.salt,
        )
        with self.vault.store.session() as tx:
            tx.put_grant_policy(policy)
        return appended, policy

    def _check_kind(self, grant: Grant) -> None:
        """A read grant over the read catalogue, or a scoring grant over its served model's feature catalogue."""
        if grant.purpose.startswith(MODEL_PURPOSE_PREFIX):
            model_id = grant.purpose.removeprefix(MODEL_PURPOSE_PREFIX)
            expected = self._model_catalogue(model_id)
            if expected is None:
                raise Unprocessable(f"the grant names a model this service does not score ({model_id[:64]})")
            if grant.catalogue_id != expected:
                raise Unprocessable(f"a scoring grant for this model is written over the catalogue {expected}")
            return
        if grant.catalogue_id != self.vault.catalogue.catalogue_id or grant.purpose not in READ_PURPOSES:
            raise Unprocessable(
                f"a read grant names one of {', '.join(READ_PURPOSES)} over the {self.vault.catalogue.catalogue_id} "
                "catalogue; a scoring grant names model:<model id> over the model's feature catalogue"
            )
        try:
            self.vault.catalogue.granted(grant.scope)
        except ValueError as exc:
            raise Unprocessable(str(exc)) from exc

    def scoring_grant(self, principal: Principal, grant_id: bytes, model_id: str, used_mask: int) -> GrantPolicy:
        """The caller's active scoring grant for ``model_id`` covering ``used_mask``; Forbidden (403) otherwise.

        Checked before the model service does any work, so a refused request costs nothing but this lookup.
        """
        with self.vault.store.session() as tx:
            policy = tx.grant_policy(grant_id)
        if policy is None or policy.grantee != principal.address:
            raise Forbidden("no grant with this id is held by the caller")
        if policy.purpose != f"{MODEL_PURPOSE_PREFIX}{model_id}":
            raise Forbidden("the grant's purpose is not scoring with this model")
        if policy.revoked_at is not None:
            raise Forbidden("the grant was revoked")
        if not policy.active_at(self._now()):
            raise Forbidden("the grant has expired")
        if used_mask & ~policy.scope:
            raise Forbidden("the request uses features outside the grant's scope")
        return policy

    def add_keys(self, principal: Principal, grant_id: bytes, shares: Sequence[KeyShare]) -> int:
        """Store data keys the patient's client re-wrapped for a grantee; each must fall within the grant."""
        with self.vault.store.session() as tx:
            policy = tx.grant_policy(grant_id)
            if policy is None:
                raise NotFound("no such grant")
            if principal.address != policy.patient:
                raise Forbidden("only the grant's patient shares keys under it")
            if not policy.active_at(self._now()):
                raise Conflict("the grant is no longer active")
            if policy.purpose not in READ_PURPOSES:
                raise Forbidden("a scoring grant opens no record: data keys are shared under read grants only")
            for i, share in enumerate(shares):
                where = f"keys[{i}]"
                if share.key.recipient != policy.grantee:
                    raise InvalidRequest(f"{where}: a key shared under a grant must be wrapped for its grantee")
                if not policy.scope & self.vault.catalogue.type_mask(share.resource_type):
                    raise Forbidden(f"{where}: the grant does not cover {share.resource_type} resources")
                head = tx.head(share.resource_type, share.resource_id)
                if head is None or head.patient != policy.patient:
                    raise NotFound(f"{where}: no such resource in the patient's record")
                if tx.version(share.resource_type, share.resource_id, share.version_id, policy.patient) is None:
                    raise NotFound(f"{where}: no such version")
                tx.add_share(grant_id, share.resource_type, share.resource_id, share.version_id, share.key)
        return len(shares)

    def revoke(self, principal: Principal, entry: RevokeEntry) -> tuple[Appended, int]:
        """Put a signed revocation on the ledger; delete the keys shared under it. Returns (entry, keys deleted)."""
        if principal.address != entry.patient:
            raise Forbidden("a revocation is submitted by the patient who signed it")
        try:
            (appended,) = self.ledger.append([entry])
        except AppendRefused as exc:
            raise _refused(exc) from exc
        deleted = 0
        with self.vault.store.session() as tx:
            policy = tx.grant_policy(entry.grant_id)
            if policy is not None:
                tx.revoke_grant_policy(entry.grant_id, self._now())
                deleted = tx.delete_shares([entry.grant_id])
        return appended, deleted

    def policy(self, grant_id: bytes) -> GrantPolicy | None:
        with self.vault.store.session() as tx:
            return tx.grant_policy(grant_id)

    def grants(self, principal: Principal) -> list[GrantPolicy]:
        """The grants the caller gave (as a patient) or holds (as a grantee)."""
        with self.vault.store.session() as tx:
            given = tx.grant_policies(patient=principal.address) if principal.role is Role.PATIENT else []
            held = tx.grant_policies(grantee=principal.address)
        return sorted({g.grant_id: g for g in [*given, *held]}.values(), key=lambda g: g.granted_at)

    def erase(self, principal: Principal, resource_type: str, resource_id: str) -> int:
        """Crypto-shred a resource (every version): allowed as a DELETE of it is (its patient, with a token
        allowing delete on its type), since it destroys more than a DELETE does."""
        with self.vault.store.session() as tx:
            head = tx.head(resource_type, resource_id)
            if head is None:
                raise NotFound(f"{resource_type}/{resource_id} is not known")
            authorize(principal, Action.DELETE, resource_type, head.patient, named_writer=False)
            return tx.erase(resource_type, resource_id)


def utc_seconds(dt: datetime) -> int:
    return int(dt.astimezone(UTC).timestamp())
