"""EIP-712 typed data for consent grants and revocations: digests, signing, and signer recovery.

Spec: EIP-712 "Typed structured data hashing and signing" (https://eips.ethereum.org/EIPS/eip-712).

What a patient signs holds no health data and no names (DESIGN.md section 4)::

    Grant(bytes32 grantId,uint256 commitment,uint256 nonce,uint64 issuedAt)
    Revoke(bytes32 grantId,uint256 nonce,uint64 issuedAt)

``commitment`` is the Poseidon commitment to (grantee, purpose, scope, expiry, salt): anyone can check that the
patient signed it; only the grant's parties, who know the opening, learn what it grants. The domain binds a
signature to one ledger, so that it cannot be replayed on another: on an EVM ledger ``verifyingContract`` is the
contract; a SQL ledger has no contract, so its ``verifyingContract`` is derived from its operator's checkpoint key
(:func:`sql_ledger_domain`): two SQL ledgers with their own keys never share a domain, and an operator cannot take
another ledger's domain without claiming that ledger's key, which its auditors pin. The per-patient ``nonce``
stops replays on the same ledger.

The digests are computed here directly from the spec (fixed structs, 32-byte words), which is fast enough for
thousands of appends a second; the tests check them against eth-account's general ``encode_typed_data``, and a
wallet's ``eth_signTypedData_v4`` signature over :meth:`TypedMessage.to_json` verifies here.
Signer recovery uses eth-keys (libsecp256k1 through coincurve), as an EVM's ``ecrecover`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from Crypto.Hash import keccak as keccak_256
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.datatypes import Signature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from consent_chain.errors import SignatureError
from ehr.identity import ActorKeys, normalize_address

__all__ = [
    "GRANT_TYPE",
    "REVOKE_TYPE",
    "Domain",
    "GrantMessage",
    "RevokeMessage",
    "TypedMessage",
    "recover_signer",
    "recover_signer_bytes",
    "sign",
    "sql_ledger_domain",
]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
GRANT_TYPE = "Grant(bytes32 grantId,uint256 commitment,uint256 nonce,uint64 issuedAt)"
REVOKE_TYPE = "Revoke(bytes32 grantId,uint256 nonce,uint64 issuedAt)"
_DOMAIN_TYPEHASH = keccak(text=DOMAIN_TYPE)
_GRANT_TYPEHASH = keccak(text=GRANT_TYPE)
_REVOKE_TYPEHASH = keccak(text=REVOKE_TYPE)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of one consent ledger."""

    name: str = "pchr consent ledger"
    version: str = "1"
    chain_id: int = 31337
    verifying_contract: str = "0x0000000000000000000000000000000000000000"

    def separator(self) -> bytes:
        return _separator(self)

    def _compute_separator(self) -> bytes:
        return keccak(
            _DOMAIN_TYPEHASH
            + keccak(text=self.name)
            + keccak(text=self.version)
            + _word(self.chain_id)
            + _word(int(self.verifying_contract, 16))
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }

    @classmethod
    def from_json(cls, data: Any) -> Domain:
        """The domain as :meth:`to_json` writes it (``GET /ledger/domain``); ValueError if it is not one."""
        if not isinstance(data, dict) or set(data) != {"name", "version", "chainId", "verifyingContract"}:
            raise ValueError("an EIP-712 domain is {name, version, chainId, verifyingContract}")
        name, version, chain_id, contract = data["name"], data["version"], data["chainId"], data["verifyingContract"]
        if not isinstance(name, str) or not isinstance(version, str):
            raise ValueError("an EIP-712 domain's name and version are strings")
        if not isinstance(chain_id, int) or isinstance(chain_id, bool) or not 0 <= chain_id < 1 << 256:
            raise ValueError("an EIP-712 domain's chainId is a uint256")
        if not isinstance(contract, str):
            raise ValueError("an EIP-712 domain's verifyingContract is an address")
        return cls(name, version, chain_id, normalize_address(contract))


_SQL_LEDGER_TAG = b"pchr sql consent ledger v1\n"


def sql_ledger_domain(operator_vkey: str, *, chain_id: int) -> Domain:
    """The EIP-712 domain of a SQL consent ledger: ``verifyingContract`` is the last 20 bytes of
    keccak256("pchr sql consent ledger v1\\n" || the operator's verifier key), the C2SP ``name+hash+key`` string
    its checkpoints verify under and its auditors pin.

    No contract lives at that address; it only makes the domain, and so every signature in it, this ledger's own.
    """
    digest = keccak(_SQL_LEDGER_TAG + operator_vkey.encode())
    return Domain(chain_id=chain_id, verifying_contract=to_checksum_address(digest[12:]))


