"""The model service: the risk models it serves, clinicians' evaluation-key sessions, and encrypted scoring.

DESIGN.md section 5 and issue 4 item 4. The protocol, from the service's side:

1. a clinician's client registers its public CKKS evaluation context once per session
   (:meth:`ScoringService.open_session`): relinearization and Galois keys, about 98 MB, no public or secret key.
   The service loads and checks it once (a few seconds) and keeps it under a **session id**, the SHA-256 of the
   bytes, for the clinician who sent it. At most ``max_sessions`` are held (each costs a few hundred MB of
   memory); the least recently used goes first, and a session idle for ``idle`` expires;
2. for each query the client sends the ciphertext of one patient's features and the public used-feature mask;
   :meth:`ScoringService.score` evaluates the model's whole tree ensemble on it (:mod:`models.he`) and returns
   the encrypted margin, which only the client can decrypt.

Nothing here sees a feature or a score in the clear, and nothing here decides who may score: the caller (the
vault's API, :mod:`ehr.api.model_routes`) checks the scoring grant on the consent ledger *before* calling
:meth:`score`, so a refused request costs no homomorphic work.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from models.errors import SessionError, UnknownModel
from models.features import catalogue_for
from models.he import EvaluationKeys, HeModel, load_context
from models.registry import ModelArtifact, Registry
from models.trees import layout

__all__ = ["ScoringService", "ServedModel", "Session"]

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ServedModel:
    """A model the service scores with: its verified artifact and its homomorphic evaluation plan."""

    artifact: ModelArtifact
    he: HeModel

    @property
    def model_id(self) -> str:
        return self.artifact.model_id

    @property
    def name(self) -> str:
        return self.artifact.spec.name

    @property
    def catalogue_id(self) -> str:
        """The scope catalogue a scoring grant for this model is written over (one bit per feature)."""
        return self.artifact.spec.catalogue_id

    def describe(self) -> dict[str, Any]:
        """What a clinician may know of the model: its card, features and catalogue; never the trees."""
        spec = self.artifact.spec
        card = self.artifact.card.to_json()
        return {
            "id": self.model_id,
            "name": spec.name,
            "title": spec.title,
            "label": spec.label,
            "purpose": f"model:{self.model_id}",
            "catalogue": catalogue_for(spec).to_json(),
            "spec": spec.to_json(),
            "card": card,
        }


@dataclass(frozen=True)
class Session:
    """A clinician's registered evaluation keys."""

    session_id: str
    owner: str
    keys: EvaluationKeys
    size: int
    expires: datetime


class ScoringService:
    """Encrypted scoring with a fixed set of models (see the module docstring)."""

    def __init__(
        self,
        artifacts: Iterable[ModelArtifact],
        *,
        max_sessions: int = 4,
        idle: timedelta = timedelta(hours=1),
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        if max_sessions < 1:
            raise ValueError("a scoring service holds at least one session")
        self._models: dict[str, ServedModel] = {}
        for artifact in artifacts:
            he = HeModel.from_layout(layout(artifact.ensemble), artifact.spec)
            self._models[artifact.model_id] = ServedModel(artifact, he)
        self._by_name = {m.name: m for m in self._models.values()}
        self._max_sessions = max_sessions
        self._idle = idle
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_registry(cls, registry: Registry, names: Iterable[str], **kwargs: Any) -> ScoringService:
        """Serve the models trained from these recipes (trained now, deterministically, if not yet cached)."""
        return cls([registry.ensure(name) for name in names], **kwargs)

    # -- models -------------------------------------------------------------------------------------
    def models(self) -> list[ServedModel]:
        return sorted(self._models.values(), key=lambda m: m.name)

    def model(self, ref: str) -> ServedModel:
        """A served model by id (64 hex digits) or by recipe name; UnknownModel otherwise."""
        found = self._models.get(ref) or self._by_name.get(ref)
        if found is None:
            raise UnknownModel(f"this service scores no model {ref[:80]!r}")
        return found

    def catalogue_of(self, model_id: str) -> str | None:
        """The scope catalogue of a served model's scoring grants, or None if it is not served."""
        served = self._models.get(model_id)
        return served.catalogue_id if served else None

    # -- sessions -----------------------------------------------------------------------------------
    def open_session(self, owner: str, context: bytes) -> Session:
        """Load and check a client's evaluation context (HeError if it does not fit); idempotent per owner."""
        session_id = hashlib.sha256(context).hexdigest()
        now = self._clock()
        with self._lock:
            self._expire(now)
            held = self._sessions.get(session_id)
            if held is not None and held.owner == owner:
                return self._touch(held, now)
        keys = load_context(context)  # seconds of work: outside the lock
        session = Session(session_id, owner, keys, len(context), now + self._idle)
        with self._lock:
            self._sessions[session_id] = session
            self._sessions.move_to_end(session_id)
            while len(self._sessions) > self._max_sessions:
                self._sessions.popitem(last=False)
        return session

    def session(self, owner: str, session_id: str) -> Session:
        """The caller's open session (SessionError if none: never opened, expired, evicted, or someone else's)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            held = self._sessions.get(session_id)
            if held is None or held.owner != owner:
                raise SessionError(
                    "no open evaluation-key session with this id for this clinician: register the keys again"
                )
            return self._touch(held, now)

    def close_session(self, owner: str, session_id: str) -> None:
        with self._lock:
            held = self._sessions.get(session_id)
            if held is None or held.owner != owner:
                raise SessionError("no open evaluation-key session with this id for this clinician")
            del self._sessions[session_id]

    def _touch(self, session: Session, now: datetime) -> Session:
        renewed = Session(session.session_id, session.owner, session.keys, session.size, now + self._idle)
        self._sessions[session.session_id] = renewed
        self._sessions.move_to_end(session.session_id)
        return renewed

    def _expire(self, now: datetime) -> None:
        for session_id in [s for s, held in self._sessions.items() if held.expires <= now]:
            del self._sessions[session_id]

    # -- scoring ------------------------------------------------------------------------------------
    def score(self, owner: str, session_id: str, model_id: str, ciphertext: bytes, used_mask: int) -> bytes:
        """The encrypted margin of one patient's encrypted features (HeError for a query that does not fit)."""
        served = self.model(model_id)
        keys = self.session(owner, session_id).keys
        return served.he.evaluate(keys, ciphertext, used_mask)
