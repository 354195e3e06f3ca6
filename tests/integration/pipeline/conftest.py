"""Every pipeline test runs on both backends (SQLite file and PostgreSQL schema)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _on_each_backend(backend: str) -> str:
    return backend
