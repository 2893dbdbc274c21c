"""Consent routes: grant, share keys under a grant, revoke, list; and the FHIR ``$erase`` operation."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from consent_chain.entries import GrantEntry, RevokeEntry
from consent_chain.errors import GrantError
from consent_chain.grants import Grant
from ehr.api.deps import ConsentsDep, CurrentPrincipal, JsonBody
from ehr.api.render import fhir_response
from ehr.consent import KeyShare
from ehr.crypto import WrappedKey
from ehr.errors import InvalidRequest
from ehr.fhir import operation_outcome
from ehr.store import GrantPolicy

router = APIRouter(tags=["consent"])


def _policy_json(policy: GrantPolicy) -> dict[str, Any]:
    return {
        "grantId": policy.grant_id.hex(),
        "patient": policy.patient,
        "grantee": policy.grantee,
        "purpose": policy.purpose,
        "scope": format(policy.scope, "016x"),
        "catalogue": policy.catalogue_id,
        "expiry": policy.expiry.isoformat(),
        "grantedAt": policy.granted_at.isoformat(),
        "ledgerIndex": policy.ledger_index,
        "revokedAt": policy.revoked_at.isoformat() if policy.revoked_at else None,
        # Only the grant's parties list it: the grantee needs the salt to prove membership in the grant tree.
        "salt": format(policy.salt, "064x"),
    }


def _grant_id(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidRequest("a grant id is 64 hex digits")
    return raw


def _uint(value: object, name: str, bits: int) -> int:
    """An unsigned integer of the signed message (EIP-712 uint<bits>): a JSON integer or a string of ASCII digits."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,78}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise InvalidRequest(f"{name} must be an integer from 0 to 2**{bits} - 1", expression=name)
    return value


def _version(value: object) -> int:
    """A version number as the vault stores them (a JSON integer or ASCII digits), else ValueError."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 999_999_999:
        raise ValueError("versionId must be an integer from 1 to 999999999")
    return value


def _signed(body: dict[str, Any]) -> tuple[int, int, bytes]:
    try:
        signature = bytes.fromhex(str(body["signature"]).removeprefix("0x"))
    except (KeyError, ValueError) as exc:
        raise InvalidRequest(f"a signed entry needs nonce, issuedAt and signature (hex): {exc}") from exc
    return _uint(body.get("nonce"), "nonce", 256), _uint(body.get("issuedAt"), "issuedAt", 64), signature


@router.post("/consent/grants")
async def grant(body: JsonBody, principal: CurrentPrincipal, consents: ConsentsDep) -> Response:
    """Put a patient-signed grant on the ledger: ``{"grant": opening, "nonce", "issuedAt", "signature"}``."""
    try:
        opening = Grant.from_json(body.get("grant"))
    except GrantError as exc:
        raise InvalidRequest(str(exc)) from exc
    nonce, issued_at, signature = _signed(body)
    entry = GrantEntry(opening.grant_id, opening.patient, opening.commitment(), nonce, issued_at, signature)
    appended, policy = await run_in_threadpool(consents.grant, principal, opening, entry)
    return JSONResponse(
        {
            **_policy_json(policy),
            "entryIndex": appended.index,
            "leafIndex": appended.leaf_index,
        },
        status_code=201,
    )


@router.get("/consent/grants")
async def grants(principal: CurrentPrincipal, consents: ConsentsDep) -> Response:
    found = await run_in_threadpool(consents.grants, principal)
    return JSONResponse({"grants": [_policy_json(p) for p in found]})


@router.post("/consent/grants/{grant_id}/keys")
async def share_keys(grant_id: str, body: JsonBody, principal: CurrentPrincipal, consents: ConsentsDep) -> Response:
    """Data keys re-wrapped for the grantee: ``{"keys": [{resourceType, id, versionId, key}]}``."""
    raw = body.get("keys")
    if not isinstance(raw, list) or len(raw) > 1000:
        raise InvalidRequest("keys must be a list of at most 1000 shares")
    try:
        shares = [
            KeyShare(str(k["resourceType"]), str(k["id"]), _version(k["versionId"]), WrappedKey.from_json(k["key"]))
            for k in raw
        ]
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"malformed key share: {exc}") from exc
    count = await run_in_threadpool(consents.add_keys, principal, _grant_id(grant_id), shares)
    return JSONResponse({"stored": count})


@router.post("/consent/grants/{grant_id}/revoke")
async def revoke(grant_id: str, body: JsonBody, principal: CurrentPrincipal, consents: ConsentsDep) -> Response:
    nonce, issued_at, signature = _signed(body)
    entry = RevokeEntry(_grant_id(grant_id), principal.address, nonce, issued_at, signature)
    appended, deleted = await run_in_threadpool(consents.revoke, principal, entry)
    return JSONResponse({"entryIndex": appended.index, "keysDeleted": deleted})


@router.post("/{resource_type}/{resource_id}/$erase")
async def erase(resource_type: str, resource_id: str, principal: CurrentPrincipal, consents: ConsentsDep) -> Response:
    """Crypto-shred a resource: every version's wrapped keys and ciphertext are destroyed."""
    count = await run_in_threadpool(consents.erase, principal, resource_type, resource_id)
    text = f"{resource_type}/{resource_id} erased: {count} version(s) crypto-shredded"
    return fhir_response(operation_outcome("information", "informational", text))
