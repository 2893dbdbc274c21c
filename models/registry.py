"""The model registry: artifacts, their model ids, and a cache that trains on demand.

A model **artifact** (DESIGN.md section 5) is the booster's XGBoost JSON model, the :class:`FeatureSpec` and the
:class:`ModelCard`, serialised as one canonical JSON document::

    {"booster": {...}, "card": {...}, "format": "pchr-model-artifact/1", "spec": {...}}

with keys sorted at every level, no insignificant whitespace, UTF-8, and numbers as Python's ``json`` writes
them (the shortest repr that reads back to the same double). The **model id** is the SHA-256 of those bytes,
in hex: it is what a scoring grant's purpose names on the consent ledger. The card commits to its PNG figures
by digest, so the id covers them too.

Storage (the directory is ``$PCHR_MODEL_DIR``, default ``~/.cache/pchr/models``; it holds a ``.gitignore`` of
``*`` so that it stays out of git wherever it is put)::

    <dir>/<model id>/artifact.json       the canonical bytes
    <dir>/<model id>/roc.png, calibration.png
    <dir>/recipes/<name>-<recipe digest>  the model id trained from that recipe

The recipe digest covers the recipe, the feature spec and the library versions, so a change to any of them
trains afresh. Loading checks that the bytes hash to the id asked for (and that they are canonical, and that
the figures match their digests) before parsing anything else; a mismatch is an :class:`ArtifactError`, never
a silent retrain. Training is deterministic (:mod:`models.train`): the same recipe trained twice on one machine
gives the same model id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from models.card import ModelCard
from models.errors import ArtifactError, UnknownModel
from models.features import FeatureSpec
from models.recipes import Recipe, library_versions, recipe
from models.trees import Ensemble

__all__ = [
    "ARTIFACT_FORMAT",
    "ENV_MODEL_DIR",
    "ModelArtifact",
    "Registry",
    "canonical_json",
    "default_model_dir",
]

ARTIFACT_FORMAT = "pchr-model-artifact/1"
ENV_MODEL_DIR = "PCHR_MODEL_DIR"
ARTIFACT_FILE = "artifact.json"
_MODEL_ID_RE = re.compile(r"^[0-9a-f]{64}$")
# Bump when training code changes in a way that changes bytes, so that cached models are retrained.
TRAINING_REVISION = 1


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8; NaN and infinities refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def default_model_dir(env: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    configured = environ.get(ENV_MODEL_DIR)
    return Path(configured) if configured else Path.home() / ".cache" / "pchr" / "models"


@dataclass(frozen=True)
class ModelArtifact:
    """A booster's JSON model, its feature spec and its card; identified by the SHA-256 of :meth:`to_bytes`."""

    booster: Mapping[str, Any]
    spec: FeatureSpec
    card: ModelCard

    def to_json(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "booster": self.booster,
            "spec": self.spec.to_json(),
            "card": self.card.to_json(),
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @cached_property
    def model_id(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @cached_property
    def ensemble(self) -> Ensemble:
        return Ensemble.from_xgboost_json(self.booster)

    def booster_bytes(self) -> bytes:
        """The booster as JSON that ``xgboost.Booster.load_model`` reads."""
        return canonical_json(self.booster)

    @classmethod
    def from_bytes(cls, data: bytes, *, model_id: str | None = None) -> ModelArtifact:
        """Parse an artifact; with ``model_id``, first check that the bytes hash to it."""
        if model_id is not None and hashlib.sha256(data).hexdigest() != model_id:
            raise ArtifactError(f"artifact bytes do not hash to model id {model_id}")
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != ARTIFACT_FORMAT:
                raise ArtifactError(f"not a {ARTIFACT_FORMAT} document")
            if set(doc) != {"format", "booster", "spec", "card"} or not isinstance(doc["booster"], dict):
                raise ArtifactError("an artifact has exactly the members format, booster, spec and card")
            artifact = cls(doc["booster"], FeatureSpec.from_json(doc["spec"]), ModelCard.from_json(doc["card"]))
            if artifact.to_bytes() != data:
                raise ArtifactError("artifact bytes are not in canonical form")
            artifact.check()
        except ArtifactError:
            raise
        except Exception as exc:  # malformed input of any kind is one refusal
            raise ArtifactError(f"artifact does not parse: {type(exc).__name__}") from exc
        return artifact

    def check(self) -> None:
        """The booster, spec and card describe one model."""
        ensemble = self.ensemble
        if ensemble.n_features != self.spec.n_features:
            raise ArtifactError(f"booster has {ensemble.n_features} features, spec {self.spec.n_features}")
        names = self.booster.get("learner", {}).get("feature_names")
        if names and tuple(names) != self.spec.keys:
            raise ArtifactError("booster feature names differ from the spec's feature keys")
        if self.card.features != self.spec.keys:
            raise ArtifactError("model card lists other features than the spec")


class Registry:
    """Artifacts in a directory, keyed by model id; recipes trained on demand."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_model_dir()

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# pchr model cache: trained on demand, never committed\n*\n")

    def path(self, model_id: str) -> Path:
        if not _MODEL_ID_RE.match(model_id):
            raise UnknownModel(f"{model_id[:80]!r} is not a model id (64 lower-case hex digits)")
        return self.root / model_id

    def load(self, model_id: str) -> ModelArtifact:
        """The stored artifact with this id, verified: its bytes hash to the id and its figures to their digests."""
        folder = self.path(model_id)
        try:
            data = (folder / ARTIFACT_FILE).read_bytes()
        except FileNotFoundError:
            raise UnknownModel(f"no stored model {model_id}") from None
        artifact = ModelArtifact.from_bytes(data, model_id=model_id)
        for figure in artifact.card.figures:
            try:
                digest = hashlib.sha256((folder / figure.path).read_bytes()).hexdigest()
            except FileNotFoundError:
                raise ArtifactError(f"model {model_id} lacks its figure {figure.path}") from None
            if digest != figure.sha256:
                raise ArtifactError(f"figure {figure.path} of model {model_id} does not match its digest")
        return artifact

    def save(self, artifact: ModelArtifact, figures: Mapping[str, bytes]) -> str:
        """Store an artifact and its figures (atomically); returns the model id."""
        if {f.path for f in artifact.card.figures} != set(figures):
            raise ArtifactError("the figures given are not the ones the card names")
        for f in artifact.card.figures:
            if hashlib.sha256(figures[f.path]).hexdigest() != f.sha256:
                raise ArtifactError(f"figure {f.path} does not match the card's digest")
        self._ensure_root()
        model_id = artifact.model_id
        final = self.root / model_id
        if final.exists():
            self.load(model_id)
            return model_id
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            (staging / ARTIFACT_FILE).write_bytes(artifact.to_bytes())
            for name, png in figures.items():
                (staging / name).write_bytes(png)
            try:
                staging.rename(final)
            except OSError:
                if not final.exists():
                    raise
                self.load(model_id)  # another process stored the same model meanwhile
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        return model_id

    def recipe_key(self, r: Recipe) -> str:
        digest = hashlib.sha256(
            canonical_json(
                {
                    "recipe": r.to_json(),
                    "spec": r.spec.to_json(),
                    "libraries": library_versions(),
                    "revision": TRAINING_REVISION,
                }
            )
        ).hexdigest()
        return f"{r.name}-{digest[:16]}"

    def ensure(self, name: str) -> ModelArtifact:
        """The model trained from recipe ``name``: loaded from the cache, or trained now and stored."""
        r = recipe(name)
        pointer = self.root / "recipes" / self.recipe_key(r)
        if pointer.exists():
            model_id = pointer.read_text().strip()
            if (self.root / model_id).exists():
                return self.load(model_id)
        from models.train import train

        trained = train(r)
        artifact = ModelArtifact(trained.booster, r.spec, trained.card)
        model_id = self.save(artifact, trained.figures)
        pointer.parent.mkdir(parents=True, exist_ok=True)
        staging = pointer.with_name(f".{pointer.name}.{os.getpid()}")
        staging.write_text(model_id + "\n")
        staging.replace(pointer)
        return self.load(model_id)

    def ids(self) -> list[str]:
        """Ids of the stored models (not verified)."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if _MODEL_ID_RE.match(p.name) and p.is_dir())
