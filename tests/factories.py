"""Factories: build exactly the objects a test needs, with real SQLite files."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callhook.core.clock import Clock
from callhook.events import SUBSCRIBABLE_EVENTS, sample_publish_request
from callhook.platform import Platform
from callhook.publish import Published, parse_event
from callhook.settings import Settings
from callhook.store import accounts as account_store
from callhook.store import integrations as integration_store
from callhook.store import tokens as token_store
from callhook.store.migrate import upgrade


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'callhook.db'}",
        "allow_unsafe_targets": True,  # test receivers listen on loopback
        "poll_interval": 0.05,
        "log_json": True,
    }
    defaults.update(overrides)
    return Settings(**defaults)


def make_platform(
    tmp_path: Path, *, clock: Clock | None = None, seed: int | None = None, **overrides: Any
) -> Platform:
    """A platform on a fresh, migrated SQLite file."""
    settings = make_settings(tmp_path, **overrides)
    rng = random.Random(seed) if seed is not None else None
    platform = Platform.create(settings, clock=clock, rng=rng)
    upgrade(platform.db)
    return platform


@dataclass(frozen=True)
class AccountInfo:
    id: str
    secret: str


def make_account(
    platform: Platform,
    *,
    url: str | None = None,
    events: Iterable[str] = SUBSCRIBABLE_EVENTS,
    retry_policy: str = "exponential",
    enabled: bool = True,
    name: str = "Acme Telecom",
) -> AccountInfo:
    """An account; with ``url``, a configured integration subscribed to ``events``."""
    now = platform.clock.now()
    with platform.db.write() as conn:
        account = account_store.create(conn, name=name, now=now, rng=platform.rng)
        integration_store.ensure(conn, account.id, now=now, box=platform.box, rng=platform.rng)
        if url is not None:
            integration_store.set_url(conn, account.id, url, now=now, box=platform.box, rng=platform.rng)
            integration_store.subscribe(conn, account.id, list(events), now=now)
            integration_store.set_retry_policy(conn, account.id, retry_policy, now=now)
            integration_store.set_enabled(conn, account.id, enabled, now=now)
        secret = integration_store.active_secrets(conn, account.id, now=now, box=platform.box)[0]
    return AccountInfo(id=account.id, secret=secret.secret)


def make_token(platform: Platform, account_id: str | None, scopes: Iterable[str]) -> str:
    with platform.db.write() as conn:
        _, plaintext = token_store.create(
            conn, account_id=account_id, scopes=list(scopes), now=platform.clock.now(),
            rng=platform.rng,
        )
    return plaintext


def sample_event(event: str = "incoming_call_start", *, seed: int = 0, clock: Clock | None = None,
                 account_id: str | None = None) -> dict[str, Any]:
    """A valid publish request for ``event`` (deterministic for a seed)."""
    from datetime import UTC, datetime

    now = clock.now() if clock else datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    return sample_publish_request(event, random.Random(seed), now=now, account_id=account_id)


def publish_sample(
    platform: Platform, account_id: str, event: str = "incoming_call_start", *, seed: int = 0,
    idempotency_key: str | None = None,
) -> Published:
    item = sample_event(event, seed=seed, clock=platform.clock, account_id=account_id)
    if idempotency_key is not None:
        item["idempotency_key"] = idempotency_key
    return platform.publisher.publish([parse_event(item)])[0]
