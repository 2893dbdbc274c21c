"""The consent ledger on an EVM chain (``consent_chain.backends.evm``): grants per second and gas.

Measured on two chains: the in-process eth-tester chain (py-evm) and a Hardhat 2 node (the version pinned in
tests/evm_node, started on 127.0.0.1 by this script, automine: one block per transaction), through the whole
``Ledger.append`` path a vault uses: the EIP-712 signature check, the backend's rule check against its mirror, the
packed ``append`` transaction signed with the operator's key, ``eth_sendRawTransaction``, the receipt (its status
checked) and the mirror updated from the receipt's events.

1. **Grants per second**, one grant per transaction and in batches (one transaction per batch), each a median of
   several runs. Every run starts from the same state: the contract deployed once with the KEY registrations, the
   chain snapshotted (``evm_snapshot``) and reverted to it before each run, so the same signed grants (prepared
   once, before any timing) are appended every time. Wall-clock time (the rate a vault sees) and this process's
   CPU time (``time.process_time``: the client's share; on eth-tester the chain's too).
2. **Gas** from the receipts: per grant and per revocation, alone in a transaction (the transaction's own 21,000
   included) and in a batch (the batch's gas over its entries), with patients whose account slots are cold (the
   costliest case: each patient appears once in a batch).
3. **Anchor**: sequential plain ether transfers per second on the same Hardhat node (signed here, sent, receipt
   awaited), the node's own round-trip rate that one-grant-per-transaction appends cannot exceed.

Goals (issue #6): at least 500 grants/s on the Hardhat node with batching (the measured anchor there was 96
sequential transactions/s); at most 60,000 gas per grant in a batch.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_keys.datatypes import PrivateKey
from report import Summary, number, table

from consent_chain.backends.evm import EvmLedgerBackend, fund_from_node, http_web3, tester_web3
from consent_chain.catalogue import read_catalogue
from consent_chain.eip712 import Domain, GrantMessage, RevokeMessage, digest, sign
from consent_chain.entries import Entry, GrantEntry, KeyEntry, RevokeEntry
from consent_chain.grants import Grant
from consent_chain.ledger import Ledger
from consent_chain.note import Signer
from ehr.identity import ActorKeys, Role

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the Hardhat runner lives with the test that pins its package-lock.json
    sys.path.insert(0, str(REPO))

from tests.evm_node.hardhat import hardhat_node  # noqa: E402

__all__ = ["EvmPlan", "EvmResults", "evm_sections", "headline_rows", "measure_evm"]

GRANTS_GOAL = 500.0  # grants/s on the Hardhat node with batching
GAS_GOAL = 60_000  # gas per grant in a batch
ANCHOR = 96.0  # sequential transactions/s measured on the Hardhat node when the goal was set
SCOPE = 1 << 3
Log = Callable[[str], None]


@dataclass(frozen=True)
class EvmPlan:
    runs: int = 5
    patients: int = 100
    tester_single: int = 100
    tester_batched: int = 1_000
    hardhat_single: int = 200
    hardhat_batched: int = 2_000
    batches: tuple[int, ...] = (100, 250)
    anchor_transfers: int = 200


@dataclass
class Config:
    chain: str
    batch: int
    per_run: int
    rates: list[float] = field(default_factory=list)
    """Grants per second, wall clock, one per run."""
    cpu_ms: list[float] = field(default_factory=list)
    """This process's CPU milliseconds per grant, one per run."""

    @property
    def title(self) -> str:
        return "one grant a transaction" if self.batch == 1 else f"batches of {self.batch}"


@dataclass
class Gas:
    grant_single: list[int] = field(default_factory=list)
    grant_batched: dict[int, list[float]] = field(default_factory=dict)
    """By batch size: each full batch's gas over its grants."""
    revoke_single: list[int] = field(default_factory=list)
    revoke_batched: list[float] = field(default_factory=list)
    key_batched: float = 0.0
    deploy: int = 0


