"""Shared fixtures: only the expensive-to-build, the rest comes from ``tests.factories``.

Backends: a test (or a whole directory, through an autouse fixture in its ``conftest.py``) that
asks for ``backend`` or ``platform_factory`` runs once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callhook.platform import Platform
from tests import factories
from tests.support.receiver import Tls


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "callhook.db"


@pytest.fixture(scope="session", autouse=True)
def _drop_test_schemas() -> Iterator[None]:
    yield
    factories.drop_schemas()


@pytest.fixture(autouse=True)
def _dispose_platforms() -> Iterator[None]:
    # PostgreSQL has a connection limit; give each test's pooled connections back.
    yield
    factories.dispose_created()


@pytest.fixture(params=factories.BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on each backend; ``make_platform`` inside it targets that backend."""
    name: str = request.param
    with factories.use_backend(name):
        yield name


@pytest.fixture
def platform_factory(backend: str, tmp_path: Path) -> Callable[..., Platform]:
    """``platform_factory(**settings)``: a fresh migrated platform on this test's backend."""

    def make(**overrides: Any) -> Platform:
        return factories.make_platform(tmp_path, **overrides)

    return make
