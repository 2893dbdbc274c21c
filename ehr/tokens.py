"""SMART Backend Services authentication: client assertions in, short-lived access tokens out.

Spec: SMART App Launch 2.x "Backend Services" (https://hl7.org/fhir/smart-app-launch/backend-services.html) and
RFC 7523. A client proves possession of its secp256k1 identity key by signing a short JWT (``ES256K``, RFC 8812)
with ``iss`` = ``sub`` = its address, ``aud`` = the token endpoint, ``exp`` at most five minutes ahead and a
fresh ``jti``. The vault answers with an access token: a JWT signed by the vault's Ed25519 key (``EdDSA``,
RFC 8037) carrying the address, role and granted SMART scopes, valid for :data:`ACCESS_TOKEN_LIFETIME`.

Time is injected (``now``) so expiry is testable exactly.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519

from ehr._encoding import unb64url
from ehr._json import MAX_DEPTH, nesting_depth
from ehr.errors import Unauthorized
from ehr.identity import ActorKeys, ActorPublic, Role, normalize_address
from ehr.policy import Principal
from ehr.scopes import Scope, parse_scope, scope_string

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "ASSERTION_TYPE",
    "AccessTokens",
    "ClientAssertion",
    "make_client_assertion",
    "verify_client_assertion",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACCESS_TOKEN_LIFETIME = timedelta(minutes=5)
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
CLOCK_SKEW = timedelta(seconds=30)
# Client assertions and access tokens are a few hundred characters; 8 KiB leaves room for any honest one.
MAX_JWT_CHARS = 8192
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_CACHE_SIZE = 10_000


def _plausible_jwt(token: str) -> bool:
    """False unless ``token`` is a compact JWS of at most MAX_JWT_CHARS whose header and payload JSON nest at
    most MAX_DEPTH levels.

    PyJWT parses the header (and, for a client assertion, the payload) with plain ``json.loads`` before any
    signature is checked: deep nesting there would overflow the C stack and kill the process (see ehr._json).
    Only strict base64url is let through, so the bytes checked here are the bytes PyJWT parses.
    """
    if len(token) > MAX_JWT_CHARS or not _COMPACT_JWS.fullmatch(token):
        return False
    header, payload, _ = token.split(".")
    try:
        return all(nesting_depth(unb64url(segment)) <= MAX_DEPTH for segment in (header, payload))
    except ValueError:
        return False


def make_client_assertion(keys: ActorKeys, audience: str, *, now: datetime, lifetime: int = 60) -> str:
    """The signed JWT a client sends to ``POST /auth/token`` (client side)."""
    claims = {
        "iss": keys.address,
        "sub": keys.address,
        "aud": audience,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, keys.identity, algorithm="ES256K", headers={"kid": keys.address})


@dataclass(frozen=True)
class ClientAssertion:
    actor: ActorPublic
    jti_key: str
    expires_at: datetime


def verify_client_assertion(
    assertion: str, *, audiences: tuple[str, ...], now: datetime, lookup: Callable[[str], ActorPublic | None]
) -> ClientAssertion:
    """Verify a client assertion's signature and claims; the caller must still record the ``jti``.

    ``aud`` must name one of ``audiences``: the URLs of this vault's own token endpoint (none: every assertion is
    refused). Every failure raises Unauthorized with the same reason, so a prober learns nothing about which check
    failed.
    """
    refused = Unauthorized("client assertion rejected (signature, audience, lifetime or registration)")
    if not audiences or not _plausible_jwt(assertion):
        raise refused
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        address = normalize_address(str(unverified.get("iss", "")))
        actor = lookup(address)
        if actor is None:
            raise refused
        claims = jwt.decode(
            assertion,
            actor.identity_key(),
            algorithms=["ES256K"],
            audience=list(audiences),
            options={"require": ["iss", "sub", "aud", "exp", "jti"], "verify_exp": False},
        )
    except (jwt.PyJWTError, ValueError) as exc:
        raise refused from exc
    try:
        exp = datetime.fromtimestamp(int(claims["exp"]), now.tzinfo)
    except (TypeError, ValueError, OverflowError, OSError):  # not a number, or not a time (year 10**20)
        raise refused from None
    if claims["sub"] != claims["iss"] or exp <= now - CLOCK_SKEW or exp > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
        raise refused
    jti = str(claims["jti"])
    if not 8 <= len(jti) <= 128:
        raise refused
    jti_key = hashlib.sha256(f"{address}\x00{jti}".encode()).hexdigest()
    return ClientAssertion(actor, jti_key, exp)


class AccessTokens:
    """Issues and verifies the vault's access tokens."""

    def __init__(self, key: ed25519.Ed25519PrivateKey, issuer: str, *, lifetime: timedelta = ACCESS_TOKEN_LIFETIME):
        self._key = key
        self._public = key.public_key()
        self.issuer = issuer
        self.lifetime = lifetime
        self._verified: dict[str, tuple[Principal, int]] = {}

    def issue(self, actor: ActorPublic, scopes: tuple[Scope, ...], *, now: datetime) -> str:
        claims = {
            "iss": self.issuer,
            "sub": actor.address,
            "role": actor.role.value,
            "scope": scope_string(scopes),
            "iat": int(now.timestamp()),
            "exp": int((now + self.lifetime).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA")

    def verify(self, token: str, *, now: datetime) -> Principal:
        """The principal a token names; Unauthorized if it is forged, malformed or expired.

        A token whose signature verified once is remembered (bounded), so each request after the first costs a
        dictionary lookup and the expiry check, not an Ed25519 verification.
        """
        cached = self._verified.get(token)
        if cached is None:
            cached = self._verify_signature(token)
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = cached
        principal, expires = cached
        if expires <= int(now.timestamp()):
            raise Unauthorized("access token has expired")
        return principal

    def _verify_signature(self, token: str) -> tuple[Principal, int]:
        if not _plausible_jwt(token):
            raise Unauthorized("access token is invalid")
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["EdDSA"],
                issuer=self.issuer,
                options={"require": ["iss", "sub", "exp", "scope", "role"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized("access token is invalid") from exc
        scopes = tuple(s for s in (parse_scope(w) for w in str(claims["scope"]).split()) if s is not None)
        try:
            principal = Principal(normalize_address(str(claims["sub"])), Role(claims["role"]), scopes)
            return principal, int(claims["exp"])
        except (ValueError, TypeError) as exc:
            raise Unauthorized("access token is invalid") from exc
