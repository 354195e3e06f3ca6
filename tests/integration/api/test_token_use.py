"""Token checks take a read transaction unless a use is to be recorded (once a minute per
token); a revoked or expired token is refused at once, however recently it was used."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from callhook.store.tables import api_tokens
from callhook.store.tokens import hash_token
from tests.integration.api.helpers import Api, assert_error, assert_success, running_api

PATH = "/api/v2/webhooks"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with running_api(tmp_path) as api:
        yield api


def _last_used(api: Api) -> datetime | None:
    with api.platform.db.read() as conn:
        value: datetime | None = conn.execute(
            select(api_tokens.c.last_used_at).where(
                api_tokens.c.token_hash == hash_token(api.token)
            )
        ).scalar_one()
    return value


@contextmanager
def _counting_writes(api: Api) -> Iterator[list[int]]:
    """Count the write transactions the platform opens inside the block."""
    calls: list[int] = []
    real = api.platform.db.write

    @contextmanager
    def counted() -> Iterator[Any]:
        calls.append(1)
        with real() as conn:
            yield conn

    api.platform.db.write = counted  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        api.platform.db.write = real  # type: ignore[method-assign]


def test_a_use_is_recorded_once_a_minute_and_only_then_written(api: Api) -> None:
    start = api.clock.now()
    with _counting_writes(api) as writes:
        assert_success(api.get(PATH))
    assert _last_used(api) == start
    assert writes == [1]

    api.clock.advance(59)
    with _counting_writes(api) as writes:
        assert_success(api.get(PATH))
    assert _last_used(api) == start
    assert writes == []  # read only

    api.clock.advance(1)
    with _counting_writes(api) as writes:
        assert_success(api.get(PATH))
    assert _last_used(api) == start + timedelta(seconds=60)
    assert writes == [1]


def test_a_recently_used_token_is_refused_once_revoked(api: Api) -> None:
    assert_success(api.get(PATH))
    with api.platform.db.write() as conn:
        conn.execute(update(api_tokens).values(revoked_at=api.clock.now()))
    doc = assert_error(api.get(PATH), 401)
    assert doc["errors"] == ["Access token has been revoked."]


def test_a_recently_used_token_is_refused_once_expired(api: Api) -> None:
    with api.platform.db.write() as conn:
        conn.execute(update(api_tokens).values(expires_at=api.clock.now() + timedelta(seconds=30)))
    assert_success(api.get(PATH))
    api.clock.advance(30)
    doc = assert_error(api.get(PATH), 401)
    assert doc["errors"] == ["Access token has expired."]


def test_unknown_and_malformed_tokens_keep_their_messages(api: Api) -> None:
    for token in ("chk_" + "x" * 43, "not-a-token", "chk_" + "y" * 300):
        doc = assert_error(api.get(PATH, headers={"Authorization": f"Bearer {token}"}), 401)
        assert doc["errors"] == ["Invalid access token."]
