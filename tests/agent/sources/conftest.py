"""Shared fixtures for the source tests: a churn mapping and a file writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from decisionops.agent.sources import FieldMapping

CHURN_DEFAULTS = {"kind": "churn", "model": "churn-gbm", "entity_type": "account"}


@pytest.fixture
def churn() -> FieldMapping:
    """Constants for kind/model/entity_type, everything else by its own column name."""
    return FieldMapping(defaults=CHURN_DEFAULTS)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8", newline="")
        return path

    return _write
