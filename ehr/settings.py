"""Vault settings, read from the environment (``PCHR_*``) or given directly to :func:`ehr.api.create_app`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///pchr.db"
    """Any SQLAlchemy URL: ``sqlite:///path.db`` (default) or ``postgresql+psycopg2://user@host/db``."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Largest request body accepted (413 above it)."""
    issuer: str = "pchr-vault"
    """The ``iss`` of access tokens."""
    public_url: str | None = None
    """The base URL clients use, for links and the token audience; default: taken from each request."""
    token_key_path: Path | None = None
    """Ed25519 key (raw 32 bytes) signing access tokens; created on first start. None: a fresh key per process,
    so tokens (five minutes long) do not survive a restart."""

    ledger_origin: str = "pchr.local/consent-ledger"
    """The consent ledger's origin line (C2SP checkpoint) and the name of its signing key."""
    ledger_key_path: Path | None = None
    """The operator's Ed25519 checkpoint key (Go note ``PRIVATE+KEY+...`` format), created on first start. None: a
    fresh key per process, which auditors cannot pin: set it for anything but a demo or a test."""
    ledger_chain_id: int = 31337
    """EIP-712 domain chainId that grant signatures are bound to."""
    ledger_contract: str = "0x0000000000000000000000000000000000000000"
    """EIP-712 domain verifyingContract (the contract's address on an EVM ledger)."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        key = env.get("PCHR_TOKEN_KEY")
        ledger_key = env.get("PCHR_LEDGER_KEY")
        return cls(
            database_url=env.get("PCHR_DATABASE_URL", cls.database_url),
            max_body_bytes=int(env.get("PCHR_MAX_BODY_BYTES", cls.max_body_bytes)),
            issuer=env.get("PCHR_ISSUER", cls.issuer),
            public_url=env.get("PCHR_PUBLIC_URL") or None,
            token_key_path=Path(key) if key else None,
            ledger_origin=env.get("PCHR_LEDGER_ORIGIN", cls.ledger_origin),
            ledger_key_path=Path(ledger_key) if ledger_key else None,
            ledger_chain_id=int(env.get("PCHR_LEDGER_CHAIN_ID", cls.ledger_chain_id)),
            ledger_contract=env.get("PCHR_LEDGER_CONTRACT", cls.ledger_contract),
        )
