"""Training: a recipe in, a booster's JSON model, its model card and the card's figures out. Deterministic.

The only module that imports xgboost (and scikit-learn's split and metrics). Steps, for a
:class:`~models.recipes.Recipe`:

1. load the dataset (:mod:`models.datasets`) and snap every value to its feature's grid (:mod:`models.features`);
2. split off a stratified hold-out set (``sklearn.model_selection.train_test_split``, seeded);
3. augment the training rows with copies that hide values at random (seeded), see :mod:`models.recipes`;
4. train with ``xgboost.train`` (``binary:logistic``, ``tree_method="exact"``, ``nthread=1``, a fixed seed);
5. move every threshold to the midpoint of the two grid points it separates (:meth:`Quantizer.snap`) and check
   that no grid value changes side: the snapped model gives bit-identical margins on every training and
   held-out row, and every comparison keeps a margin of half a grid step for encrypted evaluation;
6. measure on the hold-out set: ROC AUC, accuracy at 0.5, ROC AUC with values hidden at the same rate as in
   training, Brier score; draw the ROC curve and the calibration plot (:mod:`models.figures`).

XGBoost: Chen and Guestrin 2016, "XGBoost: A Scalable Tree Boosting System" (KDD '16); the JSON model format is
described in :mod:`models.trees`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split

from models import datasets, figures
from models.card import Figure, Metrics, ModelCard
from models.errors import ModelError
from models.features import FeatureSpec
from models.recipes import Recipe, library_versions
from models.trees import snap_thresholds

__all__ = ["Split", "Trained", "booster_from_json", "split", "train", "xgboost_margins"]


@dataclass(frozen=True)
class Trained:
    """What training produces: the booster's JSON model, the card, and the card's PNGs by file name."""

    booster: dict[str, Any]
    card: ModelCard
    figures: dict[str, bytes]


def booster_from_json(model: dict[str, Any] | bytes) -> xgb.Booster:
    """An xgboost Booster from its JSON model (one thread, like training)."""
    raw = model if isinstance(model, bytes) else json.dumps(model).encode()
    booster = xgb.Booster(params={"nthread": 1})
    booster.load_model(bytearray(raw))
    return booster


def xgboost_margins(model: dict[str, Any] | bytes | xgb.Booster, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """XGBoost's own ``predict(DMatrix(x, missing=nan), output_margin=True)``, for comparisons."""
    booster = model if isinstance(model, xgb.Booster) else booster_from_json(model)
    matrix = xgb.DMatrix(np.asarray(x, dtype=np.float64), missing=np.nan, feature_names=booster.feature_names)
    return np.asarray(booster.predict(matrix, output_margin=True), dtype=np.float64)


def _hide(x: npt.NDArray[np.float64], rate: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    out = x.copy()
    out[rng.random(out.shape) < rate] = np.nan
    return out


@dataclass(frozen=True)
class Split:
    """A recipe's dataset on its feature grid, split into training and held-out rows."""

    data: datasets.Dataset
    x_train: npt.NDArray[np.float64]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float64]
    y_test: npt.NDArray[np.int64]


def split(recipe: Recipe) -> Split:
    """The recipe's stratified hold-out split of its quantized dataset (what the card's metrics are measured on)."""
    data = datasets.load(recipe.dataset)
    if data.spec != recipe.spec:
        raise ModelError(f"recipe {recipe.name} pairs dataset {data.name} with the wrong feature spec")
    x = recipe.spec.quantize(data.x)
    y = data.y
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=recipe.test_size, stratify=y, random_state=recipe.split_seed
    )
    return Split(data, x[train_idx], y[train_idx], x[test_idx], y[test_idx])


