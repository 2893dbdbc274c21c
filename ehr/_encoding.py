"""base64url without padding (RFC 4648 section 5), as used in every pchr wire format."""

from __future__ import annotations

import base64
import binascii

__all__ = ["b64url", "unb64url"]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected a base64url string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("invalid base64url") from exc