def _check_uint(name: str, value: int, bits: int) -> None:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{name} must be a uint{bits}")


@dataclass(frozen=True)
class GrantMessage:
    grant_id: bytes
    commitment: int
    nonce: int
    issued_at: int

    primary_type = "Grant"

    def __post_init__(self) -> None:
        if len(self.grant_id) != 32:
            raise ValueError("grantId must be 32 bytes")
        _check_uint("commitment", self.commitment, 256)
        _check_uint("nonce", self.nonce, 256)
        _check_uint("issuedAt", self.issued_at, 64)

    def struct_hash(self) -> bytes:
        return _keccak(
            _GRANT_TYPEHASH + self.grant_id + _word(self.commitment) + _word(self.nonce) + _word(self.issued_at)
        )

    def fields(self) -> tuple[list[dict[str, str]], dict[str, Any]]:
        types = [
            {"name": "grantId", "type": "bytes32"},
            {"name": "commitment", "type": "uint256"},
            {"name": "nonce", "type": "uint256"},
            {"name": "issuedAt", "type": "uint64"},
        ]
        values = {
            "grantId": "0x" + self.grant_id.hex(),
            "commitment": self.commitment,
            "nonce": self.nonce,
            "issuedAt": self.issued_at,
        }
        return types, values


@dataclass(frozen=True)
class RevokeMessage:
    grant_id: bytes
    nonce: int
    issued_at: int

    primary_type = "Revoke"

    def __post_init__(self) -> None:
        if len(self.grant_id) != 32:
            raise ValueError("grantId must be 32 bytes")
        _check_uint("nonce", self.nonce, 256)
        _check_uint("issuedAt", self.issued_at, 64)

    def struct_hash(self) -> bytes:
        return _keccak(_REVOKE_TYPEHASH + self.grant_id + _word(self.nonce) + _word(self.issued_at))

    def fields(self) -> tuple[list[dict[str, str]], dict[str, Any]]:
        types = [
            {"name": "grantId", "type": "bytes32"},
            {"name": "nonce", "type": "uint256"},
            {"name": "issuedAt", "type": "uint64"},
        ]
        values = {"grantId": "0x" + self.grant_id.hex(), "nonce": self.nonce, "issuedAt": self.issued_at}
        return types, values


TypedMessage = GrantMessage | RevokeMessage


@lru_cache(maxsize=64)
def _separator(domain: Domain) -> bytes:
    return domain._compute_separator()


def digest(domain: Domain, message: TypedMessage) -> bytes:
    """``keccak256(0x1901 || domainSeparator || hashStruct(message))``: what is signed."""
    return _keccak(b"\x19\x01" + domain.separator() + message.struct_hash())


def _keccak(data: bytes) -> bytes:
    # pycryptodome directly: eth-utils' dispatch costs more than the hash for 66-byte inputs.
    return keccak_256.new(digest_bits=256, data=data).digest()


def to_json(domain: Domain, message: TypedMessage) -> dict[str, Any]:
    """The ``eth_signTypedData_v4`` payload a wallet signs for this message."""
    types, values = message.fields()
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            message.primary_type: types,
        },
        "primaryType": message.primary_type,
        "domain": domain.to_json(),
        "message": values,
    }


def sign(keys: ActorKeys, domain: Domain, message: TypedMessage) -> bytes:
    """Sign as a wallet would (65 bytes r || s || v, v in {27, 28}), through eth-account."""
    signable = encode_typed_data(full_message=to_json(domain, message))
    return bytes(Account.sign_message(signable, private_key=keys.identity_secret()).signature)


def recover_signer(domain: Domain, message: TypedMessage, signature: bytes) -> str:
    """The address that signed ``message``, as ``ecrecover`` computes it; SignatureError if malformed.

    High-s signatures are refused (EIP-2): each signature has exactly one accepted encoding.
    """
    return normalize_address("0x" + recover_signer_bytes(domain, message, signature).hex())


def recover_signer_bytes(domain: Domain, message: TypedMessage, signature: bytes) -> bytes:
    """The signer's 20-byte address (no checksumming: the ledger compares bytes on its hot path)."""
    if len(signature) != 65:
        raise SignatureError("an EIP-712 signature is 65 bytes (r || s || v)")
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
        raise SignatureError("malformed or non-canonical (high-s) signature")
    try:
        public = Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest(domain, message))
    except Exception as exc:  # eth-keys raises several types for points that do not recover
        raise SignatureError("signature does not recover to any key") from exc
    return _keccak(public.to_bytes())[-20:]
