"""The EVM ledger as a user selects it: ``pchr serve --ledger evm+http://...`` on a Hardhat node, and
``pchr demo --ledger evm`` on an in-process chain."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from consent_chain import merkle
from consent_chain.backends.evm import EvmLedgerBackend, fund_from_node
from consent_chain.backends.sql import SqlLedgerBackend
from consent_chain.entries import EntryType
from consent_chain.note import Verifier, verify_checkpoint
from ehr.api.app import build_ledger
from ehr.client import VaultClient, VaultClientError
from ehr.demo import run_demo
from ehr.identity import ActorKeys, Role
from ehr.settings import Settings
from tests.consent_chain.conftest import EvmChain
from tests.integration.vault_process import wait_until_serving


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # two uvicorn workers take 20-30 s to start on the shared two cores
@pytest.mark.integration
def test_serve_with_two_workers_keeps_the_ledger_on_the_chain(hardhat_chain: EvmChain, tmp_path: Path) -> None:
    assert hardhat_chain.url is not None
    operator = Account.create()
    fund_from_node(hardhat_chain.w3, operator.address)
    key_file = tmp_path / "operator.key"
    key_file.write_text(operator.key.hex() + "\n")
    port = _free_port()
    pchr = Path(sys.executable).with_name("pchr")
    env = {
        **os.environ,
        "PCHR_TOKEN_KEY": str(tmp_path / "token.key"),
        "PCHR_LEDGER_KEY": str(tmp_path / "ledger.key"),
        "PCHR_LEDGER_OPERATOR_KEY": str(key_file),
        "PCHR_MODELS": "",
    }
    env.pop("PCHR_LEDGER_CONTRACT", None)
    command = [str(pchr), "serve", "--workers", "2", "--port", str(port), "--database-url", f"sqlite:///{tmp_path}/v.db"]
    server = subprocess.Popen(
        [*command, "--ledger", f"evm+{hardhat_chain.url}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert server.stdout is not None
        announced = server.stdout.readline()
        found = re.search(r"contract (0x[0-9a-fA-F]{40}) on chain 31337, 0 entries \(deployed now", announced)
        assert found, announced
        address = found.group(1)
        wait_until_serving(base, server, seconds=60)
        domain = httpx.get(f"{base}/ledger/domain").json()
        assert (domain["chainId"], domain["verifyingContract"]) == (31337, address)
        patient, doctor = ActorKeys.generate(Role.PATIENT), ActorKeys.generate(Role.CLINICIAN)
        with VaultClient.connect(base, patient) as alice, VaultClient.connect(base, doctor) as clinic:
            alice.register()
            clinic.register()
            expiry = datetime.now(UTC) + timedelta(days=7)
            grants = [alice.grant(doctor.address, ["laboratory"], expiry=expiry) for _ in range(3)]
            alice.revoke(grants[0]["grantId"])
        verifier = Verifier.from_vkey(httpx.get(f"{base}/ledger/key").text.strip())
        checkpoint = verify_checkpoint(httpx.get(f"{base}/ledger/checkpoint").text, verifier)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout:
            server.stdout.close()
    # Whatever worker served each request, every entry is on the chain, in one log, as the vault signed it.
    replica = EvmLedgerBackend(hardhat_chain.w3, address)
    entries = replica.entry_bytes(0, replica.size())
    assert [e[0] for e in entries] == [EntryType.KEY] * 2 + [EntryType.GRANT] * 3 + [EntryType.REVOKE]
    assert (checkpoint.size, checkpoint.root_hash) == (6, merkle.root(6, replica.node))
    assert checkpoint.grant_root == replica.sync()[1]


def test_the_ledger_setting_selects_the_backend(tmp_path: Path) -> None:
    settings = Settings.from_env({"PCHR_LEDGER": "evm+tester"})
    assert (settings.ledger, settings.ledger_operator_key_path) == ("evm+tester", None)
    ledger = build_ledger(settings)
    assert isinstance(ledger.backend, EvmLedgerBackend)
    assert ledger.domain == ledger.backend.domain
    assert ledger.domain.verifying_contract == ledger.backend.address
    assert isinstance(build_ledger(Settings(database_url=f"sqlite:///{tmp_path}/v.db")).backend, SqlLedgerBackend)
    over_http = Settings(ledger="evm+http://127.0.0.1:9")
    with pytest.raises(ValueError, match="PCHR_LEDGER_OPERATOR_KEY"):
        build_ledger(over_http)
    key_file = tmp_path / "operator.key"
    key_file.write_text("0x" + "ab" * 31 + "\n")
    with pytest.raises(ValueError, match="64 hex digits"):
        build_ledger(dataclasses.replace(over_http, ledger_operator_key_path=key_file))
    key_file.write_text("0x" + "ab" * 32 + "\n")
    with pytest.raises(ValueError, match="no ledger contract address"):
        build_ledger(dataclasses.replace(over_http, ledger_operator_key_path=key_file))
    with pytest.raises(ValueError, match="not an EVM ledger"):
        build_ledger(Settings(ledger="evm+ws://127.0.0.1:9"))


@pytest.mark.slow
def test_the_demo_runs_on_an_evm_ledger(tmp_path: Path) -> None:
    lines: list[str] = []
    status = run_demo(tmp_path / "demo", echo=lines.append, ledger="evm")
    text = "\n".join(lines)
    assert status == 0, text
    assert "consent ledger: the ConsentLedger contract (Vyper, compiled from source) at 0x" in text
    assert "audit clean" in text
    # Every entry of the flow, the ATTEST of the encrypted score included, is on the chain and audits clean.
    assert "(1 ATTEST, 3 GRANT, 2 KEY, 3 REVOKE)" in text
    assert "attestations audit clean" in text
    assert re.search(r"read-only replica: 9 entries, the same log and grant root: yes", text)
    assert "Done:" in text


@pytest.mark.integration
def test_a_chain_that_goes_away_is_a_503_not_a_500(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from consent_chain.backends.evm import http_web3
    from ehr.api import create_app
    from tests.evm_node.hardhat import hardhat_node

    with hardhat_node() as url:
        operator = Account.create()
        w3 = http_web3(url)
        fund_from_node(w3, operator.address)
        key_file = tmp_path / "operator.key"
        key_file.write_text(operator.key.hex() + "\n")
        backend = EvmLedgerBackend.deploy(w3, bytes(operator.key))
        settings = Settings(
            database_url=f"sqlite:///{tmp_path}/v.db",
            ledger=f"evm+{url}",
            ledger_operator_key_path=key_file,
            ledger_contract=backend.address,
            public_url="http://testserver",
        )
        http = TestClient(create_app(settings), raise_server_exceptions=False)
        VaultClient(http, ActorKeys.generate(Role.PATIENT)).register()  # a KEY entry, on the chain
    # The node is gone: the next entry cannot be appended, and the caller is told to come back later.
    with pytest.raises(VaultClientError) as refused:
        VaultClient(http, ActorKeys.generate(Role.PATIENT)).register()
    assert refused.value.status == 503
    assert "chain is unavailable" in refused.value.message
