"""The consent circuit's key file: made once by a labelled development setup, then read back and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehr.zk_keys import load_or_create_consent_keys
from tests.interop.pchr_circuits import bounded_preimage
from zk.errors import FormatError, ZkError
from zk.groth16 import setup
from zk.zkey import zkey_to_bytes


def test_a_missing_key_file_is_made_once_and_labelled_development(tmp_path: Path) -> None:
    path = tmp_path / "consent.zkey"
    made = load_or_create_consent_keys(path)
    assert made.development
    assert path.stat().st_mode & 0o777 == 0o600
    assert "DEVELOPMENT" in (tmp_path / "consent.zkey.development").read_text()
    again = load_or_create_consent_keys(path)
    assert again.proving_key == made.proving_key
    assert again.development
    assert again.describe()["setup"] == "development"
    assert not (tmp_path / "consent.zkey.lock").exists()


def test_a_key_file_that_is_no_zkey_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "consent.zkey"
    path.write_bytes(b"not a zkey at all")
    with pytest.raises(ZkError):
        load_or_create_consent_keys(path)


@pytest.mark.parametrize(
    ("development", "remedy"),
    [(True, "it is a development key: move it (and its .development marker) aside"), (False, "ceremony's phase 2")],
)
def test_a_key_for_another_circuit_is_refused_with_what_to_do(tmp_path: Path, development: bool, remedy: str) -> None:
    # A key made for another circuit, as an earlier pchr's key is for its earlier consent circuit.
    path = tmp_path / "consent.zkey"
    path.write_bytes(zkey_to_bytes(setup(bounded_preimage(1, 2, 3).r1cs())))
    if development:
        (tmp_path / "consent.zkey.development").write_text("development")
    before = path.read_bytes()
    with pytest.raises(FormatError) as caught:
        load_or_create_consent_keys(path)
    message = str(caught.value)
    assert "consent.zkey is not a key for this pchr's consent circuit (pchr-consent-v2): the key is for" in message
    assert remedy in message
    assert path.read_bytes() == before  # not replaced: attestations made under it verify with it alone
