"""Building the vault's ASGI app: ``create_app(settings)``."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from consent_chain.backends.sql import SqlLedgerBackend
from consent_chain.eip712 import Domain, sql_ledger_domain
from consent_chain.errors import ChainError
from consent_chain.ledger import Ledger
from consent_chain.note import Signer
from ehr.api import auth_routes, consent_routes, fhir_routes, ledger_routes, model_routes, zk_routes
from ehr.api.render import fhir_response
from ehr.consent import ConsentService
from ehr.errors import OAuthError, Unauthorized, VaultError
from ehr.fhir import operation_outcome, outcome_for
from ehr.service import Vault
from ehr.settings import Settings
from ehr.store import Store

if TYPE_CHECKING:
    from consent_chain.backends.evm import EvmLedgerBackend
    from ehr.zk_keys import ConsentKeys
    from models.service import ScoringService

__all__ = [
    "app_from_env",
    "build_evm_backend",
    "build_ledger",
    "create_app",
    "load_or_create_ledger_signer",
    "load_or_create_token_key",
]

log = logging.getLogger("pchr.vault")


def load_or_create_token_key(path: Path | None) -> ed25519.Ed25519PrivateKey:
    """The Ed25519 key that signs access tokens, created (mode 0600) if the file does not exist.

    Several server processes (``pchr serve --workers N``) must share one key: the file is created exclusively,
    so processes starting together all end up reading the same key.
    """
    if path is None:
        return ed25519.Ed25519PrivateKey.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be between creating and writing the file
            raw = path.read_bytes()
            if len(raw) == 32:
                return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
            time.sleep(0.02)
        raise RuntimeError(f"token key file {path} is not a 32-byte Ed25519 key") from None
    key = ed25519.Ed25519PrivateKey.generate()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
    return key


def load_or_create_ledger_signer(path: Path | None, origin: str) -> Signer:
    """The operator's checkpoint signer, created (mode 0600) on first start like the token key."""
    if path is None:
        return Signer.generate(origin)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            text = path.read_text().strip()
            if text:
                signer = Signer.from_skey(text)
                if signer.name != origin:
                    raise RuntimeError(f"ledger key {path} is for {signer.name!r}, not the origin {origin!r}") from None
                return signer
            time.sleep(0.02)
        raise RuntimeError(f"ledger key file {path} is empty") from None
    signer = Signer.generate(origin)
    with os.fdopen(fd, "w") as handle:
        handle.write(signer.to_skey() + "\n")
    return signer


def build_ledger(settings: Settings) -> Ledger:
    """The consent ledger the settings describe: SQL tables in the vault's database (the embedded default), or the
    ConsentLedger contract on an EVM chain (``settings.ledger``), whose chain id and address are the EIP-712 domain."""
    signer = load_or_create_ledger_signer(settings.ledger_key_path, settings.ledger_origin)
    if settings.ledger != "sql":
        backend = build_evm_backend(settings)
        return Ledger(backend, signer, origin=settings.ledger_origin, domain=backend.domain)
    if int(settings.ledger_contract, 16):
        domain = Domain(chain_id=settings.ledger_chain_id, verifying_contract=settings.ledger_contract)
    else:  # the default: a domain of this ledger's own, bound to its operator's checkpoint key
        domain = sql_ledger_domain(signer.verifier.to_vkey(), chain_id=settings.ledger_chain_id)
    return Ledger(SqlLedgerBackend(settings.database_url), signer, origin=settings.ledger_origin, domain=domain)


def build_evm_backend(settings: Settings, *, deploy: bool = False) -> EvmLedgerBackend:
    """The EVM ledger backend ``settings.ledger`` names, attached to ``settings.ledger_contract`` (or, with
    ``deploy`` and no contract set, a new one). web3 is imported here only, and only for an EVM ledger."""
    from consent_chain.backends.evm import connect, load_operator_key

    key_path = settings.ledger_operator_key_path
    if key_path is None and settings.ledger.startswith("evm+http"):
        raise ValueError("an EVM ledger needs its operator's key: set PCHR_LEDGER_OPERATOR_KEY to its key file")
    contract = settings.ledger_contract if int(settings.ledger_contract, 16) else None
    key = load_operator_key(key_path) if key_path is not None else None
    return connect(settings.ledger, operator_key=key, contract=contract, deploy=deploy)