@dataclass
class EvmResults:
    plan: EvmPlan
    configs: list[Config] = field(default_factory=list)
    gas: Gas = field(default_factory=Gas)
    anchor: list[float] = field(default_factory=list)
    prepare_seconds: float = 0.0
    chain_ids: dict[str, int] = field(default_factory=dict)

    def config(self, chain: str, batch: int) -> Config | None:
        return next((c for c in self.configs if c.chain == chain and c.batch == batch), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


# -- preparing entries ----------------------------------------------------------------------------------------
def _sign_fast(private: PrivateKey, domain: Domain, message: GrantMessage | RevokeMessage) -> bytes:
    """eip712.sign's signature from eth-keys over eip712.digest, without eth-account's general encoder."""
    raw = bytes(private.sign_msg_hash(digest(domain, message)).to_bytes())
    return raw[:64] + bytes([raw[64] + 27])


@dataclass(frozen=True)
class _Pool:
    grants: list[GrantEntry]
    revokes: list[RevokeEntry]
    """Revocations of the first grants, valid once the whole grant pool is on the ledger."""


def _prepare(patients: Sequence[ActorKeys], domain: Domain, count: int, revokes: int, issued_at: int) -> _Pool:
    catalogue = read_catalogue()
    grantee = ActorKeys.generate(Role.CLINICIAN).address
    expiry = datetime.fromtimestamp(issued_at, UTC) + timedelta(days=30)
    signers = [(p, PrivateKey(p.identity_secret())) for p in patients]
    nonces = [0] * len(signers)
    grants = []
    for i in range(count):
        which = i % len(signers)
        patient, private = signers[which]
        grant = Grant.new(patient.address, grantee, "TREAT", SCOPE, expiry, catalogue)
        message = GrantMessage(grant.grant_id, grant.commitment(), nonces[which], issued_at)
        signature = _sign_fast(private, domain, message)
        if i < len(signers) and signature != sign(patient, domain, message):
            raise RuntimeError("eth-keys and eip712.sign made different signatures")
        nonces[which] += 1
        grants.append(
            GrantEntry(grant.grant_id, patient.address, message.commitment, message.nonce, issued_at, signature)
        )
    revocations = []
    for i, grant in enumerate(grants[:revokes]):
        which = i % len(signers)
        message = RevokeMessage(grant.grant_id, nonces[which], issued_at)
        nonces[which] += 1
        signature = _sign_fast(signers[which][1], domain, message)
        revocations.append(RevokeEntry(grant.grant_id, grant.patient, message.nonce, issued_at, signature))
    return _Pool(grants, revocations)


# -- one chain -------------------------------------------------------------------------------------------------
class _Chain:
    """A chain with the contract deployed, the KEY registrations on it, and a snapshot to return to."""

    def __init__(self, w3: Any, patients: Sequence[ActorKeys], gas: Gas) -> None:
        self.w3 = w3
        operator = Account.create()
        self.operator_key = bytes(operator.key)
        fund_from_node(w3, operator.address, 10**21)
        backend = EvmLedgerBackend.deploy(w3, self.operator_key)
        gas.deploy = int(backend.last_receipt.gas_used)
        self.address, self.domain = backend.address, backend.domain
        keys = [KeyEntry(p.address, p.role, p.x25519_public, p.public().binding_signature) for p in patients]
        for start in range(0, len(keys), 50):
            backend.submit(keys[start : start + 50], int(time.time()))
            gas.key_batched = backend.last_receipt.gas_used / len(keys[start : start + 50])
        self.keys = len(keys)
        self._snapshot = w3.testing.snapshot()

    def fresh_ledger(self) -> Ledger:
        self.w3.testing.revert(self._snapshot)
        self._snapshot = self.w3.testing.snapshot()
        backend = EvmLedgerBackend(self.w3, self.address, operator_key=self.operator_key)
        if backend.size() != self.keys:
            raise RuntimeError(f"the reverted chain holds {backend.size()} entries, not the {self.keys} KEYs")
        return Ledger(
            backend, Signer.generate("bench.pchr.invalid/evm"), origin="bench.pchr.invalid/evm", domain=backend.domain
        )


def _append_run(chain: _Chain, grants: Sequence[Entry], batch: int, gas: Gas | None) -> tuple[float, float]:
    """Append ``grants`` in calls of ``batch`` to a fresh ledger; (grants/s wall clock, CPU ms per grant)."""
    ledger = chain.fresh_ledger()
    backend = ledger.backend
    assert isinstance(backend, EvmLedgerBackend)
    batches = [list(grants[i : i + batch]) for i in range(0, len(grants), batch)]
    cpu, began = time.process_time(), time.perf_counter()
    for entries in batches:
        ledger.append(entries)
        if gas is not None:
            used = int(backend.last_receipt.gas_used)
            if batch == 1:
                gas.grant_single.append(used)
            elif len(entries) == batch:
                gas.grant_batched.setdefault(batch, []).append(used / batch)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    if ledger.size() != chain.keys + len(grants):
        raise RuntimeError(f"the ledger holds {ledger.size()} entries after the run, not {chain.keys + len(grants)}")
    return len(grants) / seconds, 1000 * cpu / len(grants)


def _revocation_gas(chain: _Chain, pool: _Pool, gas: Gas, patients: int) -> None:
    """Gas of revocations on a ledger holding the whole pool: one alone, then one batch over distinct patients."""
    ledger = chain.fresh_ledger()
    backend = ledger.backend
    assert isinstance(backend, EvmLedgerBackend)
    for start in range(0, len(pool.grants), 250):
        ledger.append(pool.grants[start : start + 250])
    ledger.append(pool.revokes[:1])
    gas.revoke_single.append(int(backend.last_receipt.gas_used))
    ledger.append(pool.revokes[1:patients])
    gas.revoke_batched.append(backend.last_receipt.gas_used / (patients - 1))


def _measure_chain(
    name: str, w3: Any, plan: EvmPlan, single: int, batched: int, out: EvmResults, log: Log, *, gas: bool
) -> None:
    patients = [ActorKeys.generate(Role.PATIENT) for _ in range(plan.patients)]
    chain = _Chain(w3, patients, out.gas if gas else Gas())
    out.chain_ids[name] = chain.domain.chain_id
    began = time.perf_counter()
    pool = _prepare(patients, chain.domain, max(single, batched), plan.patients, int(time.time()))
    out.prepare_seconds += time.perf_counter() - began
    log(f"  {name}: {len(pool.grants):,} signed grants prepared in {time.perf_counter() - began:.1f} s")
    for batch in (1, *plan.batches):
        count = single if batch == 1 else batched
        config = Config(name, batch, count)
        for run in range(plan.runs):
            rate, cpu_ms = _append_run(chain, pool.grants[:count], batch, out.gas if gas and run == 0 else None)
            config.rates.append(rate)
            config.cpu_ms.append(cpu_ms)
        out.configs.append(config)
        log(f"  {name}, {config.title}: {_median(config.rates):,.0f} grants/s (median of {plan.runs})")
    if gas:
        _revocation_gas(chain, pool, out.gas, plan.patients)


def _measure_anchor(w3: Any, transfers: int, runs: int) -> list[float]:
    """Sequential plain transfers per second: sign, send, await the receipt, one after the other."""
    sender = Account.create()
    fund_from_node(w3, sender.address, 10**20)
    chain_id, nonce, rates = int(w3.eth.chain_id), 0, []
    price = int(w3.eth.gas_price)
    for _ in range(runs):
        began = time.perf_counter()
        for _ in range(transfers):
            tx = {
                "type": 2,
                "chainId": chain_id,
                "nonce": nonce,
                "to": sender.address,
                "value": 1,
                "gas": 21_000,
                "maxFeePerGas": 3 * price,
                "maxPriorityFeePerGas": price,
            }
            receipt = w3.eth.wait_for_transaction_receipt(
                w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction), poll_latency=0.05
            )
            if receipt["status"] != 1:
                raise RuntimeError("a plain transfer failed")
            nonce += 1
        rates.append(transfers / (time.perf_counter() - began))
    return rates