def train(recipe: Recipe) -> Trained:
    """Train ``recipe`` from scratch; the same recipe and library versions give the same bytes."""
    spec = recipe.spec
    held = split(recipe)
    data, x_train, y_train, x_test, y_test = held.data, held.x_train, held.y_train, held.x_test, held.y_test
    y = data.y

    rng = np.random.default_rng(recipe.seed)
    copies = [x_train] + [_hide(x_train, recipe.missing_rate, rng) for _ in range(recipe.missing_copies)]
    x_fit = np.vstack(copies)
    y_fit = np.tile(y_train, len(copies))

    names = list(spec.keys)
    fit = xgb.DMatrix(x_fit, label=y_fit, missing=np.nan, feature_names=names)
    raw_booster = xgb.train(recipe.params(), fit, num_boost_round=recipe.rounds)
    raw_model = json.loads(bytes(raw_booster.save_raw("json")))
    snapped_model = snap_thresholds(raw_model, [f.quantizer.snap for f in spec.features])
    booster = booster_from_json(snapped_model)
    # Round-trip through XGBoost so the stored JSON is exactly what XGBoost writes for the snapped model.
    model = json.loads(bytes(booster.save_raw("json")))

    x_hidden = _hide(x_test, recipe.missing_rate, np.random.default_rng(recipe.seed + 1))
    for rows in (x_fit, x_test, x_hidden):
        if not np.array_equal(xgboost_margins(raw_booster, rows), xgboost_margins(booster, rows)):
            raise ModelError(f"{recipe.name}: snapping thresholds to the grid changed a prediction")

    p_test = 1.0 / (1.0 + np.exp(-xgboost_margins(booster, x_test)))
    p_hidden = 1.0 / (1.0 + np.exp(-xgboost_margins(booster, x_hidden)))
    metrics = Metrics(
        auc=float(roc_auc_score(y_test, p_test)),
        accuracy=float(accuracy_score(y_test, p_test >= 0.5)),
        auc_missing=float(roc_auc_score(y_test, p_hidden)),
        missing_rate=float(recipe.missing_rate),
        brier=float(brier_score_loss(y_test, p_test)),
    )
    fpr, tpr, _ = roc_curve(y_test, p_test)
    observed, predicted = calibration_curve(y_test, p_test, n_bins=10, strategy="uniform")
    # Bin counts the way calibration_curve bins (searchsorted on the inner edges), empty bins dropped as it does.
    counts = np.bincount(np.searchsorted(np.linspace(0.0, 1.0, 11)[1:-1], p_test), minlength=10)
    pngs = {
        "roc.png": figures.roc_png(fpr, tpr, metrics.auc, recipe.title),
        "calibration.png": figures.calibration_png(
            predicted, observed, counts[counts > 0], metrics.brier, recipe.title
        ),
    }
    card = ModelCard(
        name=recipe.name,
        title=recipe.title,
        label=spec.label,
        data={
            "source": data.source,
            "origin": data.origin,
            "n": len(y),
            "n_positive": int(y.sum()),
            "digest": data.digest,
        },
        features=spec.keys,
        split={
            "method": "stratified hold-out (sklearn.model_selection.train_test_split)",
            "test_size": recipe.test_size,
            "seed": recipe.split_seed,
            "n_train": len(y_train),
            "n_test": len(y_test),
            "n_test_positive": int(y_test.sum()),
        },
        training=_training(recipe, spec),
        metrics=metrics,
        figures=(
            Figure("roc", "roc.png", hashlib.sha256(pngs["roc.png"]).hexdigest()),
            Figure("calibration", "calibration.png", hashlib.sha256(pngs["calibration.png"]).hexdigest()),
        ),
    )
    return Trained(model, card, pngs)


def _training(recipe: Recipe, spec: FeatureSpec) -> dict[str, Any]:
    return {
        "library": library_versions(),
        "params": recipe.params(),
        "rounds": recipe.rounds,
        "missing_augmentation": {
            "copies": recipe.missing_copies,
            "rate": recipe.missing_rate,
            "seed": recipe.seed,
        },
        "quantization": f"values snapped to the {spec.name} spec's grids; thresholds at grid midpoints",
    }
