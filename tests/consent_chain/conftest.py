"""EVM chains for the ledger tests: an in-process eth-tester chain per module, a Hardhat node per session.

Each chain deploys the ConsentLedger contract once and takes a snapshot of the chain with it empty;
:meth:`EvmChain.fresh` reverts to that snapshot (``evm_revert``, which eth-tester and Hardhat both serve) and
attaches a new backend, so every test starts from an empty ledger without paying for a deployment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from web3 import Web3

from consent_chain.backends.evm import EvmLedgerBackend, fund_from_node, http_web3, tester_web3
from ehr.identity import ActorKeys, Role
from tests.evm_node.hardhat import hardhat_node, node_missing


class EvmChain:
    """One chain, its operator account, and one deployed contract to reset between tests."""

    def __init__(self, w3: Web3, url: str | None = None) -> None:
        self.w3 = w3
        self.url = url  # the node's JSON-RPC URL (None for an in-process chain)
        operator = Account.create()
        self.operator_key = bytes(operator.key)
        fund_from_node(w3, operator.address)
        self.address = EvmLedgerBackend.deploy(w3, self.operator_key).address
        self._snapshot = w3.testing.snapshot()

    def fresh(self) -> EvmLedgerBackend:
        """A backend on the contract as deployed: empty."""
        self.w3.testing.revert(self._snapshot)
        self._snapshot = self.w3.testing.snapshot()  # Hardhat drops a snapshot once reverted to
        return EvmLedgerBackend(self.w3, self.address, operator_key=self.operator_key)

    def deploy(self) -> EvmLedgerBackend:
        """A backend on a contract of its own (another ledger on the same chain)."""
        return EvmLedgerBackend.deploy(self.w3, self.operator_key)


@pytest.fixture(scope="module")
def evm_chain() -> EvmChain:
    return EvmChain(tester_web3())


@pytest.fixture(scope="session")
def hardhat_chain() -> Iterator[EvmChain]:
    missing = node_missing()
    if missing is not None:
        pytest.fail(missing)
    with hardhat_node() as url:
        yield EvmChain(http_web3(url), url)


# The actors of the ledger suites (test_ledger, test_evm_ledger): fresh keys per module.
@pytest.fixture(scope="module")
def alice() -> ActorKeys:
    return ActorKeys.generate(Role.PATIENT)


@pytest.fixture(scope="module")
def bob() -> ActorKeys:
    return ActorKeys.generate(Role.PATIENT)


@pytest.fixture(scope="module")
def doctor() -> ActorKeys:
    return ActorKeys.generate(Role.CLINICIAN)
