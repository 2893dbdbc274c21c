"""The EVM ledger backend: the consent ledger in the ConsentLedger contract (Vyper), over any web3 provider.

The only consent_chain module that imports web3. The contract (``consent_chain/contracts/ConsentLedger.vy``,
compiled from source by the pinned ``vyper`` on first use) is the ledger: it checks every entry's signature and
the append rules itself, and publishes each entry as an event. This backend

1. **appends** a batch in one transaction: it runs the same rules (:func:`consent_chain.rules.check_state`)
   against its mirror first, so that a refusal names the same reason as on the SQL backend without spending
   gas (a refusal stands only once the mirror has caught up with the chain), then sends ``append(time)`` with
   the entries packed in the calldata (:mod:`._evm_codec`), waits for the receipt and checks its status
   (eth-tester does not raise on a revert when gas is given). A revert is replayed with ``eth_call`` on the state
   before its block to read the contract's reason, one of :attr:`AppendRefused.REASONS`: what an entry that
   another process made invalid meanwhile gets. The mirror then takes the entries from the receipt's events;
2. **mirrors** the log from the contract's events (``eth_getLogs``): the entries' canonical bytes, the RFC 9162
   subtree hashes they complete, the state the rules read and the Poseidon grant tree, synced lazily with its
   root history, exactly as :class:`~consent_chain.backends.sql.SqlLedgerBackend` does. Every read first asks
   the node for its block number and catches up when it moved, then checks the mirror's size against the
   contract's ``size()`` at that block, so a node that leaves logs out is caught.

Over HTTP, the hot calls (block number, sending, receipts, logs) are raw JSON-RPC read here (:class:`_Node`);
everything else, and every call to another provider, goes through web3.

Nodes: the in-process eth-tester chain (py-evm; :func:`tester_web3`) for tests and demos, or any JSON-RPC node
(:func:`http_web3`): Hardhat, Hyperledger Besu, any EVM network. The mirror trusts that a block it has read stays
(a chain with immediate finality: Besu's QBFT or IBFT 2.0, a dev node's automine); if the log it reads
contradicts what it already holds, it raises :class:`ChainError` rather than guess. Transactions are signed here
with the operator's key (a local account), so the node needs no unlocked accounts.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.rpc import HTTPProvider
from web3.types import Wei

from consent_chain import merkle
from consent_chain.backends._evm_codec import (
    ENTRY_TOPICS,
    LoggedEntry,
    append_calldata,
    decode_event,
    decode_revert_reason,
)
from consent_chain.eip712 import Domain
from consent_chain.entries import AttestEntry, Entry, GrantEntry, KeyEntry, RevokeEntry
from consent_chain.errors import AppendRefused, ChainError, LedgerError
from consent_chain.ledger import Appended
from consent_chain.rules import GrantRecord, LedgerView
from consent_chain.state_tree import GrantTree, MerklePath

__all__ = [
    "CONTRACT_SOURCE",
    "CompiledContract",
    "EvmLedgerBackend",
    "Log",
    "Receipt",
    "compile_contract",
    "connect",
    "fund_from_node",
    "http_web3",
    "load_operator_key",
    "tester_web3",
]

CONTRACT_SOURCE = Path(__file__).resolve().parent.parent / "contracts" / "ConsentLedger.vy"

# The gas limit of an append: a bound from the entries' kinds (measured, with cold storage: a GRANT in a batch
# about 38,000 of gas, a REVOKE 24,000, a KEY up to 100,000, most of it rebuilding the binding's EIP-191 text; a
# transaction's own cost and the head's update about 35,000). Only the gas used is paid, so the bound only has to
# be above it; when it is above what one transaction may use (the block's gas limit, and 2^24 since EIP-7825),
# the node's eth_estimateGas decides.
_GAS_BASE = 60_000
_GAS_PER = {KeyEntry: 130_000, GrantEntry: 55_000, RevokeEntry: 40_000, AttestEntry: 30_000}
_GAS_PER_BYTE = 24  # calldata (16) and the event's copy of an ATTEST proof (8)
_TX_GAS_CAP = 1 << 24  # EIP-7825
_FEE_TTL = 30.0  # seconds a fee quote is reused
_SEND_ATTEMPTS = 5
_ERROR_DATA = re.compile(r"0x08c379a0[0-9a-fA-F]*")  # Error(string) revert data, wherever the node puts it
_REVERTED = re.compile(r"(?:execution reverted:?\s*|reverted with reason string ')([a-z-]+)")


# -- the contract -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompiledContract:
    """The contract as vyper compiles it from :data:`CONTRACT_SOURCE`."""

    abi: list[dict[str, Any]]
    bytecode: bytes  # initcode; the constructor's argument (the operator) is appended to it
    runtime: bytes  # the deployed code, before the immutables vyper appends at deployment


@lru_cache(maxsize=1)
def compile_contract() -> CompiledContract:
    """Compile the contract from source with the pinned vyper (a few seconds; once per process)."""
    import vyper

    out = vyper.compile_code(
        CONTRACT_SOURCE.read_text(),
        contract_path=str(CONTRACT_SOURCE),
        output_formats=["abi", "bytecode", "bytecode_runtime"],
    )
    return CompiledContract(
        abi=out["abi"],
        bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")),
        runtime=bytes.fromhex(out["bytecode_runtime"].removeprefix("0x")),
    )


# -- nodes ------------------------------------------------------------------------------------------------------
def tester_web3() -> Web3:
    """A fresh in-process chain (eth-tester on py-evm) with prefunded, unlocked accounts; one per call."""
    return Web3(EthereumTesterProvider())


def http_web3(url: str, *, timeout: float = 30.0) -> Web3:
    """A JSON-RPC node over HTTP(S)."""
    return Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))


def fund_from_node(w3: Web3, address: str, wei: int = 10**20) -> None:
    """Send ether to ``address`` from the node's first unlocked account: development chains only (eth-tester,
    a Hardhat node), whose accounts are prefunded; a production node has no unlocked account."""
    accounts = w3.eth.accounts
    if not accounts:
        raise ChainError("the node has no unlocked account to fund the operator from: fund it yourself")
    tx = w3.eth.send_transaction({"from": accounts[0], "to": Web3.to_checksum_address(address), "value": Wei(wei)})
    if w3.eth.wait_for_transaction_receipt(tx)["status"] != 1:
        raise ChainError("funding the operator account failed")


def load_operator_key(path: Path) -> bytes:
    """The operator account's secp256k1 key from a file holding it in hex (``0x`` and 64 digits, as Hardhat and
    most wallets export it)."""
    text = path.read_text().strip().removeprefix("0x")
    if len(text) != 64:
        raise ValueError(f"{path} does not hold a secp256k1 key as 64 hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path} does not hold a secp256k1 key as 64 hex digits") from None


def connect(
    ledger: str,
    *,
    operator_key: bytes | None = None,
    contract: str | None = None,
    deploy: bool = False,
) -> EvmLedgerBackend:
    """The backend a ``ledger`` setting names: ``evm+tester`` or ``evm+http(s)://host:port``.

    ``evm+tester`` starts a fresh in-process chain and deploys a new contract on it (the operator's key is made
    and funded there when none is given). Over HTTP, the backend attaches to ``contract``; with ``deploy`` and
    no contract, it deploys a new one from the operator's account.
    """
    if ledger == "evm+tester":
        if contract is not None:
            raise ValueError("an in-process chain starts empty: it has no contract to attach to")
        w3 = tester_web3()
        operator = Account.from_key(operator_key) if operator_key is not None else Account.create()
        fund_from_node(w3, operator.address)
        return EvmLedgerBackend.deploy(w3, operator.key)
    if ledger.startswith(("evm+http://", "evm+https://")):
        w3 = http_web3(ledger.removeprefix("evm+"))
        if contract is not None:
            return EvmLedgerBackend(w3, contract, operator_key=operator_key)
        if not deploy:
            raise ValueError("no ledger contract address: attach to one, or deploy a new one")
        if operator_key is None:
            raise ValueError("deploying the ledger contract needs the operator's key")
        return EvmLedgerBackend.deploy(w3, operator_key)
    raise ValueError(f"not an EVM ledger: {ledger!r} (evm+tester, evm+http://host:port or evm+https://...)")


# -- the mirror of the contract's log ---------------------------------------------------------------------------
class _Mirror:
    """Everything the contract's events say, folded in log order; the grant tree is synced lazily."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.keys: dict[str, KeyEntry] = {}
        self.nonces: dict[str, int] = {}
        self.grants: dict[bytes, GrantRecord] = {}
        self.attestations: dict[int, int] = {}  # request hash -> its first ATTEST entry
        self.last_time = 0
        self.tree = GrantTree()
        self.tree_size = 0  # the log size the grant tree reflects
        self.new_leaves: list[int] = []  # commitments of the GRANTs since tree_size
        self.revoked_leaves: list[int] = []  # leaves revoked since tree_size
        self.roots: list[tuple[int, int]] = []

    @property
    def size(self) -> int:
        return len(self.entries)

    def apply(self, logged: LoggedEntry) -> Appended | None:
        """Fold one logged entry in; None if the mirror already holds it (the same bytes at that index)."""
        data = logged.entry.to_bytes()
        if logged.index < self.size:
            if self.entries[logged.index] != data:
                raise ChainError(f"the chain's log entry {logged.index} differs from the one read before (a reorg?)")
            return None
        if logged.index > self.size:
            raise ChainError(f"the chain's log skips from entry {self.size} to {logged.index}")
        index, entry = logged.index, logged.entry
        if isinstance(entry, RevokeEntry) and entry.grant_id not in self.grants:
            raise ChainError(f"the chain's log entry {index} revokes a grant that the log does not hold")
        fresh = merkle.new_nodes(index, merkle.hash_leaf(data), lambda lv, ix: self.nodes[(lv, ix)])
        self.nodes.update(((lv, ix), h) for lv, ix, h in fresh)
        self.entries.append(data)
        self.last_time = entry.time
        leaf_index = None
        if isinstance(entry, KeyEntry):
            self.keys[entry.actor] = entry
        elif isinstance(entry, GrantEntry):
            self.nonces[entry.patient] = entry.nonce + 1
            leaf_index = self.tree.size + len(self.new_leaves)
            self.grants[entry.grant_id] = GrantRecord(entry.grant_id, entry.patient, leaf_index, index, False)
            self.new_leaves.append(entry.commitment)
        elif isinstance(entry, RevokeEntry):
            self.nonces[entry.patient] = entry.nonce + 1
            record = self.grants[entry.grant_id]
            self.grants[entry.grant_id] = replace(record, revoked=True)
            self.revoked_leaves.append(record.leaf_index)
        elif isinstance(entry, AttestEntry):
            self.attestations.setdefault(entry.request_hash, index)
        return Appended(index, entry, leaf_index)

    def sync(self) -> int:
        """Bring the grant tree up to the log's size; the root at that size (recorded when it is new)."""
        size = self.size
        if self.tree_size == size:
            if self.roots and self.roots[-1][0] == size:
                return self.roots[-1][1]
            return self.tree.root
        self.tree.advance(self.new_leaves, self.revoked_leaves)
        self.new_leaves, self.revoked_leaves = [], []
        self.tree_size = size
        root = self.tree.root
        self.roots.append((size, root))
        return root


