"""Consent attestations: what the scoring service and auditors share about one encrypted request.

Spec: ../shared/DESIGN.md section 6 and issue #5 item 6. The statement proven is :mod:`zk.consent_circuit`'s; its
``reqHash`` public input is :func:`request_hash` of the request the service received, so a proof covers that
request and no other.

``request_hash`` is SHA-256 over a domain tag and six length-prefixed fields, reduced mod r::

    SHA-256( "pchr/consent-request/v1" || 0x00
             || field(model id, 32 bytes: the hex id decoded)
             || field(used-feature mask, 8 bytes big-endian)
             || field(t, 8 bytes big-endian, Unix seconds)
             || field(grantee address, 20 bytes)
             || field(CKKS evaluation context digest, 32 bytes: SHA-256 of the public context, models.he)
             || field(ciphertext, its bytes) )  mod r

where ``field(x) = len(x) as 8 bytes big-endian || x``. The tag names the purpose and version, so no other hash in
pchr can collide with it by construction; the length prefixes make the encoding injective. Reducing a 256-bit
digest mod r (r ~ 2^253.6) maps at most 6 digests to each residue: collision resistance drops by under 3 bits,
and a request hash is only ever compared for equality, never used as a key.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from consent_chain.grants import address_field
from zk.field import CURVE_ORDER

__all__ = ["REQUEST_DOMAIN", "request_hash"]

REQUEST_DOMAIN: Final = b"pchr/consent-request/v1\x00"
_MODEL_ID = re.compile(r"[0-9a-f]{64}")


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def request_hash(
    *, model_id: str, used_mask: int, t: int, grantee: str, context_digest: bytes, ciphertext: bytes
) -> int:
    """The ``reqHash`` of an encrypted scoring request (module docstring), a field element.

    ValueError for a model id that is not 64 lower-case hex digits (a registry id), a mask or time outside
    0..2^64-1, an address that does not parse, or a context digest that is not 32 bytes.
    """
    if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
        raise ValueError("a model id is 64 lower-case hex digits (the SHA-256 of the model artifact)")
    for name, value in (("used-feature mask", used_mask), ("time t", t)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
            raise ValueError(f"the {name} must be an int in 0..2^64-1")
    if not isinstance(context_digest, bytes) or len(context_digest) != 32:
        raise ValueError("the evaluation context digest is 32 bytes (SHA-256)")
    if not isinstance(ciphertext, bytes):
        raise ValueError("the ciphertext is bytes")
    digest = hashlib.sha256()
    digest.update(REQUEST_DOMAIN)
    for part in (
        bytes.fromhex(model_id),
        used_mask.to_bytes(8, "big"),
        t.to_bytes(8, "big"),
        address_field(grantee).to_bytes(20, "big"),
        context_digest,
        ciphertext,
    ):
        digest.update(_field(part))
    return int.from_bytes(digest.digest(), "big") % CURVE_ORDER
