"""The SQL backend's grant-tree sync rewrites the nodes it changes, in chunks, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

import consent_chain.backends.sql as sql_backend
from consent_chain.backends.sql import SqlLedgerBackend
from consent_chain.catalogue import read_catalogue
from consent_chain.eip712 import Domain, GrantMessage, RevokeMessage, sign
from consent_chain.entries import GrantEntry, KeyEntry, RevokeEntry
from consent_chain.errors import LedgerError
from consent_chain.grants import Grant
from consent_chain.ledger import Ledger
from consent_chain.note import Signer
from consent_chain.state_tree import GrantTree
from ehr.identity import ActorKeys, Role

DOMAIN = Domain(chain_id=31337)
CATALOGUE = read_catalogue()


def test_syncs_that_replace_nodes_in_several_chunks_keep_the_root(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_backend, "_DELETE_CHUNK", 3)  # so that every sync below deletes in several chunks
    patient, doctor = ActorKeys.generate(Role.PATIENT), ActorKeys.generate(Role.CLINICIAN)
    backend = SqlLedgerBackend(database_url)
    ledger = Ledger(backend, Signer.generate("pchr.test/sync"), origin="pchr.test/sync", domain=DOMAIN)
    ledger.append(
        [KeyEntry(k.address, k.role, k.x25519_public, k.public().binding_signature) for k in (patient, doctor)]
    )
    issued, nonce = int(time.time()), 0
    replay, leaves, grant_ids = GrantTree(), [], []
    for round_ in range(3):
        batch = []
        for _ in range(4):
            grant = Grant.new(
                patient.address, doctor.address, "TREAT", CATALOGUE.mask(["laboratory"]),
                datetime.now(UTC) + timedelta(days=1), CATALOGUE,
            )  # fmt: skip
            message = GrantMessage(grant.grant_id, grant.commitment(), nonce, issued)
            batch.append(
                GrantEntry(
                    grant.grant_id, patient.address, grant.commitment(), nonce, issued, sign(patient, DOMAIN, message)
                )
            )
            leaves.append(replay.append(grant.commitment()))
            grant_ids.append(grant.grant_id)
            nonce += 1
        if round_:  # revoke one grant of the round before: its leaf and every node above it are rewritten
            revoked = 4 * (round_ - 1) + 1
            message_r = RevokeMessage(grant_ids[revoked], nonce, issued)
            signature = sign(patient, DOMAIN, message_r)
            batch.append(RevokeEntry(grant_ids[revoked], patient.address, nonce, issued, signature))
            replay.revoke(leaves[revoked])
            nonce += 1
        ledger.append(batch)
        assert ledger.grant_root() == replay.root
    # A fresh backend reads the stored nodes, not this one's cache: the tree on disk is the replayed one.
    fresh = SqlLedgerBackend(database_url)
    size, root, path = fresh.grant_path(0)
    assert (size, root) == (ledger.size(), replay.root)
    assert path == replay.path(0)
    fresh.engine.dispose()
    backend.engine.dispose()


def test_a_ledger_whose_grant_tree_an_earlier_pchr_wrote_is_refused(database_url: str) -> None:
    backend = SqlLedgerBackend(database_url)
    # pchr before the 4-ary grant tree kept a binary tree of depth 20: its root sits at level 20, which a tree of
    # depth 10 never writes. Extending such a tree would mix the two shapes into roots nobody can reproduce.
    with backend.engine.begin() as conn:
        conn.execute(insert(sql_backend.GrantNodeRow.__table__), {"level": 20, "idx": 0, "value": bytes(31) + b"\1"})
    with pytest.raises(LedgerError, match=r"written by an earlier pchr \(a binary tree of depth 20\).*cannot extend"):
        SqlLedgerBackend(database_url)
