"""The access policy's choice of the grant a shared key may be served under (pure: no vault, no store)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from ehr.policy import expired_grants, opening_grants, share_grant

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
OBSERVATION = 0b0110  # the catalogue bits that can match an Observation (say, labs and vital signs)


@dataclass(frozen=True)
class Terms:
    grant_id: bytes
    purpose: str = "TREAT"
    scope: int = 0b0010
    expiry: datetime = NOW + timedelta(days=1)
    revoked_at: datetime | None = None


A, B = Terms(b"a" * 32), Terms(b"b" * 32, scope=0b0100)


def test_a_key_is_served_only_under_a_grant_it_was_shared_under() -> None:
    assert share_grant([A.grant_id], [A, B], OBSERVATION, NOW) == A
    assert share_grant([B.grant_id, A.grant_id], [A, B], OBSERVATION, NOW) == B  # the first in share order
    assert share_grant([], [A, B], OBSERVATION, NOW) is None
    assert share_grant([A.grant_id], [B], OBSERVATION, NOW) is None  # another grant of the pair opens nothing


def test_an_ended_grant_opens_nothing_even_with_another_grant_active() -> None:
    expired = replace(A, expiry=NOW)
    revoked = replace(A, revoked_at=NOW - timedelta(seconds=1))
    for ended in (expired, revoked):
        assert share_grant([A.grant_id], [ended, B], OBSERVATION, NOW) is None
    assert expired_grants([expired, revoked, B], NOW) == [expired]


def test_a_grant_opens_only_the_types_and_purposes_it_names() -> None:
    assert opening_grants([A, B], 0b1000, NOW) == []  # a type neither scope covers
    scoring = replace(A, purpose="model:abc")  # a scoring grant opens no record
    assert share_grant([A.grant_id], [scoring], OBSERVATION, NOW) is None
    assert opening_grants([A, B], OBSERVATION, NOW - timedelta(days=1)) == [A, B]
