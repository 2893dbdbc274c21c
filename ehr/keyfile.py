"""Passphrase-protected keyfiles holding an actor's private keys.

Format (JSON, version 1)::

    {"pchr": "keyfile/v1", "role": ..., "address": ..., "x25519Public": hex,
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": hex},
     "cipher": {"name": "aes-256-gcm", "nonce": hex},
     "ciphertext": hex}

The key-encryption key is scrypt (RFC 7914) of the passphrase; the secrets are encrypted with AES-256-GCM and
every header field above is the associated data, so a header edited to point at another address or role fails
to open. The public fields are readable without the passphrase (``pchr keys show``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ehr.errors import KeyfileError
from ehr.identity import ActorKeys, Role

__all__ = ["DEFAULT_SCRYPT_N", "dump_keyfile", "load_keyfile", "read_public_header"]

Rng = Callable[[int], bytes]

DEFAULT_SCRYPT_N = 2**15  # ~100 ms and 32 MiB on this machine class (RFC 7914 section 2 guidance)
_FORMAT = "keyfile/v1"


def _kek(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def dump_keyfile(keys: ActorKeys, passphrase: str, *, n: int = DEFAULT_SCRYPT_N, rng: Rng = os.urandom) -> bytes:
    """Serialize ``keys`` encrypted under ``passphrase``."""
    if not passphrase:
        raise KeyfileError("a keyfile needs a non-empty passphrase")
    salt, nonce = rng(16), rng(12)
    header: dict[str, Any] = {
        "pchr": _FORMAT,
        "role": keys.role.value,
        "address": keys.address,
        "x25519Public": keys.x25519_public.hex(),
        "kdf": {"name": "scrypt", "n": n, "r": 8, "p": 1, "salt": salt.hex()},
        "cipher": {"name": "aes-256-gcm", "nonce": nonce.hex()},
    }
    secrets = json.dumps({"secp256k1": keys.identity_secret().hex(), "x25519": keys.encryption_secret().hex()}).encode()
    ciphertext = AESGCM(_kek(passphrase, salt, n, 8, 1)).encrypt(nonce, secrets, _aad(header))
    return json.dumps({**header, "ciphertext": ciphertext.hex()}, indent=2).encode() + b"\n"


def read_public_header(data: bytes) -> dict[str, Any]:
    """The keyfile's public fields, without opening it."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyfileError("keyfile is not JSON") from exc
    if not isinstance(doc, dict) or doc.get("pchr") != _FORMAT:
        raise KeyfileError("not a pchr keyfile (v1)")
    doc.pop("ciphertext", None)
    return doc


def load_keyfile(data: bytes, passphrase: str) -> ActorKeys:
    """Open a keyfile; a wrong passphrase or any edited byte raises KeyfileError."""
    header = read_public_header(data)
    doc = json.loads(data)
    try:
        kdf, cipher = header["kdf"], header["cipher"]
        if kdf.get("name") != "scrypt" or cipher.get("name") != "aes-256-gcm":
            raise KeyfileError("unsupported keyfile algorithms")
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        if not (2**10 <= n <= 2**20 and r == 8 and 1 <= p <= 4):
            raise KeyfileError("keyfile scrypt parameters out of range")
        kek = _kek(passphrase, bytes.fromhex(kdf["salt"]), n, r, p)
        plain = AESGCM(kek).decrypt(bytes.fromhex(cipher["nonce"]), bytes.fromhex(doc["ciphertext"]), _aad(header))
        secrets = json.loads(plain)
        keys = ActorKeys.from_secrets(
            Role(header["role"]), bytes.fromhex(secrets["secp256k1"]), bytes.fromhex(secrets["x25519"])
        )
    except InvalidTag as exc:
        raise KeyfileError("wrong passphrase, or the keyfile was altered") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyfileError("keyfile is malformed") from exc
    if keys.address != header["address"] or keys.x25519_public.hex() != header["x25519Public"]:
        raise KeyfileError("keyfile header does not match its keys")
    return keys
