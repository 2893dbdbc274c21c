"""Authentication routes: actor registration, public key lookup, SMART token endpoint, named writers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ehr.api.deps import CurrentPrincipal, JsonBody, SettingsDep, TokenAudiences, VaultDep, read_form
from ehr.api.render import fhir_response
from ehr.errors import InvalidRequest, OAuthError
from ehr.fhir import operation_outcome
from ehr.identity import ActorPublic, BindingError

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register")
async def register(body: JsonBody, vault: VaultDep) -> Response:
    """Register an actor's public keys: the binding signature is the proof of possession."""
    try:
        actor = ActorPublic.from_json(body)
    except BindingError as exc:
        raise InvalidRequest(f"actor registration rejected: {exc}") from exc
    created = await run_in_threadpool(vault.register, actor)
    return JSONResponse(actor.to_json(), status_code=201 if created else 200)


@router.get("/actors/{address}")
async def actor(address: str, principal: CurrentPrincipal, vault: VaultDep) -> Response:
    """An actor's public record; clients re-verify its binding signature before trusting the key."""
    found = await run_in_threadpool(vault.actor, address)
    return JSONResponse(found.to_json())


@router.post("/token")
async def token(request: Request, vault: VaultDep, audiences: TokenAudiences, settings: SettingsDep) -> Response:
    """SMART Backend Services token endpoint (client_credentials + private_key_jwt).

    The request is a form (RFC 6749, section 4.4.2), read under the vault's body-size limit; refusals are
    RFC 6749 errors, as everything this endpoint answers.
    """
    try:
        form = dict(await read_form(request, settings.max_body_bytes))
    except InvalidRequest as exc:
        raise OAuthError("invalid_request", exc.message, status=exc.status) from exc

    def field(name: str) -> str:
        return form.get(name, "")

    grant = await run_in_threadpool(
        vault.issue_token,
        grant_type=field("grant_type"),
        assertion_type=field("client_assertion_type"),
        assertion=field("client_assertion"),
        scope=field("scope"),
        audiences=audiences,
    )
    body: dict[str, Any] = {
        "access_token": grant.access_token,
        "token_type": "bearer",
        "expires_in": grant.expires_in,
        "scope": grant.scope,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.get("/writers")
async def list_writers(principal: CurrentPrincipal, vault: VaultDep) -> Response:
    return JSONResponse({"patient": principal.address, "writers": await run_in_threadpool(vault.writers, principal)})


@router.put("/writers/{address}")
async def add_writer(address: str, principal: CurrentPrincipal, vault: VaultDep) -> Response:
    await run_in_threadpool(vault.add_writer, principal, address)
    return fhir_response(operation_outcome("information", "informational", f"{address} may now write to your record"))


@router.delete("/writers/{address}")
async def remove_writer(address: str, principal: CurrentPrincipal, vault: VaultDep) -> Response:
    await run_in_threadpool(vault.remove_writer, principal, address)
    return fhir_response(operation_outcome("information", "informational", f"{address} may no longer write"))
