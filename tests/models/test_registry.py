"""Model artifacts: ids from canonical bytes, deterministic training, verified loading, the on-demand cache."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

import models.train
from models.errors import ArtifactError, UnknownModel
from models.recipes import RECIPES
from models.registry import ENV_MODEL_DIR, ModelArtifact, Registry, canonical_json, default_model_dir


def _copy(registry: Registry, model_id: str, tmp_path: Path) -> Registry:
    copy = Registry(tmp_path / "copy")
    shutil.copytree(registry.root / model_id, copy.root / model_id)
    return copy


def test_model_id_is_the_sha256_of_the_canonical_artifact(artifacts: dict[str, ModelArtifact]) -> None:
    for artifact in artifacts.values():
        data = artifact.to_bytes()
        assert artifact.model_id == hashlib.sha256(data).hexdigest()
        assert data == canonical_json(json.loads(data))
        assert ModelArtifact.from_bytes(data, model_id=artifact.model_id) == artifact
    assert len({a.model_id for a in artifacts.values()}) == len(RECIPES)


def test_training_twice_gives_the_same_model_id(artifacts: dict[str, ModelArtifact], tmp_path: Path) -> None:
    again = Registry(tmp_path).ensure("diabetes")
    assert again.model_id == artifacts["diabetes"].model_id
    assert again.to_bytes() == artifacts["diabetes"].to_bytes()


def test_ensure_loads_from_the_cache_without_training(
    registry: Registry, artifacts: dict[str, ModelArtifact], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("trained again")

    monkeypatch.setattr(models.train, "train", refuse)
    for name, artifact in artifacts.items():
        assert registry.ensure(name).model_id == artifact.model_id
    assert sorted(registry.ids()) == sorted(a.model_id for a in artifacts.values())


def test_the_cache_directory_keeps_itself_out_of_git(registry: Registry, artifacts: dict[str, ModelArtifact]) -> None:
    assert (registry.root / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_changed_artifact_byte_is_refused(
    registry: Registry, artifacts: dict[str, ModelArtifact], tmp_path: Path
) -> None:
    model_id = artifacts["breast-small"].model_id
    copy = _copy(registry, model_id, tmp_path)
    path = copy.root / model_id / "artifact.json"
    data = bytearray(path.read_bytes())
    # A digit inside a leaf value: still valid JSON, a different model.
    at = data.index(b'"split_conditions":[') + len(b'"split_conditions":[') + 3
    data[at] = ord("7") if data[at] != ord("7") else ord("3")
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"do not hash to model id {model_id}"):
        copy.load(model_id)


def test_a_changed_figure_is_refused(registry: Registry, artifacts: dict[str, ModelArtifact], tmp_path: Path) -> None:
    model_id = artifacts["diabetes"].model_id
    copy = _copy(registry, model_id, tmp_path)
    roc = copy.root / model_id / "roc.png"
    roc.write_bytes(roc.read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match=r"figure roc\.png .* does not match its digest"):
        copy.load(model_id)


def test_same_content_in_other_bytes_is_not_an_artifact(artifacts: dict[str, ModelArtifact]) -> None:
    pretty = json.dumps(artifacts["diabetes"].to_json(), indent=1).encode()
    with pytest.raises(ArtifactError, match="not in canonical form"):
        ModelArtifact.from_bytes(pretty, model_id=hashlib.sha256(pretty).hexdigest())
    for garbage in (b"", b"\xff\xfe", b"[]", b'{"format": "pchr-model-artifact/1"}'):
        with pytest.raises(ArtifactError):
            ModelArtifact.from_bytes(garbage)


def test_an_artifact_whose_parts_disagree_is_refused(artifacts: dict[str, ModelArtifact]) -> None:
    diabetes, breast = artifacts["diabetes"], artifacts["breast"]
    mixed = ModelArtifact(diabetes.booster, breast.spec, diabetes.card)
    with pytest.raises(ArtifactError, match="booster has 7 features, spec 30"):
        ModelArtifact.from_bytes(mixed.to_bytes())


def test_unknown_models_and_malformed_ids(registry: Registry) -> None:
    with pytest.raises(UnknownModel, match="no stored model"):
        registry.load("0" * 64)
    with pytest.raises(UnknownModel, match="is not a model id"):
        registry.load("../../etc/passwd")
    with pytest.raises(UnknownModel, match="no model recipe 'heart'"):
        registry.ensure("heart")


def test_the_model_directory_comes_from_the_environment(tmp_path: Path) -> None:
    assert default_model_dir({ENV_MODEL_DIR: str(tmp_path)}) == tmp_path
    assert default_model_dir({}) == Path.home() / ".cache" / "pchr" / "models"