class _View:
    """The state the append rules read: the mirror, overlaid with what the batch has appended so far."""

    def __init__(self, mirror: _Mirror) -> None:
        self._m = mirror
        self._size = mirror.size
        self._last_time = mirror.last_time
        self._keys: dict[str, KeyEntry] = {}
        self._nonces: dict[str, int] = {}
        self._grants: dict[bytes, GrantRecord] = {}
        self._leaves = mirror.tree.size + len(mirror.new_leaves)

    def actor_key(self, address: str) -> KeyEntry | None:
        return self._keys.get(address) or self._m.keys.get(address)

    def next_nonce(self, patient: str) -> int:
        return self._nonces.get(patient, self._m.nonces.get(patient, 0))

    def grant(self, grant_id: bytes) -> GrantRecord | None:
        return self._grants.get(grant_id) or self._m.grants.get(grant_id)

    def last_time(self) -> int:
        return self._last_time

    def add(self, entry: Entry) -> None:
        """What appending ``entry`` (checked, stamped) changes for the entries after it in the batch."""
        if isinstance(entry, KeyEntry):
            self._keys[entry.actor] = entry
        elif isinstance(entry, GrantEntry):
            self._nonces[entry.patient] = entry.nonce + 1
            self._grants[entry.grant_id] = GrantRecord(entry.grant_id, entry.patient, self._leaves, self._size, False)
            self._leaves += 1
        elif isinstance(entry, RevokeEntry):
            self._nonces[entry.patient] = entry.nonce + 1
            record = self.grant(entry.grant_id)
            assert record is not None  # the rules checked it
            self._grants[entry.grant_id] = replace(record, revoked=True)
        self._size += 1
        self._last_time = entry.time


