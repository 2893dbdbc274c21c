"""In-process throughput on one core: the sealing recipes, FHIR validation, and the vault's service layer.

The service-layer figures run the same code a request runs in the server (authenticate the bearer token, the
:class:`ehr.service.Vault` call on a SQLite file, the response object) without HTTP, so set against the server's
CPU time per request they show what the HTTP stack adds.

Each measurement is a loop timed with ``perf_counter``; its iteration count is calibrated once so that a run
takes about :data:`RUN_SECONDS`, and every run yields one operations-per-second sample.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workload import observation

from ehr.api.render import sealed_response, write_response
from ehr.client import DEFAULT_SCOPES
from ehr.crypto import SealContext, seal, unseal
from ehr.fhir import canonical_json, validate_resource
from ehr.identity import ActorKeys, Role
from ehr.service import Vault
from ehr.store import Store
from ehr.tokens import ASSERTION_TYPE, make_client_assertion

__all__ = ["RUN_SECONDS", "InprocResult", "measure_crypto", "measure_service"]

RUN_SECONDS = 0.4
RESOURCE_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
LAST_UPDATED = "2026-02-27T10:12:44.123456Z"


@dataclass(frozen=True)
class InprocResult:
    name: str
    samples: list[float]
    """Operations per second, one per run."""
    iterations: int
    """Operations per run."""


def _rate(op: Callable[[], Any], iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        op()
    return iterations / (time.perf_counter() - start)


def _measure(name: str, op: Callable[[], Any], runs: int) -> InprocResult:
    for _ in range(20):  # warm caches (model classes, OpenSSL contexts)
        op()
    probe = _rate(op, 50)
    iterations = max(50, int(probe * RUN_SECONDS))
    return InprocResult(name, [_rate(op, iterations) for _ in range(runs)], iterations)


def _as_stored(resource: dict[str, Any]) -> dict[str, Any]:
    """What the vault seals for a plain create: the validated resource with its id and version metadata."""
    resource["id"] = RESOURCE_ID
    resource["meta"] = {**resource.get("meta", {}), "versionId": "1", "lastUpdated": LAST_UPDATED}
    return resource


def measure_crypto(runs: int) -> tuple[int, list[InprocResult]]:
    """Returns the size of the sealed plaintext in bytes and one result per measurement."""
    patient = ActorKeys.generate(Role.PATIENT)
    public = patient.encryption.public_key()
    body = observation(patient.address)
    plaintext = canonical_json(_as_stored(validate_resource(body)))
    context = SealContext("Observation", RESOURCE_ID, "1", patient.address)
    sealed, wrapped = seal(plaintext, context, patient.address, public)

    def seal_only() -> object:
        return seal(plaintext, context, patient.address, public)

    def unseal_only() -> object:
        return unseal(sealed, wrapped, patient.encryption)

    def validate_only() -> object:
        return validate_resource(body)

    def validate_and_seal() -> object:
        data = canonical_json(_as_stored(validate_resource(body, expected_type="Observation")))
        return seal(data, context, patient.address, public)

    results = [
        _measure("seal", seal_only, runs),
        _measure("unseal", unseal_only, runs),
        _measure("validate + seal", validate_and_seal, runs),
        _measure("validate only", validate_only, runs),
    ]
    return len(plaintext), results


def measure_service(runs: int, workdir: Path) -> list[InprocResult]:
    """A sealed read and a plain (validated, sealed server-side) create through :class:`Vault`, without HTTP."""
    store = Store(f"sqlite:///{workdir / 'service.db'}")
    try:
        vault = Vault(store)
        patient = ActorKeys.generate(Role.PATIENT)
        vault.register(patient.public())
        audience = "http://vault.invalid/auth/token"
        grant = vault.issue_token(
            grant_type="client_credentials",
            assertion_type=ASSERTION_TYPE,
            assertion=make_client_assertion(patient, audience, now=datetime.now(UTC)),
            scope=DEFAULT_SCOPES[Role.PATIENT],
            audiences=(audience,),
        )
        authorization = f"Bearer {grant.access_token}"
        body = observation(patient.address)

        def create() -> Any:
            principal = vault.authenticate(authorization)
            return write_response(vault.create(principal, "Observation", dict(body)), "http://vault.invalid")

        ids = itertools.cycle(
            [vault.create(vault.authenticate(authorization), "Observation", body).resource_id for _ in range(500)]
        )

        def read() -> Any:
            principal = vault.authenticate(authorization)
            return sealed_response(vault.read(principal, "Observation", next(ids)))

        return [_measure("service: sealed read", read, runs), _measure("service: plain create", create, runs)]
    finally:
        store.close()
