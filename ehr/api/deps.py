"""FastAPI dependencies, as ``Annotated`` aliases; tests swap them with ``app.dependency_overrides``.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, and a thread hop
costs more than these take. Blocking work (the database) goes through ``run_in_threadpool`` in the routers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from consent_chain.ledger import Ledger
from ehr.consent import ConsentService
from ehr.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from ehr.fhir import parse_json
from ehr.policy import Principal
from ehr.service import Vault
from ehr.settings import Settings

__all__ = [
    "FORM",
    "BaseUrl",
    "ConsentsDep",
    "CurrentPrincipal",
    "JsonBody",
    "LedgerDep",
    "SettingsDep",
    "TokenAudiences",
    "VaultDep",
    "read_body",
    "read_form",
]

FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 1000


async def get_vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


VaultDep = Annotated[Vault, Depends(get_vault)]


async def get_consents(request: Request) -> ConsentService:
    consents: ConsentService = request.app.state.consents
    return consents


async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.consents.ledger
    return ledger


ConsentsDep = Annotated[ConsentService, Depends(get_consents)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def current_principal(request: Request, vault: VaultDep) -> Principal:
    # Pure CPU and usually a cache hit (see AccessTokens.verify): run inline, no thread hop.
    return vault.authenticate(request.headers.get("authorization"))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def base_url(request: Request, settings: SettingsDep) -> str:
    """The base of links in responses: the public URL the request came in by if it is one the vault answers to
    (``127.0.0.1`` or ``localhost``), else the configured one; never a URL the request alone made up."""
    came_by = str(request.base_url).rstrip("/")
    return came_by if came_by in settings.public_urls else settings.public_urls[0]


BaseUrl = Annotated[str, Depends(base_url)]


async def token_audiences(settings: SettingsDep) -> tuple[str, ...]:
    """The ``aud`` values a client assertion may carry here: the token endpoint under each public URL, from the
    settings only. (Built from the request's Host, it would accept an assertion signed for another server.)"""
    return tuple(f"{url}/auth/token" for url in settings.public_urls)


TokenAudiences = Annotated[tuple[str, ...], Depends(token_audiences)]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length", "")
    if re.fullmatch(r"[0-9]+", declared):
        # Compared by length first: int() refuses (ValueError) a string of thousands of digits.
        digits = declared.lstrip("0")
        if len(digits) > len(str(limit)) or int(digits or "0") > limit:
            raise PayloadTooLarge(f"request body is larger than the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, limit: int) -> list[tuple[str, str]]:
    """The fields of an ``application/x-www-form-urlencoded`` body, read under the same ``limit`` as any body.

    Refuses another media type (multipart included: no route takes files) with 415, a body over ``limit`` with
    413, and a body that is not UTF-8 or has more than MAX_FORM_FIELDS fields with 400. No body at all, and no
    Content-Type, is an empty form.
    """
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.split(";", 1)[0].strip().lower() != FORM:
        raise UnsupportedMediaType(f"a form body must be {FORM}, not {content_type.split(';', 1)[0][:64]!r}")
    body = await read_body(request, limit)
    if not body:
        return []
    if content_type is None:
        raise UnsupportedMediaType(f"a form body must be sent as {FORM}")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:  # UnicodeDecodeError included
        raise InvalidRequest(f"form body is not UTF-8 {FORM} of at most {MAX_FORM_FIELDS} fields") from exc


async def json_body(request: Request, settings: SettingsDep) -> dict[str, Any]:
    return parse_json(await read_body(request, settings.max_body_bytes))


JsonBody = Annotated[dict[str, Any], Depends(json_body)]
