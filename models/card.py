"""Model cards: what a model was trained on, how, and how well it does on held-out data.

After Mitchell et al. 2019, "Model Cards for Model Reporting" (FAT* '19), cut to what pchr can state from its
own training run: the data (source, size, digest), the features, the split, the training parameters, held-out
metrics (ROC AUC, accuracy at 0.5, AUC with a quarter of the values hidden, Brier score) and two figures, the ROC
curve and a calibration plot, named by file and SHA-256 so that the card commits to them. A card is part of the
model artifact and so of its model id; it holds no timestamps and no machine paths, which keeps training on one
machine reproducible byte for byte.

Pure: plain data with a JSON round trip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.errors import ArtifactError

__all__ = ["Figure", "Metrics", "ModelCard"]


@dataclass(frozen=True)
class Metrics:
    """Held-out metrics, with the predicted class positive when the probability is at least 0.5."""

    auc: float
    accuracy: float
    auc_missing: float
    """ROC AUC on the held-out rows with each value hidden with probability ``missing_rate``."""
    missing_rate: float
    brier: float

    def __post_init__(self) -> None:
        for name in ("auc", "accuracy", "auc_missing", "missing_rate", "brier"):
            value = getattr(self, name)
            if not (isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ArtifactError(f"model card metric {name} is not a number in [0, 1]")

    def to_json(self) -> dict[str, float]:
        return {
            "auc": self.auc,
            "accuracy": self.accuracy,
            "auc_missing": self.auc_missing,
            "missing_rate": self.missing_rate,
            "brier": self.brier,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Metrics:
        return cls(
            float(data["auc"]),
            float(data["accuracy"]),
            float(data["auc_missing"]),
            float(data["missing_rate"]),
            float(data["brier"]),
        )


@dataclass(frozen=True)
class Figure:
    """A PNG stored next to the artifact: a file name (no directories) and its SHA-256."""

    kind: str
    path: str
    sha256: str

    def __post_init__(self) -> None:
        if "/" in self.path or "\\" in self.path or self.path.startswith(".") or not self.path.endswith(".png"):
            raise ArtifactError(f"figure path {self.path!r} must be a plain .png file name")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ArtifactError("figure digest must be 64 lower-case hex digits")

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Figure:
        return cls(str(data["kind"]), str(data["path"]), str(data["sha256"]))


@dataclass(frozen=True)
class ModelCard:
    name: str
    title: str
    label: str
    data: Mapping[str, Any]
    """source, origin, n, n_positive, digest (SHA-256 of the rows and labels)."""
    features: tuple[str, ...]
    split: Mapping[str, Any]
    """method, test_size, seed, n_train, n_test, n_test_positive."""
    training: Mapping[str, Any]
    """library and version, params, rounds, missing augmentation, threshold snapping."""
    metrics: Metrics
    figures: tuple[Figure, ...]

    def figure(self, kind: str) -> Figure:
        for f in self.figures:
            if f.kind == kind:
                return f
        raise KeyError(kind)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "label": self.label,
            "data": dict(self.data),
            "features": list(self.features),
            "split": dict(self.split),
            "training": dict(self.training),
            "metrics": self.metrics.to_json(),
            "figures": [f.to_json() for f in self.figures],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelCard:
        try:
            return cls(
                str(data["name"]),
                str(data["title"]),
                str(data["label"]),
                dict(data["data"]),
                tuple(str(k) for k in data["features"]),
                dict(data["split"]),
                dict(data["training"]),
                Metrics.from_json(data["metrics"]),
                tuple(Figure.from_json(f) for f in data["figures"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"not a model card: {exc!r}") from exc
