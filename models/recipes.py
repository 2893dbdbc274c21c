"""Training recipes: everything that decides a model's bytes, so that training on demand is reproducible.

A recipe names a dataset and a feature spec and fixes XGBoost's parameters (``binary:logistic``, the ``exact``
tree method, one thread, a fixed seed), the stratified hold-out split and its seed, and the missing-value
augmentation: the training rows are kept once as they are and again ``missing_copies`` times with each value
hidden with probability ``missing_rate``, so that every split learns a useful default direction. (Features
outside a grant's scope reach the model as missing, DESIGN.md section 5; trained on complete rows only, XGBoost
picks default directions arbitrarily.) The split is made before augmenting, so no held-out row leaks into
training.

The shapes are the issue's: ``breast`` 50 trees of depth 4, ``breast-small`` 20 trees of depth 3, ``diabetes``
30 trees of depth 3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from models.errors import UnknownModel
from models.features import SPECS, FeatureSpec

__all__ = ["RECIPES", "Recipe", "library_versions", "recipe"]


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    dataset: str
    spec_name: str
    rounds: int
    max_depth: int
    eta: float
    test_size: float = 0.25
    split_seed: int = 7
    missing_copies: int = 1
    missing_rate: float = 0.25
    seed: int = 0

    @property
    def spec(self) -> FeatureSpec:
        return SPECS[self.spec_name]

    def params(self) -> dict[str, Any]:
        """XGBoost's training parameters (``num_boost_round`` is ``rounds``)."""
        return {
            "objective": "binary:logistic",
            "eval_metric": "auc",
            "tree_method": "exact",
            "max_depth": self.max_depth,
            "eta": self.eta,
            "nthread": 1,
            "seed": self.seed,
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recipe:
        return cls(**dict(data))


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("diabetes", "Type-2 diabetes risk, 30 trees of depth 3", "pima", "diabetes", 30, 3, 0.1),
        Recipe("breast", "Breast mass malignancy, 50 trees of depth 4", "wdbc", "breast", 50, 4, 0.3),
        Recipe("breast-small", "Breast mass malignancy, 20 trees of depth 3", "wdbc", "breast", 20, 3, 0.3),
    )
}


def recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise UnknownModel(f"no model recipe {name!r} (known: {', '.join(sorted(RECIPES))})") from None


def library_versions() -> dict[str, str]:
    """Versions of the installed libraries whose output goes into a model's bytes."""
    versions = {}
    for dist in ("xgboost-cpu", "xgboost", "scikit-learn", "numpy", "matplotlib"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions
