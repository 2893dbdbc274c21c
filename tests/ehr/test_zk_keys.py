"""The consent circuit's key file: made once by a labelled development setup, then read back and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehr.zk_keys import load_or_create_consent_keys
from zk.errors import ZkError


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