# -- the backend ------------------------------------------------------------------------------------------------
class EvmLedgerBackend:
    """The consent ledger in a ConsentLedger contract; build with :meth:`deploy` or attach to an address.

    Without ``operator_key`` the backend reads only (an auditor's or a replica's view); appends need the key of
    the contract's operator account, which pays the gas.
    """

    def __init__(
        self,
        w3: Web3,
        address: str,
        *,
        operator_key: bytes | None = None,
        log_chunk: int = 5_000,
        receipt_timeout: float = 120.0,
    ) -> None:
        compiled = compile_contract()
        self._w3 = w3
        self._node = _Node(w3)
        self.address = Web3.to_checksum_address(address)
        code = bytes(w3.eth.get_code(self.address))
        # The deployed code is the runtime code and then the one immutable (deployedAt) vyper appends.
        if code[: len(compiled.runtime)] != compiled.runtime or len(code) != len(compiled.runtime) + 32:
            raise ChainError(f"the code at {self.address} is not the ConsentLedger contract compiled from source")
        self._contract = w3.eth.contract(address=self.address, abi=compiled.abi)
        self.chain_id = int(w3.eth.chain_id)
        self.domain = Domain(chain_id=self.chain_id, verifying_contract=self.address)
        self.deployed_at = int(self._contract.functions.deployedAt().call())
        self._operator: LocalAccount | None = Account.from_key(operator_key) if operator_key is not None else None
        if self._operator is not None:
            on_chain = self._contract.functions.operator().call()
            if Web3.to_checksum_address(on_chain) != self._operator.address:
                raise ChainError(f"the key given is not the contract's operator ({on_chain})")
        self._log_chunk = log_chunk
        self._block_gas_limit = int(w3.eth.get_block("latest")["gasLimit"])
        self._lock = threading.RLock()
        self._mirror = _Mirror()
        self._synced_block = self.deployed_at  # logs up to here are in the mirror (the last one maybe partly)
        self._sender = (
            _Sender(self._node, self._operator, receipt_timeout=receipt_timeout) if self._operator is not None else None
        )
        self.last_receipt: Receipt | None = None
        """The receipt of the last transaction this backend sent (its deployment, or an append)."""
        with self._lock:
            self._refresh()

    @classmethod
    def deploy(cls, w3: Web3, operator_key: bytes, **kwargs: Any) -> EvmLedgerBackend:
        """Deploy a new ledger contract from the operator's account (which becomes its operator)."""
        operator = Account.from_key(operator_key)
        compiled = compile_contract()
        initcode = compiled.bytecode + bytes(12) + bytes.fromhex(operator.address[2:])
        receipt = _Sender(_Node(w3), operator).transact(None, initcode, 3_000_000)
        if receipt.status != 1 or receipt.contract_address is None:
            raise ChainError("deploying the ConsentLedger contract failed")
        backend = cls(w3, receipt.contract_address, operator_key=operator_key, **kwargs)
        backend.last_receipt = receipt
        return backend

    def replica(self) -> EvmLedgerBackend:
        """A read-only backend on the same node and contract: the ledger as anyone rebuilds it from the events."""
        return EvmLedgerBackend(self._w3, self.address)

    @property
    def operator(self) -> str | None:
        return self._operator.address if self._operator is not None else None

    # -- append -----------------------------------------------------------------------------------------------
    def append(self, entries: Sequence[Entry], check: Callable[[LedgerView, Entry], Entry]) -> list[Appended]:
        if not entries:
            return []
        with self._lock:
            # Checked against the mirror as it is; the contract checks again against the chain, so an entry that
            # another process made invalid meanwhile is refused there. A refusal here stands only once the mirror
            # has caught up with the chain: another process may have appended what makes the entry valid.
            try:
                stamped = self._checked(entries, check)
            except AppendRefused:
                if not self._refresh():
                    raise
                stamped = self._checked(entries, check)
            return self._submit(stamped, stamped[-1].time)

    def _checked(self, entries: Sequence[Entry], check: Callable[[LedgerView, Entry], Entry]) -> list[Entry]:
        view = _View(self._mirror)
        stamped = []
        for entry in entries:
            checked = check(view, entry)
            view.add(checked)
            stamped.append(checked)
        return stamped

    def submit(self, entries: Sequence[Entry], time: int) -> list[Appended]:
        """Send entries to the contract as they are, unchecked here: the contract's own verdict on them.

        ``time`` is the operator's clock (the contract stamps max(time, last entry's time)). Raises
        AppendRefused with the contract's reason if it refuses the batch; nothing of it is then appended.
        """
        if not entries:
            return []
        with self._lock:
            return self._submit(list(entries), time)

    def _submit(self, entries: list[Entry], stamp: int) -> list[Appended]:
        if self._sender is None:
            raise ChainError("this ledger backend has no operator key: it can read the ledger but not append")
        data = append_calldata(entries, stamp)
        gas = self._gas_limit(entries, data)
        try:
            receipt = self._sender.transact(self.address, data, gas)
        except _Reverted as exc:  # a node that refuses a reverting transaction when it is sent (Hardhat can)
            self.last_receipt = None
            raise _refusal(exc.reason) from exc
        self.last_receipt = receipt
        if receipt.status != 1:
            raise self._refusal(data, gas, receipt)
        logged = _entry_logs(receipt.logs, self.address)
        if len(logged) != len(entries):
            raise ChainError(f"the append transaction logged {len(logged)} entries for a batch of {len(entries)}")
        if logged[0].index != self._mirror.size:
            # Another appender got in first: read its entries from the chain (ours come with them).
            self._refresh(force=True)
            return [self._appended(e) for e in logged]
        appended = [self._mirror.apply(e) for e in logged]
        self._synced_block = max(self._synced_block, receipt.block)
        return [a for a in appended if a is not None]

    def _gas_limit(self, entries: Sequence[Entry], data: bytes) -> int:
        cap = min(self._block_gas_limit, _TX_GAS_CAP)
        bound = _GAS_BASE + len(data) * _GAS_PER_BYTE + sum(_GAS_PER[type(e)] for e in entries)
        if bound <= cap:
            return bound
        assert self._operator is not None
        call = {"from": self._operator.address, "to": self.address, "data": data}
        try:
            estimate = int(self._w3.eth.estimate_gas(call))  # type: ignore[arg-type]
        except Exception as exc:  # a batch the contract refuses fails its estimate: the same reasons
            reason = _revert_reason(exc)
            if reason is not None:
                raise _refusal(reason) from exc
            raise ChainError(
                f"the node could not estimate the gas of a batch of {len(entries)} entries ({exc}); it may need more "
                f"than one transaction may use ({cap:,}): append it in smaller batches"
            ) from exc
        if estimate * 11 // 10 > cap:
            raise ChainError(
                f"a batch of {len(entries)} entries needs {estimate:,} gas, more than one transaction may use "
                f"({cap:,}): append it in smaller batches"
            )
        return estimate * 11 // 10

    def _appended(self, logged: LoggedEntry) -> Appended:
        record = self._mirror.grants.get(logged.entry.grant_id) if isinstance(logged.entry, GrantEntry) else None
        return Appended(logged.index, logged.entry, record.leaf_index if record is not None else None)

    def _refusal(self, data: bytes, gas: int, receipt: Receipt) -> LedgerError:
        """Why the contract reverted: the transaction replayed with eth_call on the state before its block."""
        assert self._operator is not None
        block = receipt.block
        if receipt.gas_used >= gas:
            return ChainError(f"the append transaction ran out of gas ({gas:,}) in block {block}")
        call = {"from": self._operator.address, "to": self.address, "data": data, "gas": gas}
        try:
            self._w3.eth.call(call, block_identifier=block - 1)  # type: ignore[arg-type]
        except Exception as exc:  # the providers raise different types for a revert; the reason is in it
            return _refusal(_revert_reason(exc))
        return AppendRefused(
            "conflict", "the ledger contract refused the batch after another append in the same block; retry"
        )

    # -- following the chain ----------------------------------------------------------------------------------
    def _refresh(self, *, force: bool = False) -> bool:
        """Catch the mirror up with the chain when the node's head has moved (one eth_blockNumber otherwise);
        whether there was anything to read."""
        head = self._node.block_number()
        if head <= self._synced_block and not force:
            return False
        start = self._synced_block  # inclusive: entries after ours in the block we last read
        while start <= head:
            stop = min(start + self._log_chunk - 1, head)
            for logged in _entry_logs(self._node.logs(self.address, start, stop), self.address):
                self._mirror.apply(logged)
            start = stop + 1
        self._synced_block = head
        on_chain = int(self._contract.functions.size().call(block_identifier=head))
        if on_chain != self._mirror.size:
            raise ChainError(
                f"the node's logs hold {self._mirror.size} entries but the contract's size is {on_chain} at block "
                f"{head}: the node left logs out"
            )
        return True

    # -- reads ------------------------------------------------------------------------------------------------
    def size(self) -> int:
        with self._lock:
            self._refresh()
            return self._mirror.size

    def entry_bytes(self, start: int, end: int) -> list[bytes]:
        with self._lock:
            self._refresh()
            return self._mirror.entries[max(start, 0) : max(end, 0)]

    def node(self, level: int, index: int) -> bytes:
        with self._lock:
            found = self._mirror.nodes.get((level, index))
            if found is None:
                self._refresh()
                found = self._mirror.nodes.get((level, index))
            if found is None:
                raise KeyError(f"no log node at level {level}, index {index}")
            return found

    def prefetch(self, compute: Callable[[merkle.NodeReader], object]) -> None:
        """A no-op: the mirror holds every node in memory."""

    def grant(self, grant_id: bytes) -> GrantRecord | None:
        with self._lock:
            self._refresh()
            return self._mirror.grants.get(grant_id)

    def actor_key(self, address: str) -> KeyEntry | None:
        with self._lock:
            self._refresh()
            return self._mirror.keys.get(address)

    def next_nonce(self, patient: str) -> int:
        with self._lock:
            self._refresh()
            return self._mirror.nonces.get(patient, 0)

    def attestation_entry(self, request_hash: int) -> int | None:
        with self._lock:
            self._refresh()
            return self._mirror.attestations.get(request_hash)

    def sync(self) -> tuple[int, int]:
        with self._lock:
            self._refresh()
            return self._mirror.size, self._mirror.sync()

    def grant_roots(self) -> list[tuple[int, int]]:
        """The roots this backend's mirror was synced to (each process's mirror syncs at its own sizes)."""
        with self._lock:
            return list(self._mirror.roots)

    def grant_path(self, leaf_index: int) -> tuple[int, int, MerklePath]:
        with self._lock:
            self._refresh()
            root = self._mirror.sync()
            return self._mirror.size, root, self._mirror.tree.path(leaf_index)