@contextmanager
def _hardhat(log: Log) -> Iterator[str]:
    began = time.perf_counter()
    with hardhat_node() as url:
        log(f"  Hardhat node up at {url} in {time.perf_counter() - began:.1f} s")
        yield url


def measure_evm(plan: EvmPlan, log: Log) -> EvmResults:
    out = EvmResults(plan)
    log("  eth-tester (py-evm, in this process)")
    _measure_chain("eth-tester", tester_web3(), plan, plan.tester_single, plan.tester_batched, out, log, gas=True)
    with _hardhat(log) as url:
        w3 = http_web3(url)
        _measure_chain("Hardhat", w3, plan, plan.hardhat_single, plan.hardhat_batched, out, log, gas=False)
        out.anchor = _measure_anchor(w3, plan.anchor_transfers, plan.runs)
        log(f"  Hardhat anchor: {_median(out.anchor):,.0f} plain transfers/s")
    return out


# -- RESULTS.md ---------------------------------------------------------------------------------------------
def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def headline_rows(results: EvmResults) -> list[list[str]]:
    """Rows for the headline table: measurement, median, goal, ratio, goal met."""
    rows = []
    best = max(
        (c for c in results.configs if c.chain == "Hardhat" and c.batch > 1),
        key=lambda c: _median(c.rates),
        default=None,
    )
    if best is not None:
        median = _median(best.rates)
        rows.append(
            [
                f"EVM ledger: grants/s on the Hardhat node, {best.title} (one transaction each)",
                number(median),
                number(GRANTS_GOAL),
                f"{median / GRANTS_GOAL:.2f}",
                _yes(median >= GRANTS_GOAL),
            ]
        )
    first = results.gas.grant_batched.get(results.plan.batches[0])
    if first:
        gas = _median(first)
        rows.append(
            [
                f"EVM ledger: gas per grant in a batch of {results.plan.batches[0]}",
                number(gas),
                f"≤ {number(GAS_GOAL)}",
                f"{gas / GAS_GOAL:.2f}",
                _yes(gas <= GAS_GOAL),
            ]
        )
    return rows


