"""Vault settings, read from the environment (``PCHR_*``) or given directly to :func:`ehr.api.create_app`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["DEFAULT_MODELS", "LOOPBACK_NAMES", "Settings", "check_public_url", "public_urls"]

DEFAULT_MODELS = ("diabetes", "breast")
LOOPBACK_NAMES = ("127.0.0.1", "localhost")
"""Two spellings of this machine that a loopback public URL answers to alike (same scheme and port)."""


def check_public_url(url: str) -> str:
    """``url`` as a vault base URL (``http(s)://host[:port][/path]``, no trailing slash); ValueError otherwise."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise ValueError(f"the public URL {url[:100]!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the public URL {url[:100]!r} must be http:// or https:// with a host")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError(f"the public URL {url[:100]!r} must have no user, query or fragment")
    return parts.geturl().rstrip("/")


def public_urls(public_url: str) -> tuple[str, ...]:
    """Every base URL the vault answers to as ``public_url`` (checked), that one first.

    A loopback URL names this machine: ``http://127.0.0.1:8080`` and ``http://localhost:8080`` are the same vault,
    so each stands for both. Any other URL stands for itself alone.
    """
    url = check_public_url(public_url)
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK_NAMES:
        return (url,)
    port = f":{parts.port}" if parts.port is not None else ""
    spellings = [parts._replace(netloc=f"{name}{port}").geturl() for name in LOOPBACK_NAMES]
    return (url, *(s for s in spellings if s != url))


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///pchr.db"
    """Any SQLAlchemy URL: ``sqlite:///path.db`` (default) or ``postgresql+psycopg2://user@host/db``."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Largest request body accepted (413 above it)."""
    models: tuple[str, ...] = ()
    """Risk models the service scores with (recipe names, trained on first start into ``$PCHR_MODEL_DIR``).
    ``PCHR_MODELS`` is a comma-separated list; unset, a server started from the environment serves
    :data:`DEFAULT_MODELS`; empty, none. Settings built in code serve none unless told (tests, embedding)."""
    max_query_bytes: int = 8 * 1024 * 1024
    """Largest encrypted scoring request (one CKKS query, ~2.2 MB in base64 with the default parameters)."""
    max_context_bytes: int = 256 * 1024 * 1024
    """Largest CKKS evaluation context a clinician may register (the default parameters make ~98 MB)."""
    scoring_sessions: int = 4
    """Evaluation-key sessions held at once (each takes a few hundred MB of memory; least recently used go)."""
    zk_key_path: Path | None = None
    """The consent circuit's Groth16 proving key (a snarkjs ``.zkey``, e.g. from a phase-2 ceremony); created by a
    labelled development setup if missing. None: a development key per process (tests, the demo)."""
    attest_window: int = 300
    """Seconds a proof of consent may lag: how far ``t`` may be from the service's clock, and how long a grant root
    superseded by new grants (never by a revocation) stays acceptable."""
    issuer: str = "pchr-vault"
    """The ``iss`` of access tokens."""
    public_url: str | None = None
    """The base URL clients use (``https://vault.example.org``): the client assertions' audience is its
    ``/auth/token``, and links are built on it. Never taken from a request (its Host header is the client's to
    choose): :func:`ehr.api.create_app` refuses to build a vault without it. ``pchr serve`` defaults it to
    ``http://HOST:PORT`` for a loopback ``--host``; a loopback URL also answers to the other spelling of this machine
    (:func:`public_urls`). Tests with FastAPI's TestClient use ``http://testserver``."""
    token_key_path: Path | None = None
    """Ed25519 key (raw 32 bytes) signing access tokens; created on first start. None: a fresh key per process,
    so tokens (five minutes long) do not survive a restart."""

    ledger_origin: str = "pchr.local/consent-ledger"
    """The consent ledger's origin line (C2SP checkpoint) and the name of its signing key."""
    ledger_key_path: Path | None = None
    """The operator's Ed25519 checkpoint key (Go note ``PRIVATE+KEY+...`` format), created on first start. None: a
    fresh key per process, which auditors cannot pin: set it for anything but a demo or a test."""
    ledger_chain_id: int = 31337
    """EIP-712 domain chainId that grant signatures are bound to (SQL ledger; an EVM ledger's is its chain's)."""
    ledger_contract: str = "0x0000000000000000000000000000000000000000"
    """EIP-712 domain verifyingContract: the contract's address on an EVM ledger. On a SQL ledger the zero address
    (the default) derives one from the operator's checkpoint key (:func:`consent_chain.eip712.sql_ledger_domain`),
    so that no other ledger shares its domain; set it only to keep a domain a ledger already uses."""
    ledger: str = "sql"
    """Where the consent ledger lives: ``sql`` (tables in the vault's database), ``evm+http://host:port`` (the
    ConsentLedger contract at ``ledger_contract`` on an EVM node, over JSON-RPC; ``pchr serve`` deploys one when
    none is set) or ``evm+tester`` (a new contract on a fresh in-process chain: demos and tests)."""
    ledger_operator_key_path: Path | None = None
    """EVM ledger: file holding the operator account's secp256k1 key (hex), which sends the ledger's transactions
    and pays their gas. None with ``evm+tester``: a fresh key, funded by the in-process chain."""

    def __post_init__(self) -> None:
        if self.public_url is not None:
            object.__setattr__(self, "public_url", check_public_url(self.public_url))

    @cached_property
    def public_urls(self) -> tuple[str, ...]:
        """The base URLs the vault answers to, the canonical :attr:`public_url` first; empty if it is unset."""
        return public_urls(self.public_url) if self.public_url is not None else ()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        key = env.get("PCHR_TOKEN_KEY")
        ledger_key = env.get("PCHR_LEDGER_KEY")
        operator_key = env.get("PCHR_LEDGER_OPERATOR_KEY")
        return cls(
            database_url=env.get("PCHR_DATABASE_URL", cls.database_url),
            max_body_bytes=int(env.get("PCHR_MAX_BODY_BYTES", cls.max_body_bytes)),
            models=tuple(m.strip() for m in env.get("PCHR_MODELS", ",".join(DEFAULT_MODELS)).split(",") if m.strip()),
            max_query_bytes=int(env.get("PCHR_MAX_QUERY_BYTES", cls.max_query_bytes)),
            max_context_bytes=int(env.get("PCHR_MAX_CONTEXT_BYTES", cls.max_context_bytes)),
            scoring_sessions=int(env.get("PCHR_SCORING_SESSIONS", cls.scoring_sessions)),
            zk_key_path=Path(env["PCHR_ZK_KEY"]) if env.get("PCHR_ZK_KEY") else None,
            attest_window=int(env.get("PCHR_ATTEST_WINDOW", cls.attest_window)),
            issuer=env.get("PCHR_ISSUER", cls.issuer),
            public_url=env.get("PCHR_PUBLIC_URL") or None,
            token_key_path=Path(key) if key else None,
            ledger_origin=env.get("PCHR_LEDGER_ORIGIN", cls.ledger_origin),
            ledger_key_path=Path(ledger_key) if ledger_key else None,
            ledger_chain_id=int(env.get("PCHR_LEDGER_CHAIN_ID", cls.ledger_chain_id)),
            ledger_contract=env.get("PCHR_LEDGER_CONTRACT", cls.ledger_contract),
            ledger=env.get("PCHR_LEDGER", cls.ledger),
            ledger_operator_key_path=Path(operator_key) if operator_key else None,
        )
