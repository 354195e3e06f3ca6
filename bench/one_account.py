"""The database the queue benches start from: migrated, one account whose primary endpoint
takes every event (its URL is never called: these benches claim and complete without HTTP)."""

from __future__ import annotations

import random
from datetime import datetime

from callhook.events import SUBSCRIBABLE_EVENTS
from callhook.platform import Platform
from callhook.store import accounts as account_store
from callhook.store import integrations as integration_store
from callhook.store.migrate import upgrade


def one_account(platform: Platform, *, rng: random.Random, now: datetime) -> str:
    """Migrate ``platform``'s database and create the account; returns its id."""
    upgrade(platform.db)
    with platform.db.write() as conn:
        account = account_store.create(conn, name="bench", now=now, rng=rng)
        integration_store.set_url(
            conn, account.id, "https://sink.example/hook", now=now, box=platform.box, rng=rng
        )
        integration_store.subscribe(conn, account.id, SUBSCRIBABLE_EVENTS, now=now)
    return account.id