def _entry_logs(logs: Sequence[Log], address: str) -> list[LoggedEntry]:
    """The entries among a receipt's or eth_getLogs's logs that come from the contract at ``address``."""
    out = []
    wanted = address.lower()
    for log in logs:
        if log.address != wanted or not log.topics or log.topics[0] not in ENTRY_TOPICS:
            continue
        logged = decode_event(log.topics, log.data)
        if logged is not None:
            out.append(logged)
    return out


def _revert_reason(exc: Exception) -> str | None:
    """The contract's reason string in a node's revert error: its Error(string) data, else its message."""
    for data in (getattr(exc, "data", None), *_ERROR_DATA.findall(str(exc))):
        if isinstance(data, str) and data.startswith("0x") and len(data) % 2 == 0:
            reason = decode_revert_reason(bytes.fromhex(data[2:]))
            if reason is not None:
                return reason
    found = _REVERTED.search(str(exc))
    return found.group(1) if found else None


def _refusal(reason: str | None) -> LedgerError:
    """The error for a batch the contract reverted with ``reason``: a rule's refusal, or a failure of ours."""
    if reason in AppendRefused.REASONS:
        return AppendRefused(reason, f"the ledger contract refused the batch: {reason}")
    return ChainError(f"the ledger contract reverted the batch ({reason or 'no reason given'})")