def evm_sections(results: EvmResults) -> str:
    plan = results.plan
    rows = []
    for c in results.configs:
        s, cpu = Summary.of(c.rates), Summary.of(c.cpu_ms)
        goal = c.chain == "Hardhat" and c.batch > 1
        rows.append(
            [
                c.chain,
                c.title,
                f"{c.per_run:,}",
                str(s.runs),
                number(s.median),
                number(s.low),
                number(s.high),
                number(1000 / s.median, 2) if s.median else "—",
                number(cpu.median, 2),
                number(GRANTS_GOAL) if goal else "— (info)",
                f"{s.median / GRANTS_GOAL:.2f}" if goal else "—",
            ]
        )
    rates = table(
        [
            "Chain",
            "Transactions",
            "Grants a run",
            "Runs",
            "Median grants/s",
            "Min",
            "Max",
            "ms/grant (wall)",
            "Client CPU ms/grant",
            "Goal grants/s",
            "Ratio",
        ],
        rows,
        "llrrrrrrrrr",
    )
    gas = results.gas
    gas_rows = [["GRANT, alone in a transaction", number(_median(gas.grant_single)), str(len(gas.grant_single)), "—"]]
    for batch, samples in sorted(gas.grant_batched.items()):
        repeats = "each patient once" if batch <= plan.patients else f"{plan.patients} patients, some twice or more"
        gas_rows.append(
            [
                f"GRANT, in a batch of {batch} ({repeats})",
                number(_median(samples)),
                str(len(samples)),
                f"≤ {number(GAS_GOAL)}: {_yes(_median(samples) <= GAS_GOAL)}",
            ]
        )
    gas_rows += [
        ["REVOKE, alone in a transaction", number(_median(gas.revoke_single)), str(len(gas.revoke_single)), "—"],
        [
            f"REVOKE, in a batch of {plan.patients - 1} (each patient once)",
            number(_median(gas.revoke_batched)),
            str(len(gas.revoke_batched)),
            "—",
        ],
        ["KEY (its binding checked on chain), in a batch of 50", number(gas.key_batched), "1", "—"],
        ["Deploying the contract", number(gas.deploy), "1", "—"],
    ]
    anchor = Summary.of(results.anchor)
    hardhat_single = results.config("Hardhat", 1)
    lines = [
        "## EVM consent ledger (`consent_chain.backends.evm`)",
        "### Grants per second through `Ledger.append`\n\n" + rates,
        f"\nAnchor on the same Hardhat node: {number(anchor.median)} sequential plain transfers/s (median of "
        f"{anchor.runs} runs of {plan.anchor_transfers}, min {number(anchor.low)}, max {number(anchor.high)}); the "
        f"goal was set against {number(ANCHOR)}/s measured there."
        + (
            f" One grant a transaction reached {number(_median(hardhat_single.rates))}/s: the same round trip plus "
            "the grant's own work on both sides."
            if hardhat_single
            else ""
        ),
        "### Gas (eth-tester, from the receipts; the same EVM rules as any chain)\n\n"
        + table(["Entry", "Median gas", "Samples", "Goal"], gas_rows, "lrrl"),
        "\nA batch's gas over its entries includes its share of the transaction's 21,000 and of the head update. "
        f"In a batch of {plan.batches[0]} every patient appears once, so every patient's slot is cold: the costliest "
        "batch. A grant alone pays the transaction's base cost and the ledger head's storage by itself. Wall-clock "
        "rates on the shared two cores vary from run to run (min and max above); the client's CPU time per grant "
        "is the steadier figure.",
        _how_measured(results),
    ]
    return "\n\n".join(lines)


