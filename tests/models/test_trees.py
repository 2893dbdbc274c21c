"""The plaintext reference evaluator against XGBoost itself, the complete-tree layout and public resolution."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from models.errors import EnsembleError
from models.recipes import RECIPES
from models.registry import ModelArtifact
from models.train import Split, xgboost_margins
from models.trees import PADDING, Ensemble, Tree, complete, layout, margins, path_margins, sigmoid

MODELS = sorted(RECIPES)


def _hide(x: np.ndarray, rate: float, seed: int) -> np.ndarray:
    out = x.copy()
    out[np.random.default_rng(seed).random(out.shape) < rate] = np.nan
    return out


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("missing_rate", [0.0, 0.3, 0.8])
def test_reference_margins_equal_xgboost_on_held_out_rows(
    name: str, missing_rate: float, artifacts: dict[str, ModelArtifact], splits: dict[str, Split]
) -> None:
    artifact = artifacts[name]
    x = _hide(splits[name].x_test, missing_rate, seed=11)
    ours = margins(artifact.ensemble, x)
    theirs = xgboost_margins(artifact.booster_bytes(), x)
    assert np.max(np.abs(ours - theirs)) <= 1e-5


@pytest.mark.parametrize("name", MODELS)
def test_reference_margins_equal_xgboost_off_the_grid_and_with_whole_rows_missing(
    name: str, artifacts: dict[str, ModelArtifact], splits: dict[str, Split]
) -> None:
    # Raw values between grid points, far outside the grid, and rows with nothing present at all.
    artifact = artifacts[name]
    rng = np.random.default_rng(5)
    x = splits[name].x_test.copy()
    x = x * rng.uniform(0.5, 1.5, size=x.shape)
    x[::7] *= 100
    x[::5] = np.nan
    ours = margins(artifact.ensemble, x)
    theirs = xgboost_margins(artifact.booster_bytes(), x)
    assert np.max(np.abs(ours - theirs)) <= 1e-5
    assert np.all(ours[::5] == ours[0])


@pytest.mark.parametrize("name", MODELS)
def test_path_margins_with_public_resolution_equal_the_reference(
    name: str, artifacts: dict[str, ModelArtifact], splits: dict[str, Split]
) -> None:
    ensemble = artifacts[name].ensemble
    lay = layout(ensemble)
    for rate in (0.0, 0.3):
        x = _hide(splits[name].x_test, rate, seed=3)
        assert np.max(np.abs(path_margins(lay, x) - margins(ensemble, x))) <= 1e-9


def test_shapes_are_the_recipes(artifacts: dict[str, ModelArtifact]) -> None:
    for name, artifact in artifacts.items():
        r = RECIPES[name]
        assert len(artifact.ensemble.trees) == r.rounds
        assert artifact.ensemble.depth <= r.max_depth
        lay = layout(artifact.ensemble, r.max_depth)
        assert {len(t.nodes) for t in lay.trees} == {2**r.max_depth - 1}
        assert {len(t.leaves) for t in lay.trees} == {2**r.max_depth}


@pytest.mark.parametrize("name", MODELS)
def test_every_threshold_sits_half_a_step_between_grid_points(name: str, artifacts: dict[str, ModelArtifact]) -> None:
    # What encrypted comparisons rely on: a grid value is never closer than half a step to a threshold.
    artifact = artifacts[name]
    for tree in artifact.ensemble.trees:
        for f, t in zip(tree.feature, tree.threshold, strict=True):
            if f < 0:
                continue
            q = artifact.spec.features[f].quantizer
            k = q.threshold_unit(t) * (q.levels - 1)
            assert abs(k - math.floor(k) - 0.5) < 1e-4
            assert -0.5 <= k <= q.levels - 0.5


def test_resolve_decides_missing_features_and_padding_in_the_clear(artifacts: dict[str, ModelArtifact]) -> None:
    lay = layout(artifacts["diabetes"].ensemble)
    everything = (1 << lay.n_features) - 1
    full = lay.resolve(everything)
    for tree, decisions in zip(lay.trees, full, strict=True):
        for node, d in zip(tree.nodes, decisions, strict=True):
            assert d is (True if node.feature == PADDING else None)
    glucose_missing = lay.resolve(everything & ~1)
    for tree, decisions in zip(lay.trees, glucose_missing, strict=True):
        for node, d in zip(tree.nodes, decisions, strict=True):
            if node.feature == 0:
                assert d is node.default_left
    assert lay.comparisons(0) == 0
    assert lay.comparisons(everything & ~1) < lay.comparisons(everything)
    with pytest.raises(EnsembleError, match="does not fit"):
        lay.resolve(1 << lay.n_features)


def test_complete_pads_a_shallow_leaf_with_copies_of_its_value() -> None:
    #        0: x0 < 1
    #       /          \
    #   1: leaf -1   2: x1 < 5
    #                /       \
    #          3: leaf 2   4: leaf 3
    tree = Tree(
        feature=(0, -1, 1, -1, -1),
        threshold=(1.0, math.nan, 5.0, math.nan, math.nan),
        left=(1, -1, 3, -1, -1),
        right=(2, -1, 4, -1, -1),
        default_left=(True, False, False, False, False),
        value=(0.0, -1.0, 0.0, 2.0, 3.0),
    )
    full = complete(tree)
    assert full.depth == 2
    assert [n.feature for n in full.nodes] == [0, PADDING, 1]
    assert full.leaves == (-1.0, -1.0, 2.0, 3.0)
    ensemble = Ensemble((tree,), 0.0, 2, "binary:logistic")
    x = np.array([[0.0, 0.0], [2.0, 4.0], [2.0, 6.0], [np.nan, 9.0], [3.0, np.nan]])
    expected = [-1.0, 2.0, 3.0, -1.0, 3.0]
    assert margins(ensemble, x).tolist() == expected
    assert path_margins(layout(ensemble), x).tolist() == expected
    assert sigmoid(np.array([0.0]))[0] == 0.5


def _model(artifact: ModelArtifact) -> dict:
    return copy.deepcopy(dict(artifact.booster))


def test_base_score_is_read_as_a_probability(artifacts: dict[str, ModelArtifact]) -> None:
    model = _model(artifacts["diabetes"])
    raw = model["learner"]["learner_model_param"]["base_score"]
    p = float(str(raw).strip("[]"))
    assert artifacts["diabetes"].ensemble.base_margin == pytest.approx(math.log(p / (1 - p)))
    model["learner"]["learner_model_param"]["base_score"] = "5E-1"  # the scalar form older XGBoost writes
    assert Ensemble.from_xgboost_json(model).base_margin == 0.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["learner"]["gradient_booster"].__setitem__("name", "dart"), "only gbtree"),
        (lambda m: m["learner"]["objective"].__setitem__("name", "reg:squarederror"), "not supported"),
        (lambda m: m["learner"]["learner_model_param"].__setitem__("num_target", "2"), "single-output"),
        (lambda m: m["learner"]["learner_model_param"].__setitem__("base_score", "[1E0]"), "not a probability"),
        (
            lambda m: m["learner"]["gradient_booster"]["model"]["trees"][0]["split_type"].__setitem__(0, 1),
            "categorical",
        ),
        (lambda m: m["learner"].pop("gradient_booster"), "not an XGBoost JSON model"),
        (
            lambda m: m["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"].__setitem__(0, 0),
            "rooted at node 0",
        ),
    ],
)
def test_boosters_the_evaluators_cannot_handle_are_refused(
    edit: object, message: str, artifacts: dict[str, ModelArtifact]
) -> None:
    model = _model(artifacts["diabetes"])
    assert callable(edit)
    edit(model)
    with pytest.raises(EnsembleError, match=message):
        Ensemble.from_xgboost_json(json.dumps(model))


def test_rows_of_the_wrong_width_are_refused(artifacts: dict[str, ModelArtifact]) -> None:
    with pytest.raises(EnsembleError, match="rows of 7 features"):
        margins(artifacts["diabetes"].ensemble, np.zeros((2, 6)))
