"""`pchr serve --workers 2` as a user runs it: tokens from one worker are honoured by the other."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ehr.client import VaultClient
from ehr.identity import ActorKeys, Role
from tests.conftest import observation
from tests.integration.vault_process import pchr_serve

pytestmark = pytest.mark.integration


def test_two_workers_share_the_token_key(tmp_path: Path) -> None:
    with pchr_serve(tmp_path, workers=2) as vault:
        base = vault.base
        keys = ActorKeys.generate(Role.PATIENT)
        with VaultClient.connect(base, keys) as client:
            client.register()
            created = client.create(observation(keys.address, 5.5))
            token = client.access_token()
        # Fresh connections spread over both workers; every one must accept the token.
        statuses = set()
        for _ in range(30):
            with httpx.Client(base_url=base) as fresh:
                statuses.add(
                    fresh.get(f"/Observation/{created['id']}", headers={"Authorization": f"Bearer {token}"}).status_code
                )
        assert statuses == {200}
        assert (tmp_path / "token.key").stat().st_mode & 0o777 == 0o600
