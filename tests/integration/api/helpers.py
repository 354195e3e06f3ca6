"""Helpers for the API v2 tests: an app on a real SQLite file, a fake clock, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from callhook.api.app import create_app
from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.store import integrations as integration_store
from tests.factories import AccountInfo, make_account, make_platform, make_token

BOTH = ("webhooks.read", "webhooks.write")
URL_A = "https://example.com/webhooks/sipsim"
URL_B = "https://b.example.net/hooks"
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


@dataclass
class Api:
    """An app on a fresh SQLite file with account A (configured) and its full-scope token."""

    platform: Platform
    clock: FakeClock
    app: FastAPI
    client: TestClient
    account: AccountInfo
    token: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def get(self, path: str, **kw: Any) -> Any:
        kw.setdefault("headers", self.auth())
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        kw.setdefault("headers", self.auth())
        return self.client.post(path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        kw.setdefault("headers", self.auth())
        return self.client.delete(path, **kw)

    def subscribed(self, account_id: str | None = None) -> tuple[str, ...]:
        with self.platform.db.read() as conn:
            integration = integration_store.get(conn, account_id or self.account.id)
        assert integration is not None
        return integration.subscribed_events


@contextmanager
def running_api(
    tmp_path: Path,
    *,
    url: str | None = URL_A,
    events: tuple[str, ...] = ("incoming_call_start", "incoming_call_end"),
    **settings: Any,
) -> Iterator[Api]:
    """An ``Api`` whose account A has ``url`` (None: integration without URL) and ``events``."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, seed=1, **settings)
    account = make_account(platform, url=url, events=events if url else ())
    token = make_token(platform, account.id, BOTH)
    app = create_app(platform.settings, platform=platform)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(platform, clock, app, client, account, token)
    platform.db.dispose()


def assert_error(response: Any, status: int, path: str | None = None) -> dict[str, Any]:
    """The response is the spec 002 error envelope with ``status``; returns the document."""
    import re

    assert response.status_code == status, response.text
    doc: dict[str, Any] = response.json()
    assert list(doc) == ["status", "errors", "request_id", "timestamp", "path"]
    assert doc["status"] == status
    assert isinstance(doc["errors"], list)
    assert doc["errors"]
    assert all(isinstance(e, str) and e for e in doc["errors"])
    assert re.match(TIMESTAMP, doc["timestamp"])
    assert doc["request_id"] == response.headers["X-Request-Id"]
    assert response.headers["content-type"] == "application/json"
    if path is not None:
        assert doc["path"] == path
    return doc


def assert_success(response: Any, status: int = 200) -> Any:
    """The response is the spec 002 success envelope; returns ``data``."""
    import re

    assert response.status_code == status, response.text
    doc = response.json()
    assert list(doc) == ["status", "request_id", "timestamp", "data"]
    assert doc["status"] == status
    assert re.match(TIMESTAMP, doc["timestamp"])
    assert doc["request_id"] == response.headers["X-Request-Id"]
    return doc["data"]
