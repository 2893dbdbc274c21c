"""Risk models evaluated over CKKS-encrypted FHIR features (DESIGN.md section 5, issue 4).

- :mod:`models.features`: feature specs (FHIR source, unit, public grid per feature), extraction from FHIR, the
  scope catalogue of a scoring grant;
- :mod:`models.trees`: tree ensembles as plain data, the plaintext reference evaluator, the complete-tree layout
  and public resolution of missing features for the encrypted evaluator;
- :mod:`models.registry`: model artifacts, model ids (SHA-256 of the canonical artifact), a cache that trains
  on demand; :mod:`models.recipes` and :mod:`models.card` describe what is trained and what it scored.

Training (:mod:`models.train`, the only module importing xgboost) is imported on demand, so importing this
package stays light.
"""

from models.card import Figure, Metrics, ModelCard
from models.errors import ArtifactError, EnsembleError, FeatureError, ModelError, UnknownModel
from models.features import (
    BREAST,
    DIABETES,
    PCHR_FEATURE_SYSTEM,
    SPECS,
    AgeSource,
    Feature,
    FeatureSpec,
    FeatureVector,
    ObservationSource,
    Quantizer,
    catalogue_for,
    extract,
    to_fhir,
)
from models.recipes import RECIPES, Recipe, recipe
from models.registry import ModelArtifact, Registry, default_model_dir
from models.trees import CompleteTree, Ensemble, Layout, Node, Tree, layout, margins, path_margins, sigmoid

__all__ = [
    "BREAST",
    "DIABETES",
    "PCHR_FEATURE_SYSTEM",
    "RECIPES",
    "SPECS",
    "AgeSource",
    "ArtifactError",
    "CompleteTree",
    "Ensemble",
    "EnsembleError",
    "Feature",
    "FeatureError",
    "FeatureSpec",
    "FeatureVector",
    "Figure",
    "Layout",
    "Metrics",
    "ModelArtifact",
    "ModelCard",
    "ModelError",
    "Node",
    "ObservationSource",
    "Quantizer",
    "Recipe",
    "Registry",
    "Tree",
    "UnknownModel",
    "catalogue_for",
    "default_model_dir",
    "extract",
    "layout",
    "margins",
    "path_margins",
    "recipe",
    "sigmoid",
    "to_fhir",
]
