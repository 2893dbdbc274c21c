"""The uvicorn factory for the benchmark: ``uvicorn vault_app:create --factory --app-dir bench``.

The database URL, the public URL (where the driver serves it: the token audience) and the token-signing key
come from the environment the benchmark driver sets. The key file
matters with ``--workers 2``: without one each worker makes its own key (``Settings.token_key_path`` None), so a
token issued by one worker is refused by the other.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from ehr.api import create_app
from ehr.settings import Settings

__all__ = ["DATABASE_URL_ENV", "PUBLIC_URL_ENV", "SIGNING_KEY_ENV", "create"]

DATABASE_URL_ENV = "PCHR_BENCH_DATABASE_URL"
SIGNING_KEY_ENV = "PCHR_BENCH_SIGNING_KEY_FILE"
PUBLIC_URL_ENV = "PCHR_BENCH_PUBLIC_URL"


def create() -> FastAPI:
    return create_app(
        Settings(
            database_url=os.environ[DATABASE_URL_ENV],
            token_key_path=Path(os.environ[SIGNING_KEY_ENV]),
            public_url=os.environ[PUBLIC_URL_ENV],
        )
    )