def app_from_env() -> FastAPI:
    """uvicorn factory for ``pchr serve --workers N``: every worker reads the same PCHR_* settings."""
    return create_app(Settings.from_env())


def build_scoring(settings: Settings) -> ScoringService | None:
    """The model service for ``settings.models`` (None when empty); trains missing models on first start."""
    if not settings.models:
        return None
    from models.registry import Registry
    from models.service import ScoringService

    return ScoringService.from_registry(Registry(), settings.models, max_sessions=settings.scoring_sessions)


def create_app(
    settings: Settings | None = None,
    *,
    vault: Vault | None = None,
    scoring: ScoringService | None = None,
    consent_keys: ConsentKeys | None = None,
) -> FastAPI:
    """The vault's FastAPI app. Pass ``vault`` (clock, rng, store), ``scoring`` or ``consent_keys`` to inject
    prepared ones (tests); otherwise the settings say how to build them.

    ``settings.public_url`` is required (ValueError without it): an app served in a thread binds its socket first
    to know it (:func:`ehr._serve.listen`); one driven by FastAPI's TestClient uses ``http://testserver``."""
    settings = settings or Settings.from_env()
    if settings.public_url is None:
        # The token endpoint checks client assertions' audience against it: taken from a request's Host header, a
        # caller could make an assertion signed for another server count here.
        raise ValueError(
            "the vault needs its public URL, the base URL clients use (PCHR_PUBLIC_URL, pchr serve --public-url, "
            "or Settings(public_url=...)): it is the token audience and is never taken from requests"
        )
    if scoring is None:
        scoring = build_scoring(settings)
    if scoring is not None and consent_keys is None:
        from ehr.zk_keys import load_or_create_consent_keys

        consent_keys = load_or_create_consent_keys(settings.zk_key_path)
    if vault is None:
        vault = Vault(
            Store(settings.database_url),
            token_key=load_or_create_token_key(settings.token_key_path),
            issuer=settings.issuer,
            ledger=build_ledger(settings),
        )
    if vault.ledger is None:
        raise ValueError("the vault needs a consent ledger")
    app = FastAPI(title="pchr vault", version="0.1.0", docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.vault = vault
    app.state.scoring = scoring
    app.state.consent_keys = consent_keys
    app.state.consents = ConsentService(
        vault, vault.ledger, model_catalogue=scoring.catalogue_of if scoring else lambda _: None
    )

    @app.exception_handler(OAuthError)
    async def oauth_error(_: Request, exc: OAuthError) -> Response:
        return JSONResponse(
            {"error": exc.error, "error_description": exc.message},
            status_code=exc.http_status,
            headers={"Cache-Control": "no-store"},
        )

    @app.exception_handler(VaultError)
    async def vault_error(_: Request, exc: VaultError) -> Response:
        headers = {"WWW-Authenticate": 'Bearer realm="pchr"'} if isinstance(exc, Unauthorized) else None
        return fhir_response(outcome_for(exc), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return fhir_response(operation_outcome("error", "invalid", f"malformed request: {where}"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        return fhir_response(operation_outcome("error", code, str(exc.detail)), exc.status_code)

    @app.exception_handler(ChainError)
    async def chain_unavailable(_: Request, exc: ChainError) -> Response:
        # The chain, not the request, failed: say so (503), and log the kind only.
        log.error("the consent ledger's chain failed: %s", type(exc).__name__)
        outcome = operation_outcome("error", "transient", "the consent ledger's chain is unavailable; try again")
        return fhir_response(outcome, 503, {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        # Log the type only: messages from deep layers could carry request data.
        log.error("unexpected %s while handling a request", type(exc).__name__)
        return fhir_response(operation_outcome("fatal", "exception", "internal error"), 500)

    app.include_router(auth_routes.router)
    app.include_router(ledger_routes.router)
    app.include_router(consent_routes.router)
    app.include_router(model_routes.router)
    app.include_router(zk_routes.router)
    app.include_router(fhir_routes.router)
    return app
