"""Keyfiles: they open with the passphrase and with nothing else, and refuse any edit."""

from __future__ import annotations

import json

import pytest

from ehr.errors import KeyfileError
from ehr.identity import ActorKeys, Role
from ehr.keyfile import dump_keyfile, load_keyfile, read_public_header

FAST = 2**10  # scrypt cost for tests; the default is 2**15


@pytest.fixture(scope="module")
def keys() -> ActorKeys:
    return ActorKeys.generate(Role.PATIENT)


@pytest.fixture(scope="module")
def keyfile(keys: ActorKeys) -> bytes:
    return dump_keyfile(keys, "correct horse battery staple", n=FAST)


def test_round_trip(keys: ActorKeys, keyfile: bytes) -> None:
    opened = load_keyfile(keyfile, "correct horse battery staple")
    assert opened.address == keys.address
    assert opened.x25519_public == keys.x25519_public
    assert opened.role is Role.PATIENT


def test_no_secret_in_the_clear(keys: ActorKeys, keyfile: bytes) -> None:
    assert keys.identity_secret().hex().encode() not in keyfile
    assert keys.encryption_secret().hex().encode() not in keyfile


def test_public_header_readable_without_passphrase(keys: ActorKeys, keyfile: bytes) -> None:
    header = read_public_header(keyfile)
    assert header["address"] == keys.address
    assert "ciphertext" not in header


def test_wrong_passphrase(keyfile: bytes) -> None:
    with pytest.raises(KeyfileError, match="wrong passphrase"):
        load_keyfile(keyfile, "Correct horse battery staple")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("address",), "0x0000000000000000000000000000000000000001"),
        (("role",), "clinician"),
        (("kdf", "salt"), "00" * 16),
        (("cipher", "nonce"), "00" * 12),
    ],
)
def test_edited_header_is_refused(keyfile: bytes, path: tuple[str, ...], value: str) -> None:
    doc = json.loads(keyfile)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(KeyfileError):
        load_keyfile(json.dumps(doc).encode(), "correct horse battery staple")


def test_edited_ciphertext_is_refused(keyfile: bytes) -> None:
    doc = json.loads(keyfile)
    doc["ciphertext"] = ("0" if doc["ciphertext"][0] != "0" else "1") + doc["ciphertext"][1:]
    with pytest.raises(KeyfileError, match="altered"):
        load_keyfile(json.dumps(doc).encode(), "correct horse battery staple")


@pytest.mark.parametrize("garbage", [b"", b"not json", b"[]", b'{"pchr": "keyfile/v0"}'])
def test_garbage_is_refused(garbage: bytes) -> None:
    with pytest.raises(KeyfileError):
        load_keyfile(garbage, "x")


def test_absurd_scrypt_cost_is_refused(keyfile: bytes) -> None:
    doc = json.loads(keyfile)
    doc["kdf"]["n"] = 2**30  # would take minutes and gigabytes: refuse before deriving
    with pytest.raises(KeyfileError, match="out of range"):
        load_keyfile(json.dumps(doc).encode(), "correct horse battery staple")


def test_empty_passphrase_is_refused(keys: ActorKeys) -> None:
    with pytest.raises(KeyfileError, match="non-empty"):
        dump_keyfile(keys, "", n=FAST)
