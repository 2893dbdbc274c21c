"""Errors raised by the record vault, each mapped to one FHIR ``OperationOutcome``.

The hierarchy::

    VaultError                      (500, exception)
    ├── InvalidRequest              (400, invalid)      malformed JSON, unknown type, failed FHIR validation
    │   ├── PayloadTooLarge         (413, too-long)
    │   └── UnsupportedMediaType    (415, not-supported) a body that is not FHIR JSON (the gateway)
    ├── Unprocessable               (422, processing)   valid FHIR the vault cannot accept (no patient, ...)
    ├── Unauthorized                (401, login)        missing, expired or forged credentials
    ├── Forbidden                   (403, forbidden)    authenticated but not allowed
    ├── NotFound                    (404, not-found)
    ├── Gone                        (410, deleted)
    ├── Conflict                    (409, conflict)     id taken, stale version
    ├── PreconditionFailed          (412, conflict)     If-Match did not match
    └── OAuthError                  (400/401)           token endpoint refusals, reported as RFC 6749 errors

    CryptoError                     sealing layer; verification failures collapse to one type
    ├── DecryptionError             tampered ciphertext, AAD or wrapped key, or the wrong key
    └── KeyfileError                wrong passphrase or corrupted keyfile

Messages never carry health data or secrets: they name resource types, ids and versions only.
"""

from __future__ import annotations

import copy
from typing import ClassVar

__all__ = [
    "Conflict",
    "CryptoError",
    "DecryptionError",
    "Forbidden",
    "Gone",
    "InvalidRequest",
    "KeyfileError",
    "NotFound",
    "OAuthError",
    "PayloadTooLarge",
    "PreconditionFailed",
    "Unauthorized",
    "Unprocessable",
    "UnsupportedMediaType",
    "VaultError",
]


class VaultError(Exception):
    """Base of every error the vault reports to a caller."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "exception"  # http://hl7.org/fhir/issue-type

    def __init__(self, message: str, *, expression: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression

    def at(self, where: str) -> VaultError:
        """The same error, located at ``where`` (an entry of a Bundle, say)."""
        located = copy.copy(self)
        located.message = f"{where}: {self.message}"
        located.args = (located.message,)
        located.expression = self.expression or where
        return located


class InvalidRequest(VaultError):
    status = 400
    code = "invalid"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "too-long"


class UnsupportedMediaType(InvalidRequest):
    status = 415
    code = "not-supported"


class Unprocessable(VaultError):
    status = 422
    code = "processing"


class Unauthorized(VaultError):
    status = 401
    code = "login"


class Forbidden(VaultError):
    status = 403
    code = "forbidden"


class NotFound(VaultError):
    status = 404
    code = "not-found"


class Gone(VaultError):
    status = 410
    code = "deleted"


class Conflict(VaultError):
    status = 409
    code = "conflict"


class PreconditionFailed(VaultError):
    status = 412
    code = "conflict"


class OAuthError(VaultError):
    """A refusal at ``POST /auth/token``: reported as an RFC 6749 section 5.2 error, not an OperationOutcome,
    because OAuth clients (SMART Backend Services) parse that shape."""

    status = 400
    code = "security"

    def __init__(self, error: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.http_status = status


class CryptoError(Exception):
    """Base of the sealing layer's errors."""


class DecryptionError(CryptoError):
    """A sealed payload or wrapped key failed authentication.

    Deliberately one type with one message: tampering with the ciphertext, the associated data or the wrapped
    key, and using the wrong private key, are indistinguishable to the caller.
    """

    def __init__(self) -> None:
        super().__init__("sealed payload failed authentication (tampered, or not sealed for this key)")


class KeyfileError(CryptoError):
    """A keyfile could not be parsed or opened."""
