"""Shared fixtures: a vault with an injectable clock, and registered actors.

The vault's database (``database_url``) is a temporary SQLite file, and also, when ``PCHR_TEST_POSTGRES_URL``
names a PostgreSQL server (``.ci/run`` always does), a fresh PostgreSQL database: every test that uses the store,
the SQL ledger, the vault or its HTTP API runs once on each (ids ``[sqlite]`` and ``[postgresql]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent_chain.backends.sql import SqlLedgerBackend
from consent_chain.ledger import Ledger
from consent_chain.note import Signer
from ehr.api import create_app
from ehr.client import VaultClient
from ehr.identity import ActorKeys, Role
from ehr.service import Vault
from ehr.settings import Settings
from ehr.store import Store
from tests.storage.databases import DATABASES, NO_POSTGRES, POSTGRES_URL, fresh_postgres_database, select_databases


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only: run on the SQLite database alone (it reads the file itself, or costs seconds and is not "
        "about storage)",
    )
    config.addinivalue_line("markers", "postgres_only: run on the PostgreSQL database alone (reads the server itself)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, deselected = select_databases(items)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


class Clock:
    """A settable clock: tests move time explicitly (token expiry, _lastUpdated)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vault.db"


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, db_path: Path) -> Iterator[str]:
    """The database the vault and the SQL ledger share in a test: empty, and gone after it."""
    if request.param == "sqlite":
        yield f"sqlite:///{db_path}"
        return
    if POSTGRES_URL is None:
        pytest.skip(NO_POSTGRES)
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.close()


@pytest.fixture
def ledger(database_url: str, clock: Clock) -> Iterator[Ledger]:
    signer = Signer.generate("pchr.test/consent-ledger")
    backend = SqlLedgerBackend(database_url)
    yield Ledger(backend, signer, origin=signer.name, clock=clock)
    backend.engine.dispose()


@pytest.fixture
def vault(store: Store, clock: Clock, ledger: Ledger) -> Vault:
    return Vault(store, clock=clock, ledger=ledger)


TESTSERVER = "http://testserver"
"""The base URL of FastAPI's TestClient: the public URL of every vault the ``http`` fixture serves."""


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, max_body_bytes=256 * 1024, public_url=TESTSERVER)


@pytest.fixture
def http(settings: Settings, vault: Vault) -> Iterator[TestClient]:
    with TestClient(create_app(settings, vault=vault)) as client:
        yield client


@pytest.fixture(scope="session")
def patient_keys() -> ActorKeys:
    return ActorKeys.generate(Role.PATIENT)


@pytest.fixture(scope="session")
def other_patient_keys() -> ActorKeys:
    return ActorKeys.generate(Role.PATIENT)


@pytest.fixture(scope="session")
def clinician_keys() -> ActorKeys:
    return ActorKeys.generate(Role.CLINICIAN)


def _registered(http: TestClient, keys: ActorKeys, clock: Clock) -> VaultClient:
    client = VaultClient(http, keys, clock=clock)
    client.register()
    return client


@pytest.fixture
def patient(http: TestClient, patient_keys: ActorKeys, clock: Clock) -> VaultClient:
    return _registered(http, patient_keys, clock)


@pytest.fixture
def other_patient(http: TestClient, other_patient_keys: ActorKeys, clock: Clock) -> VaultClient:
    return _registered(http, other_patient_keys, clock)


@pytest.fixture
def clinician(http: TestClient, clinician_keys: ActorKeys, clock: Clock) -> VaultClient:
    return _registered(http, clinician_keys, clock)


def observation(patient: str, value: float = 7.1, code: str = "2339-0", text: str = "Glucose") -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": text}], "text": text},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-02-27T08:30:00Z",
        "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    }