class _Reverted(Exception):
    """The node refused to take a transaction because it reverts when executed."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason or "reverted")
        self.reason = reason


class _Sender:
    """Signs and sends the operator's transactions (EIP-1559), keeping its account nonce, and waits for receipts."""

    def __init__(self, node: _Node, account: LocalAccount, *, receipt_timeout: float = 120.0) -> None:
        self._node = node
        self._account = account
        self._chain_id = int(node.w3.eth.chain_id)
        self._nonce: int | None = None
        self._fees: tuple[float, dict[str, int]] | None = None
        self._receipt_timeout = receipt_timeout

    def _fee_fields(self, fresh: bool) -> dict[str, int]:
        now = time.monotonic()
        if fresh or self._fees is None or now - self._fees[0] > _FEE_TTL:
            price = int(self._node.w3.eth.gas_price)
            tip = min(price, int(self._node.w3.eth.max_priority_fee))
            self._fees = (now, {"maxFeePerGas": 2 * price + tip, "maxPriorityFeePerGas": tip})
        return self._fees[1]

    def transact(self, to: str | None, data: bytes, gas: int) -> Receipt:
        """Send one transaction and return its receipt (whatever its status)."""
        fresh_fees = False
        for _ in range(_SEND_ATTEMPTS):
            if self._nonce is None:
                self._nonce = int(self._node.w3.eth.get_transaction_count(self._account.address, "pending"))
            tx: dict[str, Any] = {
                "type": 2,
                "chainId": self._chain_id,
                "nonce": self._nonce,
                "gas": gas,
                "value": 0,
                "data": data,
                **self._fee_fields(fresh_fees),
            }
            if to is not None:
                tx["to"] = to
            signed = self._account.sign_transaction(tx)
            try:
                tx_hash = self._node.send_raw_transaction(bytes(signed.raw_transaction))
            except Exception as exc:  # each node words these differently: sorted out below
                message = str(exc).lower()
                if "revert" in message:
                    self._nonce = None  # it may have been mined all the same: ask the node next time
                    raise _Reverted(_revert_reason(exc)) from exc
                if "nonce" in message:
                    self._nonce = None  # another sender used it: ask the node again
                    continue
                if "fee" in message or "underpriced" in message:
                    fresh_fees = True
                    continue
                raise ChainError(f"the node refused the transaction: {exc}") from exc
            self._nonce += 1
            return self._wait(tx_hash)
        raise ChainError(f"the node kept refusing the transaction ({_SEND_ATTEMPTS} attempts)")

    def _wait(self, tx_hash: bytes) -> Receipt:
        deadline = time.monotonic() + self._receipt_timeout
        pause = 0.005  # a dev node mines at once; a chain with block times answers within a few polls anyway
        while True:
            receipt = self._node.receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                self._nonce = None
                raise ChainError(
                    f"transaction 0x{tx_hash.hex()} was not mined within {self._receipt_timeout:g} s; it may still be"
                )
            time.sleep(pause)
            pause = min(2 * pause, 0.5)


