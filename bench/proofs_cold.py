"""Cold-cache proof latency through the SQL backend: each proof from a fresh backend (no node cached).

Run: ``.venv/bin/python bench/proofs_cold.py`` (about 30 s). Prints medians; complements section 4 of RESULTS.md.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from consent_chain.backends.sql import SqlLedgerBackend
from consent_chain.entries import KeyEntry
from consent_chain.ledger import Ledger
from consent_chain.note import Signer
from ehr.identity import ActorKeys, Role

ENTRIES = 20_000


def main() -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        signer = Signer.generate("bench.cold")
        ledger = Ledger(SqlLedgerBackend(url), signer, origin=signer.name)
        actors = [ActorKeys.generate(Role.PATIENT).public() for _ in range(ENTRIES)]
        entries = [KeyEntry(a.address, a.role, a.x25519_public, a.binding_signature) for a in actors]
        for start in range(0, ENTRIES, 500):
            ledger.append(entries[start : start + 500])
        size = ledger.size()
        for name in ("inclusion", "consistency"):
            times = []
            cold = Ledger(SqlLedgerBackend(url), signer, origin=signer.name)
            cold.size()  # open the connection pool: what is timed below is the proof, not the connect
            for _ in range(500):
                cold.backend._log_nodes.clear()  # every proof starts with no node cached
                started = time.perf_counter()
                if name == "inclusion":
                    cold.inclusion_proof(rng.randrange(size), size)
                else:
                    cold.consistency_proof(rng.randrange(1, size), size)
                times.append((time.perf_counter() - started) * 1000)
            cold.backend.engine.dispose()
            print(
                f"{name} proof at {size:,} entries, node cache empty: median {statistics.median(times):.3f} ms, "
                f"p90 {sorted(times)[int(len(times) * 0.9)]:.3f} ms"
            )


if __name__ == "__main__":
    main()
