"""FHIR R4B REST routes: translate HTTP into :class:`ehr.service.Vault` calls and back; no queries here."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ehr.api.capability import capability_statement, smart_configuration
from ehr.api.deps import BaseUrl, CurrentPrincipal, JsonBody, SettingsDep, VaultDep, read_form
from ehr.api.render import (
    bundle_response,
    fhir_response,
    history_bundle,
    sealed_response,
    searchset,
    write_response,
)
from ehr.errors import InvalidRequest
from ehr.search import DEFAULT_COUNT, MAX_COUNT, parse_search, time_bounds

router = APIRouter(tags=["fhir"])

_VERSION = "0.1.0"


def _params(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def _strict(request: Request) -> bool:
    return "handling=strict" in request.headers.get("prefer", "").replace(" ", "")


def _history_params(params: list[tuple[str, str]]) -> tuple[datetime | None, int, int]:
    query = parse_search([(k, v) for k, v in params if k in ("_count", "_offset")], strict=False)
    since = None
    for name, value in params:
        if name == "_since":
            since = time_bounds(f"ge{value}", name="_since")[0].at
    count = query.count if any(k == "_count" for k, _ in params) else DEFAULT_COUNT
    return since, query.offset, min(count, MAX_COUNT)


@router.get("/metadata")
async def metadata() -> Response:
    return fhir_response(capability_statement(_VERSION))


@router.get("/.well-known/smart-configuration")
async def smart_config(base: BaseUrl) -> Response:
    return fhir_response(smart_configuration(base))


@router.post("/")
async def transaction(body: JsonBody, principal: CurrentPrincipal, vault: VaultDep, base: BaseUrl) -> Response:
    results = await run_in_threadpool(vault.transaction, principal, body)
    return bundle_response(base, results)


@router.get("/{resource_type}/_history")
async def type_history(
    resource_type: str, request: Request, principal: CurrentPrincipal, vault: VaultDep, base: BaseUrl
) -> Response:
    params = _params(request)
    since, offset, count = _history_params(params)
    page = await run_in_threadpool(
        vault.history, principal, resource_type, None, since=since, offset=offset, count=count
    )
    return fhir_response(history_bundle(base, f"{resource_type}/_history", params, page))


@router.get("/{resource_type}/{resource_id}/_history/{version_id}")
async def vread(
    resource_type: str, resource_id: str, version_id: str, principal: CurrentPrincipal, vault: VaultDep
) -> Response:
    record = await run_in_threadpool(vault.read, principal, resource_type, resource_id, version_id)
    return sealed_response(record)


@router.get("/{resource_type}/{resource_id}/_history")
async def instance_history(
    resource_type: str, resource_id: str, request: Request, principal: CurrentPrincipal, vault: VaultDep, base: BaseUrl
) -> Response:
    params = _params(request)
    since, offset, count = _history_params(params)
    page = await run_in_threadpool(
        vault.history, principal, resource_type, resource_id, since=since, offset=offset, count=count
    )
    return fhir_response(history_bundle(base, f"{resource_type}/{resource_id}/_history", params, page))


async def _search(
    resource_type: str,
    params: list[tuple[str, str]],
    request: Request,
    principal: CurrentPrincipal,
    vault: VaultDep,
    base: BaseUrl,
) -> Response:
    query = parse_search(params, strict=_strict(request))
    page = await run_in_threadpool(vault.search, principal, resource_type, query)
    return fhir_response(searchset(base, resource_type, query.used, page))


@router.get("/{resource_type}")
async def search(
    resource_type: str, request: Request, principal: CurrentPrincipal, vault: VaultDep, base: BaseUrl
) -> Response:
    return await _search(resource_type, _params(request), request, principal, vault, base)


@router.post("/{resource_type}/_search")
async def search_post(
    resource_type: str,
    request: Request,
    principal: CurrentPrincipal,
    vault: VaultDep,
    base: BaseUrl,
    settings: SettingsDep,
) -> Response:
    """Search with the parameters in a form body (FHIR R4B, section 3.1.1.3), as well as in the URL."""
    params = _params(request) + await read_form(request, settings.max_body_bytes)
    return await _search(resource_type, params, request, principal, vault, base)


@router.get("/{resource_type}/{resource_id}")
async def read(resource_type: str, resource_id: str, principal: CurrentPrincipal, vault: VaultDep) -> Response:
    record = await run_in_threadpool(vault.read, principal, resource_type, resource_id)
    return sealed_response(record)


@router.post("/{resource_type}")
async def create(
    resource_type: str, body: JsonBody, principal: CurrentPrincipal, vault: VaultDep, base: BaseUrl
) -> Response:
    result = await run_in_threadpool(vault.create, principal, resource_type, body)
    return write_response(result, base)


@router.put("/{resource_type}/{resource_id}")
async def update(
    resource_type: str,
    resource_id: str,
    request: Request,
    body: JsonBody,
    principal: CurrentPrincipal,
    vault: VaultDep,
    base: BaseUrl,
) -> Response:
    result = await run_in_threadpool(
        vault.update, principal, resource_type, resource_id, body, if_match=request.headers.get("if-match")
    )
    return write_response(result, base)


@router.delete("/{resource_type}/{resource_id}")
async def delete(
    resource_type: str, resource_id: str, request: Request, principal: CurrentPrincipal, vault: VaultDep, base: BaseUrl
) -> Response:
    result = await run_in_threadpool(
        vault.delete, principal, resource_type, resource_id, if_match=request.headers.get("if-match")
    )
    return write_response(result, base)


__all__ = ["InvalidRequest", "router"]
