"""Models trained once per test session into a temporary registry (a few seconds), and their held-out splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.recipes import RECIPES
from models.registry import ModelArtifact, Registry
from models.train import Split, split


@pytest.fixture(scope="session")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def registry(registry_root: Path) -> Registry:
    return Registry(registry_root)


@pytest.fixture(scope="session")
def artifacts(registry: Registry) -> dict[str, ModelArtifact]:
    return {name: registry.ensure(name) for name in RECIPES}


@pytest.fixture(scope="session")
def splits() -> dict[str, Split]:
    return {name: split(r) for name, r in RECIPES.items()}
