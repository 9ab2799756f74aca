"""Fixtures for the tool tests: a seeded reference enterprise per test (a copy of one
seeded template file) and its registry, on a fixed clock."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import ToolRegistry, build_reference_registry
from tests.tools.tools_cases import FixedClock


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "enterprise.sqlite"
    with Enterprise(path) as enterprise:
        enterprise.seed()
    return path  # closing the last connection checkpoints the WAL into the file


@pytest.fixture
def db_path(seeded_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "enterprise.sqlite"
    shutil.copyfile(seeded_template, path)
    return path


@pytest.fixture
def enterprise(db_path: Path) -> Iterator[Enterprise]:
    with Enterprise(db_path, clock=FixedClock()) as ent:
        yield ent


@pytest.fixture
def registry(enterprise: Enterprise) -> ToolRegistry:
    return build_reference_registry(enterprise)
