"""The consent circuit's Groth16 keys for one deployment: from a snarkjs ``.zkey`` file, or a development setup.

A production deployment points ``PCHR_ZK_KEY`` at a ``.zkey`` from a multi-party phase-2 ceremony over the
consent circuit (:mod:`zk.consent_circuit`; its R1CS is exported with :mod:`zk.snarkjs`); the file is read with
:func:`zk.zkey.zkey_from_bytes` and checked against the circuit before use. When the file does not exist, the
vault runs the single-party **development** setup (:func:`zk.groth16.setup`), writes the key there (mode 0600,
created exclusively, so that several server processes end up with the same key) and a ``.development`` marker
beside it, and says so wherever the key is published: whoever ran that setup could forge proofs. With no path,
each process makes its own development key in memory (tests, the demo).

The verifying key is public (``GET /zk/verifying-key``, snarkjs's JSON); so is the proving key, which clinicians
need to prove (``GET /zk/proving-key``, the ``.zkey`` bytes).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from zk.consent_circuit import consent_r1cs
from zk.errors import FormatError
from zk.groth16 import DEVELOPMENT_SETUP_WARNING, PreparedVerifyingKey, prepare, setup
from zk.keys import ProvingKey
from zk.snarkjs import verifying_key_to_json
from zk.zkey import check_key_matches, zkey_from_bytes, zkey_to_bytes

__all__ = ["ConsentKeys", "load_or_create_consent_keys"]

CIRCUIT_ID = "pchr-consent-v2"
"""v2: the Merkle path of the 4-ary grant tree (3,890 constraints); v1 had the binary tree's (5,730)."""
_MARKER_SUFFIX = ".development"


@dataclass
class ConsentKeys:
    """The consent circuit's proving key, its prepared verifying key, and where it came from."""

    proving_key: ProvingKey
    development: bool
    source: str
    prepared: PreparedVerifyingKey = field(init=False)

    def __post_init__(self) -> None:
        self.prepared = prepare(self.proving_key.vk)

    @cached_property
    def zkey(self) -> bytes:
        return zkey_to_bytes(self.proving_key)

    @cached_property
    def verifying_key_json(self) -> dict[str, Any]:
        return verifying_key_to_json(self.proving_key.vk)

    def describe(self) -> dict[str, Any]:
        r1cs = consent_r1cs()
        return {
            "circuit": CIRCUIT_ID,
            "constraints": r1cs.num_constraints,
            "publicInputs": ["root", "grantee", "model", "usedMask", "t", "reqHash", "tag"],
            "setup": "development" if self.development else "ceremony",
            "warning": DEVELOPMENT_SETUP_WARNING if self.development else None,
            "source": self.source,
            "verifyingKey": "/zk/verifying-key",
            "provingKey": "/zk/proving-key",
        }


def _from_file(path: Path) -> ConsentKeys:
    pk = zkey_from_bytes(path.read_bytes())
    development = Path(f"{path}{_MARKER_SUFFIX}").exists()
    try:
        check_key_matches(pk, consent_r1cs())
    except FormatError as exc:
        # Not replaced behind the operator's back: attestations already on the ledger verify under this key only.
        remedy = (
            "it is a development key: move it (and its .development marker) aside and a new one is made"
            if development
            else "run a ceremony's phase 2 over this version's circuit ('pchr zk export-r1cs' writes it)"
        )
        message = f"{path} is not a key for this pchr's consent circuit ({CIRCUIT_ID}): {exc}; {remedy}"
        raise FormatError(message) from exc
    return ConsentKeys(pk, development, path.name)


def load_or_create_consent_keys(path: Path | None) -> ConsentKeys:
    """The keys in ``path`` (checked against the consent circuit), or a development setup written there.

    Several processes starting together elect one to run the setup (whoever creates ``<path>.lock``); it
    writes the key to a temporary file and renames it into place, and the others wait for ``path``.
    """
    if path is None:
        return ConsentKeys(setup(consent_r1cs()), True, "in-memory development setup")
    if path.exists():
        return _from_file(path)
    lock = Path(f"{path}.lock")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        deadline = time.monotonic() + 600
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"waited 10 minutes for another process to write {path}; is {lock} stale?") from None
            time.sleep(0.1)
        return _from_file(path)
    try:
        pk = setup(consent_r1cs())
        Path(f"{path}{_MARKER_SUFFIX}").write_text(DEVELOPMENT_SETUP_WARNING + "\n")
        staging = Path(f"{path}.{os.getpid()}.tmp")
        staging.write_bytes(zkey_to_bytes(pk))
        staging.chmod(0o600)
        os.replace(staging, path)
    finally:
        os.close(fd)
        lock.unlink()
    return ConsentKeys(pk, True, path.name)
