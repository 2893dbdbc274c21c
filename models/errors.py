"""Errors raised by the risk models: feature specs and extraction, tree ensembles, the model registry, and the
encrypted evaluator.

The hierarchy::

    ModelError                      base of every models error
    ├── FeatureError                a feature spec that is inconsistent, or records extraction cannot use
    ├── EnsembleError               a booster dump that is not a tree ensemble pchr can evaluate
    ├── ArtifactError               an artifact that does not parse, or whose bytes do not hash to its model id
    ├── UnknownModel                no recipe or stored artifact by that name or id
    ├── HeError                     encrypted-evaluation input that does not fit: bytes that do not parse,
    │                               other parameters, missing keys, a mask outside the model's features
    └── SessionError                no open evaluation-key session by that id for that clinician

To add an error: subclass :class:`ModelError` (or the narrowest error above that it refines), draw it here, and
list it in ``__all__``.

Messages name models, features and FHIR elements, never a patient's values.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "EnsembleError",
    "FeatureError",
    "HeError",
    "ModelError",
    "SessionError",
    "UnknownModel",
]


class ModelError(Exception):
    """Base of every error raised by :mod:`models`."""


class FeatureError(ModelError):
    """A feature spec that is inconsistent, or FHIR input that feature extraction refuses."""


class EnsembleError(ModelError):
    """A booster dump that is not a single-output gbtree ensemble with numeric splits."""


class ArtifactError(ModelError):
    """A model artifact that does not parse, is not canonical, or does not hash to the expected model id."""


class UnknownModel(ModelError):
    """No training recipe or stored artifact has that name or id."""


class HeError(ModelError):
    """Input the encrypted evaluator (:mod:`models.he`) refuses: bytes that do not parse, a context or ciphertext
    made with other parameters, a wrong slot count, missing keys, a ciphertext at another level or scale, a used
    mask that does not fit the model, or a model the slot plan cannot hold. Raised before any computation."""


class SessionError(ModelError):
    """No open evaluation-key session with that id belongs to the caller (never opened, expired or evicted)."""
