"""A database that cannot take work answers 503 with Retry-After and the cause, /readyz says
not ready, the episode is logged once, and everything recovers without a restart (issue 11,
class 9). Real outages: a small filesystem filled to the last byte (SQLite), a TCP path to the
real PostgreSQL server that is cut and restored."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callhook.api.app import create_app
from callhook.platform import Platform
from callhook.store.tables import events
from tests import factories
from tests.factories import make_account, make_platform, make_token, sample_event
from tests.support.outage import TcpProxy, fill, small_filesystem

URL = "/internal/v1/events"
DISK_FULL = "The database's disk is full, so nothing was stored. Retry later."
UNREACHABLE = "The database cannot be reached, so nothing was stored. Retry later."


def _episode_logs(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    started = [
        str(getattr(r, "cause", ""))
        for r in caplog.records
        if r.getMessage().startswith("database unavailable")
    ]
    ended = [
        str(getattr(r, "cause", ""))
        for r in caplog.records
        if r.getMessage() == "database available again"
    ]
    return started, ended


def _event_count(platform: Platform) -> int:
    with platform.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def _assert_unavailable(response: object, message: str, retry_after: str) -> None:
    assert getattr(response, "status_code", None) == 503
    doc = response.json()  # type: ignore[attr-defined]
    assert doc["status"] == 503
    assert doc["errors"] == [message]
    assert doc["path"] == URL
    assert response.headers["Retry-After"] == retry_after  # type: ignore[attr-defined]


@pytest.fixture
def full_disk_platform(tmp_path: Path) -> Iterator[tuple[Platform, Path]]:
    with small_filesystem(tmp_path, size_mib=24) as mount:
        platform = make_platform(tmp_path, database_url=f"sqlite:///{mount / 'callhook.db'}")
        try:
            yield platform, mount
        finally:
            platform.db.dispose()


def test_sqlite_on_a_full_disk_answers_503_and_recovers_when_space_returns(
    full_disk_platform: tuple[Platform, Path], caplog: pytest.LogCaptureFixture
) -> None:
    platform, mount = full_disk_platform
    account = make_account(platform, url="https://hooks.example.com/callhook")
    headers = {"Authorization": f"Bearer {make_token(platform, None, ['events.write'])}"}
    batch = {"events": [sample_event(account_id=account.id, seed=i) for i in range(200)]}
    with TestClient(create_app(platform.settings, platform=platform)) as client:
        assert client.post(URL, json=batch, headers=headers).status_code == 202
        assert client.get("/readyz").status_code == 200
        # An empty log, so the next commit needs new blocks (a log that had room would be
        # reused from its start), then not one byte left.
        checkpointer = platform.db.checkpointer
        assert checkpointer is not None
        with platform.db.writer_slot():
            assert checkpointer.reset()
        filler = fill(mount)
        caplog.set_level(logging.INFO)
        for seed in range(3):
            more = {"events": [sample_event(account_id=account.id, seed=1000 + seed)]}
            _assert_unavailable(client.post(URL, json=more, headers=headers), DISK_FULL, "30")
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "database": "disk_full"}
        assert _event_count(platform) == 200  # nothing half-written
        assert _episode_logs(caplog) == (["disk_full"], [])
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]

        filler.unlink()
        assert client.get("/readyz").json() == {"status": "ok", "database": "ok"}
        again = client.post(
            URL, json={"events": [sample_event(account_id=account.id, seed=7)]}, headers=headers
        )
        assert again.status_code == 202, again.text
        assert _event_count(platform) == 201
        assert _episode_logs(caplog) == (["disk_full"], ["disk_full"])


@pytest.fixture
def proxied_postgres(tmp_path: Path) -> Iterator[tuple[Platform, TcpProxy]]:
    with factories.use_backend("postgresql"):
        direct = urlsplit(factories.fresh_postgres_url())
        proxy = TcpProxy((direct.hostname or "127.0.0.1", direct.port or 5432)).start()
        netloc = f"{direct.username}@127.0.0.1:{proxy.port}"
        url = urlunsplit(direct._replace(netloc=netloc))
        platform = make_platform(tmp_path, database_url=url)
        try:
            yield platform, proxy
        finally:
            if not proxy.listening:
                proxy.restore()  # so the pool can close its connections cleanly
            platform.db.dispose()
            proxy.close()


def test_postgresql_out_of_reach_answers_503_and_recovers_when_it_is_back(
    proxied_postgres: tuple[Platform, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    platform, proxy = proxied_postgres
    account = make_account(platform, url="https://hooks.example.com/callhook")
    headers = {"Authorization": f"Bearer {make_token(platform, None, ['events.write'])}"}
    with TestClient(create_app(platform.settings, platform=platform)) as client:
        first = {"events": [sample_event(account_id=account.id, seed=1)]}
        assert client.post(URL, json=first, headers=headers).status_code == 202
        proxy.cut()
        caplog.set_level(logging.INFO)
        for seed in range(3):
            more = {"events": [sample_event(account_id=account.id, seed=100 + seed)]}
            _assert_unavailable(client.post(URL, json=more, headers=headers), UNREACHABLE, "5")
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "database": "unreachable"}
        assert _episode_logs(caplog) == (["unreachable"], [])

        proxy.restore()
        assert client.get("/readyz").json() == {"status": "ok", "database": "ok"}
        again = {"events": [sample_event(account_id=account.id, seed=2)]}
        assert client.post(URL, json=again, headers=headers).status_code == 202
        assert _event_count(platform) == 2
        assert _episode_logs(caplog) == (["unreachable"], ["unreachable"])
