"""Shared fixtures: only the expensive-to-build, the rest comes from ``tests.factories``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.receiver import Tls


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "callhook.db"
