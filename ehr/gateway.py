"""The local gateway: a plain FHIR R4B endpoint on the actor's own machine that seals and unseals transparently.

``pchr gateway`` runs this app on 127.0.0.1. It holds the actor's keys (opened from the keyfile), talks to the
vault through :class:`ehr.client.VaultClient`, and speaks ordinary FHIR JSON, so existing FHIR clients and
apps (fhirpy, SMART apps, curl) work unchanged against an encrypted record. It has no authentication of its
own: it must listen on loopback only, like any local wallet or agent holding keys, and it refuses what a web page
in the actor's browser could send it (DNS rebinding, cross-site requests: :mod:`ehr.local_guard`).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ehr.api.capability import capability_statement
from ehr.api.deps import read_body, read_form
from ehr.client import VaultClient, VaultClientError
from ehr.errors import InvalidRequest, VaultError
from ehr.fhir import FHIR_JSON, operation_outcome, outcome_for, parse_json
from ehr.local_guard import refusal

__all__ = ["create_gateway"]

_MAX_BODY = 4 * 1024 * 1024


def _fhir(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers, media_type=FHIR_JSON)


def _resource_headers(resource: dict[str, Any], base: str) -> dict[str, str]:
    meta = resource.get("meta", {})
    headers = {"ETag": f'W/"{meta.get("versionId", "")}"'}
    headers["Location"] = f"{base}/{resource['resourceType']}/{resource['id']}/_history/{meta.get('versionId', '')}"
    return headers


def create_gateway(client: VaultClient) -> FastAPI:
    """The gateway app for one actor's VaultClient."""
    app = FastAPI(title="pchr gateway", docs_url=None, redoc_url=None)
    vault_base = client.base_url

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def relink(bundle: dict[str, Any], request: Request) -> dict[str, Any]:
        """Point a vault Bundle's links and fullUrls at this gateway."""
        here = base(request)
        for link in bundle.get("link", []):
            if link.get("url", "").startswith(vault_base):
                link["url"] = here + link["url"][len(vault_base) :]
        for entry in bundle.get("entry", []):
            if entry.get("fullUrl", "").startswith(vault_base):
                entry["fullUrl"] = here + entry["fullUrl"][len(vault_base) :]
        return bundle

    @app.middleware("http")
    async def loopback_only(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        refused = refusal(request.method, request.url.path, request.headers)
        if refused is not None:
            return _fhir(outcome_for(refused), refused.status)
        return await call_next(request)

    async def body_of(request: Request) -> dict[str, Any]:
        return parse_json(await read_body(request, _MAX_BODY))

    @app.exception_handler(VaultClientError)
    async def relay(_: Request, exc: VaultClientError) -> Response:
        body = (
            exc.body
            if exc.body.get("resourceType") == "OperationOutcome"
            else operation_outcome("error", "processing", exc.message)
        )
        return _fhir(body, exc.status)

    @app.exception_handler(VaultError)
    async def local_error(_: Request, exc: VaultError) -> Response:
        return _fhir(outcome_for(exc), exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        # Unknown paths and unsupported methods (PATCH, conditional update): an OperationOutcome, as the vault does.
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        return _fhir(operation_outcome("error", code, str(exc.detail)), exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(httpx.HTTPError)
    async def vault_unreachable(_: Request, exc: httpx.HTTPError) -> Response:
        return _fhir(operation_outcome("error", "transient", f"the vault did not answer: {type(exc).__name__}"), 502)

    @app.get("/metadata")
    def metadata() -> Response:
        statement = copy.deepcopy(capability_statement("0.1.0"))
        statement["software"]["name"] = "pchr gateway"
        statement["implementation"] = {"description": f"pchr gateway for {client.address} (seals locally)"}
        # The gateway itself needs no login: it listens on loopback and holds the actor's keys.
        statement["rest"][0].pop("security", None)
        return _fhir(statement)

    @app.post("/")
    async def transaction(request: Request) -> Response:
        bundle = await body_of(request)
        return _fhir(await run_in_threadpool(client.transaction, bundle))

    @app.get("/{resource_type}/_history")
    def type_history(resource_type: str, request: Request) -> Response:
        params = list(request.query_params.multi_items())
        return _fhir(relink(client.history(resource_type, None, params), request))

    @app.get("/{resource_type}/{resource_id}/_history/{version_id}")
    def vread(resource_type: str, resource_id: str, version_id: str, request: Request) -> Response:
        resource = client.vread(resource_type, resource_id, version_id)
        return _fhir(resource, headers=_resource_headers(resource, base(request)))

    @app.get("/{resource_type}/{resource_id}/_history")
    def history(resource_type: str, resource_id: str, request: Request) -> Response:
        params = list(request.query_params.multi_items())
        return _fhir(relink(client.history(resource_type, resource_id, params), request))

    @app.get("/{resource_type}/{resource_id}")
    def read(resource_type: str, resource_id: str, request: Request) -> Response:
        resource = client.read(resource_type, resource_id)
        return _fhir(resource, headers=_resource_headers(resource, base(request)))

    @app.get("/{resource_type}")
    def search(resource_type: str, request: Request) -> Response:
        params = list(request.query_params.multi_items())
        return _fhir(relink(client.search(resource_type, params), request))

    @app.post("/{resource_type}/_search")
    async def search_post(resource_type: str, request: Request) -> Response:
        params = list(request.query_params.multi_items()) + await read_form(request, _MAX_BODY)
        bundle = await run_in_threadpool(client.search, resource_type, params)
        return _fhir(relink(bundle, request))

    @app.post("/{resource_type}")
    async def create(resource_type: str, request: Request) -> Response:
        body = await body_of(request)
        if body.get("resourceType") != resource_type:
            raise InvalidRequest("resourceType does not match the URL", expression="resourceType")
        resource = await run_in_threadpool(client.create, body)
        return _fhir(resource, 201, _resource_headers(resource, base(request)))

    @app.put("/{resource_type}/{resource_id}")
    async def update(resource_type: str, resource_id: str, request: Request) -> Response:
        body = await body_of(request)
        if body.get("resourceType") != resource_type or body.get("id") != resource_id:
            raise InvalidRequest("resourceType and id must match the URL", expression="id")
        resource = await run_in_threadpool(lambda: client.update(body, if_match=request.headers.get("if-match")))
        created = resource["meta"]["versionId"] == "1"
        return _fhir(resource, 201 if created else 200, _resource_headers(resource, base(request)))

    @app.delete("/{resource_type}/{resource_id}")
    def delete(resource_type: str, resource_id: str) -> Response:
        client.delete(resource_type, resource_id)
        return Response(status_code=204)

    return app