# -- the node -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Log:
    """One event log as the backend reads it."""

    address: str  # lower-case hex
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class Receipt:
    """What the backend reads of a transaction's receipt."""

    tx_hash: bytes
    status: int
    block: int
    gas_used: int
    contract_address: str | None
    logs: tuple[Log, ...]


class _Node:
    """The JSON-RPC calls the backend makes on its hot paths.

    Over HTTP they are sent as they are and their JSON is read here: web3's result formatting costs more than all
    the rest of an append for a receipt with a hundred logs (20 ms of CPU against 3). Any other provider (the
    in-process eth-tester, whose raw answers are not JSON-RPC) goes through web3's formatted API.
    """

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self._raw = isinstance(w3.provider, HTTPProvider)

    def _request(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if response.get("error") is not None:
            raise ChainError(f"{method}: {response['error']}")
        return response.get("result")

    def block_number(self) -> int:
        if self._raw:
            return int(self._request("eth_blockNumber", []), 16)
        return int(self.w3.eth.block_number)

    def send_raw_transaction(self, raw: bytes) -> bytes:
        if self._raw:
            return bytes.fromhex(self._request("eth_sendRawTransaction", ["0x" + raw.hex()])[2:])
        return bytes(self.w3.eth.send_raw_transaction(raw))

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        if self._raw:
            found = self._request("eth_getTransactionReceipt", ["0x" + tx_hash.hex()])
            if found is None:
                return None
            return Receipt(
                tx_hash,
                int(found["status"], 16),
                int(found["blockNumber"], 16),
                int(found["gasUsed"], 16),
                found.get("contractAddress"),
                tuple(_json_log(log) for log in found["logs"]),
            )
        try:
            formatted = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        return Receipt(
            tx_hash,
            int(formatted["status"]),
            int(formatted["blockNumber"]),
            int(formatted["gasUsed"]),
            formatted.get("contractAddress"),
            tuple(_web3_log(log) for log in formatted["logs"]),
        )

    def logs(self, address: str, start: int, stop: int) -> list[Log]:
        if self._raw:
            found = self._request("eth_getLogs", [{"address": address, "fromBlock": hex(start), "toBlock": hex(stop)}])
            return [_json_log(log) for log in found if not log.get("removed")]
        formatted = self.w3.eth.get_logs({"address": address, "fromBlock": start, "toBlock": stop})  # type: ignore[typeddict-item]
        return [_web3_log(log) for log in formatted if not log.get("removed")]


def _json_log(log: dict[str, Any]) -> Log:
    return Log(
        str(log["address"]).lower(),
        tuple(bytes.fromhex(t[2:]) for t in log["topics"]),
        bytes.fromhex(str(log["data"])[2:]),
    )


def _web3_log(log: Any) -> Log:
    return Log(str(log["address"]).lower(), tuple(bytes(t) for t in log["topics"]), bytes(log["data"]))