def _how_measured(results: EvmResults) -> str:
    plan = results.plan
    chains = ", ".join(f"{name} chain id {cid}" for name, cid in results.chain_ids.items())
    return f"""### How the EVM ledger was measured

- **Chains** ({chains}): eth-tester (py-evm, in this process: its EVM's CPU time is in the client column) and
  the Hardhat 2 node pinned in `tests/evm_node` (a separate process on 127.0.0.1, automine, over JSON-RPC HTTP).
  The contract is compiled from source by the pinned vyper and deployed once per chain by a fresh operator
  account; {plan.patients} patients register their keys (KEY entries, each binding's EIP-191 text rebuilt and
  checked on chain); then the chain is snapshotted.
- **Grants**: real `Grant`s (Poseidon commitment), signed EIP-712 by their patients with eth-keys over
  `eip712.digest` (byte-identical to `eip712.sign`; the first grant of each patient is checked both ways),
  round-robin over the patients, {results.prepare_seconds:.1f} s to prepare, before any timing.
- **Runs**: {plan.runs} per configuration; each reverts the chain to the snapshot, attaches a new backend (its
  mirror rebuilt from the KEY events), and appends the same grants through `Ledger.append` ({plan.tester_single:,}
  or {plan.hardhat_single:,} one a transaction; {plan.tester_batched:,} or {plan.hardhat_batched:,} in batches),
  timed with `time.perf_counter` (wall) and `time.process_time` (this process's CPU). After each run the ledger's
  size must be the KEY entries plus the grants. Medians over runs; min and max are the slowest and fastest run.
- **Gas**: `gasUsed` of the receipts of the first run of each eth-tester configuration; revocations on a ledger
  holding the whole pool: one alone, then {plan.patients - 1} in one batch, one per patient."""


if __name__ == "__main__":  # the EVM ledger section alone, as Markdown on stdout: .venv/bin/python bench/evm.py

    def _log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    print(evm_sections(measure_evm(EvmPlan(), _log)))
