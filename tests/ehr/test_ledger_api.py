"""The ledger's HTTP API and the consent CLI: public proofs, parties-only paths, bad input, and the audit."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from consent_chain import merkle
from consent_chain.catalogue import read_catalogue
from consent_chain.eip712 import Domain, GrantMessage, sign, sql_ledger_domain
from consent_chain.entries import GrantEntry, KeyEntry
from consent_chain.errors import AppendRefused
from consent_chain.grants import Grant
from consent_chain.note import Verifier, verify_checkpoint
from consent_chain.state_tree import DEPTH, MerklePath, verify_path
from ehr._serve import listen, serve_in_thread
from ehr.api import create_app
from ehr.api.app import build_ledger
from ehr.cli import main
from ehr.client import VaultClient
from ehr.demo import synthetic_record
from ehr.identity import ActorKeys, Role
from ehr.ledger_audit import run_ledger_audit
from ehr.settings import Settings
from tests.conftest import Clock


def _b64(items: list[str]) -> list[bytes]:
    return [base64.b64decode(i) for i in items]


def test_public_ledger_api_serves_verifiable_proofs(
    http: TestClient, patient: VaultClient, clinician: VaultClient, clock: Clock
) -> None:
    patient.grant(clinician.address, ["laboratory"], expiry=clock.now + timedelta(days=1))
    verifier = Verifier.from_vkey(http.get("/ledger/key").text.strip())
    checkpoint = verify_checkpoint(http.get("/ledger/checkpoint").text, verifier)
    assert checkpoint.size == 3  # two KEY entries and one GRANT
    entries = _b64(http.get("/ledger/entries", params={"start": 0, "end": 3}).json()["entries"])
    for index, data in enumerate(entries):
        proof = _b64(http.get("/ledger/proof/inclusion", params={"index": index, "size": 3}).json()["proof"])
        merkle.verify_inclusion(merkle.hash_leaf(data), index, 3, proof, checkpoint.root_hash)
    old_root = merkle.root_from_leaves([merkle.hash_leaf(e) for e in entries[:2]])
    proof = _b64(http.get("/ledger/proof/consistency", params={"old": 2, "new": 3}).json()["proof"])
    merkle.verify_consistency(2, 3, old_root, checkpoint.root_hash, proof)
    assert http.get(f"/ledger/nonce/{patient.address}").json()["nonce"] == 1
    assert http.get("/ledger/domain").json()["chainId"] == 31337
    roots = http.get("/ledger/grant-roots").json()["roots"]
    assert roots[-1] == {"size": 3, "root": str(checkpoint.grant_root)}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/ledger/entries", {"start": 2, "end": 1}),
        ("/ledger/entries", {"start": 0, "end": 99}),
        ("/ledger/proof/inclusion", {"index": 5, "size": 2}),
        ("/ledger/proof/consistency", {"old": 3, "new": 2}),
        ("/ledger/proof/inclusion", {"index": "x", "size": 2}),
        ("/ledger/nonce/not-an-address", {}),
    ],
)
def test_bad_ledger_queries_are_400_outcomes(http: TestClient, patient: VaultClient, path: str, params: dict) -> None:
    response = http.get(path, params=params)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_membership_paths_go_to_the_grant_parties_only(
    http: TestClient, patient: VaultClient, clinician: VaultClient, other_patient: VaultClient, clock: Clock
) -> None:
    grant = patient.grant(clinician.address, ["laboratory"], expiry=clock.now + timedelta(days=1))
    path_url = f"/ledger/grants/{grant['grantId']}/path"
    commitment = Grant.from_json(grant["opening"]).commitment()
    for party in (patient, clinician):
        body = http.get(path_url, headers={"Authorization": f"Bearer {party.access_token()}"}).json()
        path = MerklePath.from_json(body)
        assert body["leafIndex"] == grant["leafIndex"]
        assert [len(level) for level in body["siblings"]] == [3] * DEPTH  # three siblings a level, decimal strings
        # The path leads from the grant's commitment (known to the parties) to the checkpointed root.
        assert verify_path(commitment, path, int(body["root"]))
        assert int(body["root"]) == verify_checkpoint(http.get("/ledger/checkpoint").text, _key(http)).grant_root
    stranger = http.get(path_url, headers={"Authorization": f"Bearer {other_patient.access_token()}"})
    assert stranger.status_code == 403
    assert http.get(path_url).status_code == 401
    # After revocation the leaf is zero: the old path no longer leads to the new root.
    clock.advance(seconds=30)
    patient.revoke(grant["grantId"])
    body = http.get(path_url, headers={"Authorization": f"Bearer {patient.access_token()}"}).json()
    assert not verify_path(commitment, MerklePath.from_json(body), int(body["root"]))


def _key(http: TestClient) -> Verifier:
    return Verifier.from_vkey(http.get("/ledger/key").text.strip())


def test_grant_with_a_forged_opening_is_refused(
    http: TestClient, patient: VaultClient, clinician: VaultClient, clock: Clock
) -> None:
    from consent_chain.catalogue import read_catalogue
    from consent_chain.eip712 import GrantMessage, sign
    from consent_chain.grants import Grant

    cat = read_catalogue()
    grant = Grant.new(
        patient.address, clinician.address, "TREAT", cat.mask(["laboratory"]), clock.now + timedelta(days=1), cat
    )
    message = GrantMessage(grant.grant_id, grant.commitment(), 0, int(clock.now.timestamp()))
    signature = sign(patient.keys, patient.ledger_domain(), message).hex()
    # The opening claims a wider scope than the commitment the patient signed.
    wider = {**grant.to_json(), "scope": format(cat.mask(["laboratory", "conditions"]), "016x")}
    response = http.post(
        "/consent/grants",
        json={"grant": wider, "nonce": 0, "issuedAt": message.issued_at, "signature": signature},
        headers={"Authorization": f"Bearer {patient.access_token()}"},
    )
    assert response.status_code == 403  # the ledger refuses: the signature is not over this commitment
    assert "bad-signature" in response.json()["issue"][0]["diagnostics"]
    assert http.get("/ledger/checkpoint").text.split("\n")[1] == "2"  # nothing appended


def test_cli_consent_access_log_erase_and_audit(tmp_path: Path) -> None:
    runner = CliRunner(env={"PCHR_PASSPHRASE": "a long test passphrase"})
    alice, clinic = tmp_path / "alice.key", tmp_path / "clinic.key"
    runner.invoke(main, ["keys", "new", "--role", "patient", "--out", str(alice)])
    out = runner.invoke(main, ["keys", "new", "--role", "clinician", "--out", str(clinic)]).output
    clinic_address = out.split()[1]
    record = tmp_path / "record.json"
    record.write_text(json.dumps(synthetic_record(seed=9)))
    listener = listen()
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/vault.db", public_url=listener.url))
    state = tmp_path / "audit.json"
    with serve_in_thread(app, listener=listener) as url:
        common = ["--vault", url]
        for key in (alice, clinic):
            assert runner.invoke(main, ["keys", "register", *common, "--keyfile", str(key)]).exit_code == 0
        assert runner.invoke(main, ["upload", str(record), *common, "--keyfile", str(alice)]).exit_code == 0

        granted = runner.invoke(
            main,
            [
                "consent",
                "grant",
                clinic_address,
                "--scope",
                "laboratory",
                "--days",
                "7",
                *common,
                "--keyfile",
                str(alice),
            ],
        )
        assert granted.exit_code == 0, granted.output
        grant_id = granted.output.split("grant id")[1].split()[0]
        assert "re-wrapped for the grantee" in granted.output

        listing = runner.invoke(main, ["consent", "list", *common, "--keyfile", str(clinic)])
        assert "laboratory" in listing.output
        assert clinic_address in listing.output

        reads = runner.invoke(
            main, ["read", "Observation", "--patient", _address(alice), *common, "--keyfile", str(clinic)]
        )
        assert reads.exit_code == 0, reads.output
        log = runner.invoke(main, ["access-log", *common, "--keyfile", str(alice)])
        assert clinic_address in log.output

        first = runner.invoke(main, ["audit", "ledger", *common, "--state", str(state)])
        assert first.exit_code == 0, first.output
        assert "audit clean" in first.output

        revoked = runner.invoke(main, ["consent", "revoke", grant_id, *common, "--keyfile", str(alice)])
        assert revoked.exit_code == 0, revoked.output
        refused = runner.invoke(
            main, ["read", "Observation", "--patient", _address(alice), *common, "--keyfile", str(clinic)]
        )
        assert refused.exit_code != 0
        assert "403" in refused.output

        second = runner.invoke(main, ["audit", "ledger", *common, "--state", str(state)])
        assert second.exit_code == 0, second.output
        assert "consistent with the checkpoint seen before" in second.output

        one = httpx.get(f"{url}/metadata").json()
        assert one["resourceType"] == "CapabilityStatement"

    # The same state file against a different ledger (another history, another key): refused.
    listener = listen()
    other = create_app(Settings(database_url=f"sqlite:///{tmp_path}/other.db", public_url=listener.url))
    with serve_in_thread(other, listener=listener) as url:
        refused_audit = runner.invoke(main, ["audit", "ledger", "--vault", url, "--state", str(state)])
        assert refused_audit.exit_code == 1
        assert "BAD CHECKPOINT" in refused_audit.output


def test_audit_detects_a_fork_served_by_the_same_key(tmp_path: Path) -> None:
    """An operator that shows an auditor two different histories under one key is caught on the second visit."""
    key = tmp_path / "ledger.key"
    listener = listen()
    first = create_app(
        Settings(database_url=f"sqlite:///{tmp_path}/a.db", ledger_key_path=key, public_url=listener.url)
    )
    state = tmp_path / "audit.json"
    lines: list[str] = []
    with serve_in_thread(first, listener=listener) as url:
        for _ in range(3):
            with VaultClient.connect(url, _fresh_patient()) as client:
                client.register()
        assert run_ledger_audit(url, state, None, echo=lines.append) == 0
    listener = listen()
    forked = create_app(
        Settings(database_url=f"sqlite:///{tmp_path}/b.db", ledger_key_path=key, public_url=listener.url)
    )
    with serve_in_thread(forked, listener=listener) as url:
        for _ in range(4):
            with VaultClient.connect(url, _fresh_patient()) as client:
                client.register()
        lines.clear()
        assert run_ledger_audit(url, state, None, echo=lines.append) == 1
    assert any(line.startswith("FORK") for line in lines)


def test_the_audit_pins_the_domain_and_names_an_entry_the_rules_refuse(tmp_path: Path) -> None:
    """An operator writes a GRANT its patient never signed straight into its database: the log and its checkpoints
    stay consistent, and the audit, replaying the append rules in the domain it pinned, names the entry."""
    listener = listen()
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/vault.db", public_url=listener.url))
    state = tmp_path / "audit.json"
    lines: list[str] = []
    patient = _fresh_patient()
    with serve_in_thread(app, listener=listener) as url:
        with VaultClient.connect(url, patient) as client:
            client.register()
        assert run_ledger_audit(url, state, None, echo=lines.append) == 0
        ledger = app.state.consents.ledger
        assert any(line.startswith("pinning the ledger's EIP-712 domain on first use") for line in lines)
        assert "  (derived from the pinned operator key: this ledger's own, no other ledger signs in it)" in lines
        assert any(line.startswith("every entry follows the append rules, replayed") for line in lines)
        assert Domain.from_json(json.loads(state.read_text())["domain"]) == ledger.domain

        # The vault now serves another domain: the auditor keeps the one it pinned (no patient signed in this one).
        honest = ledger.domain
        ledger.domain = dataclasses.replace(honest, chain_id=1)
        assert Domain.from_json(httpx.get(f"{url}/ledger/domain").json()) != honest
        lines.clear()
        assert run_ledger_audit(url, state, None, echo=lines.append) == 0
        assert not any("pinning" in line for line in lines)

        now = int(time.time())
        forged = GrantEntry(bytes(range(32)), patient.address, 12345, 0, now, b"\x11" * 64 + b"\x1b")
        ledger.backend.append([forged], lambda view, entry: dataclasses.replace(entry, time=now))
        lines.clear()
        assert run_ledger_audit(url, state, None, echo=lines.append) == 1
    assert [line for line in lines if line.startswith("PROBLEM: entry")] == [
        "PROBLEM: entry 1 (GRANT): bad-signature: signature is malformed: signature does not recover to any key"
    ]
    assert "audit clean" not in lines
    assert not any(line.startswith("every entry follows the append rules") for line in lines)


def _fresh_patient():
    return ActorKeys.generate(Role.PATIENT)


def _address(keyfile: Path) -> str:
    return json.loads(keyfile.read_text())["address"]


def test_a_grant_signed_for_one_vault_s_ledger_is_refused_by_another_s(tmp_path: Path) -> None:
    """Two SQL vaults with their own operator keys have their own EIP-712 domains: what a patient signed for one
    (a grant, a revocation) does not verify on the other, so neither operator can replay it."""
    a, b = (
        build_ledger(Settings(database_url=f"sqlite:///{tmp_path}/{n}.db", ledger_key_path=tmp_path / f"{n}.key"))
        for n in ("a", "b")
    )
    assert a.domain != b.domain
    for ledger in (a, b):
        assert ledger.domain == sql_ledger_domain(ledger.signer.verifier.to_vkey(), chain_id=31337)
    patient, clinician = ActorKeys.generate(Role.PATIENT), ActorKeys.generate(Role.CLINICIAN)
    keys = [KeyEntry(k.address, k.role, k.x25519_public, k.public().binding_signature) for k in (patient, clinician)]
    for ledger in (a, b):
        ledger.append(keys)
    catalogue = read_catalogue()
    grant = Grant.new(patient.address, clinician.address, "TREAT", catalogue.mask(["laboratory"]),
                      datetime.now(UTC) + timedelta(days=1), catalogue)  # fmt: skip
    message = GrantMessage(grant.grant_id, grant.commitment(), 0, int(datetime.now(UTC).timestamp()))
    entry = GrantEntry(grant.grant_id, patient.address, grant.commitment(), 0, message.issued_at,
                       sign(patient, a.domain, message))  # fmt: skip
    assert a.append([entry])[0].index == 2
    with pytest.raises(AppendRefused) as refused:
        b.append([entry])
    assert refused.value.reason == "bad-signature"
    assert b.size() == 2
