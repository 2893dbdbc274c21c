"""Model cards: held-out metrics in a sane range, and what the card says about data, split and figures."""

from __future__ import annotations

import pytest

from models.card import ModelCard
from models.errors import ArtifactError
from models.registry import ModelArtifact, Registry

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("name", "min_auc"), [("diabetes", 0.75), ("breast", 0.95), ("breast-small", 0.95)])
def test_held_out_metrics_are_in_a_sane_range(name: str, min_auc: float, artifacts: dict[str, ModelArtifact]) -> None:
    metrics = artifacts[name].card.metrics
    assert metrics.auc > min_auc
    assert metrics.auc_missing > min_auc - 0.05  # a quarter of the values hidden
    assert metrics.accuracy > 0.7
    assert metrics.brier < 0.2


def test_card_describes_data_split_and_training(artifacts: dict[str, ModelArtifact]) -> None:
    diabetes = artifacts["diabetes"].card
    assert diabetes.data["n"] == 532
    assert diabetes.data["n_positive"] == 177
    assert diabetes.split["n_train"] + diabetes.split["n_test"] == 532
    assert diabetes.features == artifacts["diabetes"].spec.keys
    assert diabetes.training["params"]["tree_method"] == "exact"
    assert diabetes.training["params"]["nthread"] == 1
    breast = artifacts["breast"].card
    assert breast.data["n"] == 569
    assert breast.data["n_positive"] == 212  # malignant
    assert breast.training["rounds"] == 50
    assert breast.training["params"]["max_depth"] == 4
    assert ModelCard.from_json(breast.to_json()) == breast


def test_card_figures_are_stored_pngs(registry: Registry, artifacts: dict[str, ModelArtifact]) -> None:
    for artifact in artifacts.values():
        assert {f.kind for f in artifact.card.figures} == {"roc", "calibration"}
        for figure in artifact.card.figures:
            assert (registry.root / artifact.model_id / figure.path).read_bytes().startswith(PNG_SIGNATURE)


def test_card_refuses_paths_and_impossible_metrics(artifacts: dict[str, ModelArtifact]) -> None:
    card = artifacts["diabetes"].card.to_json()
    with pytest.raises(ArtifactError, match=r"plain \.png file name"):
        ModelCard.from_json({**card, "figures": [{**card["figures"][0], "path": "../roc.png"}]})
    with pytest.raises(ArtifactError, match="metric auc"):
        ModelCard.from_json({**card, "metrics": {**card["metrics"], "auc": 1.5}})
