"""Factories: build exactly the objects a test needs, on real SQLite files or the real PostgreSQL.

The backend is SQLite unless a test runs under the ``backend`` fixture (``tests/conftest.py``),
or the whole run sets ``CALLHOOK_TEST_BACKEND=postgresql``. On PostgreSQL every platform gets a
fresh schema of the server at ``CALLHOOK_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); an unreachable server fails the test.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select

from callhook.core.clock import Clock
from callhook.core.outcome import ErrorClass
from callhook.events import SUBSCRIBABLE_EVENTS, sample_publish_request
from callhook.platform import Platform
from callhook.publish import Published, parse_event
from callhook.settings import Settings
from callhook.store import accounts as account_store
from callhook.store import endpoints as endpoint_store
from callhook.store import integrations as integration_store
from callhook.store import queue
from callhook.store import tokens as token_store
from callhook.store.migrate import upgrade
from callhook.store.queue import ClaimedJob
from callhook.store.tables import attempts, deliveries

BACKENDS = ("sqlite", "postgresql")
POSTGRES_URL = os.environ.get(
    "CALLHOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
#: The master key of every PostgreSQL test platform (PostgreSQL requires one; SQLite uses a file).
TEST_MASTER_KEY = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE"

_backend = os.environ.get("CALLHOOK_TEST_BACKEND", "sqlite")
if _backend not in BACKENDS:
    raise RuntimeError(f"CALLHOOK_TEST_BACKEND must be one of {BACKENDS}, not {_backend!r}")
if _backend == "postgresql":
    # Worker and CLI subprocesses of the PostgreSQL run read the key from the environment.
    os.environ.setdefault("CALLHOOK_MASTER_KEY", TEST_MASTER_KEY)
_created: list[Platform] = []
_schemas: list[str] = []


def current_backend() -> str:
    return _backend


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Make ``make_settings``/``make_platform`` target ``name`` inside the block."""
    global _backend
    if name not in BACKENDS:
        raise ValueError(name)
    previous, _backend = _backend, name
    try:
        yield
    finally:
        _backend = previous


def fresh_postgres_url() -> str:
    """A new, empty schema on the test server, as a URL whose connections use it."""
    import psycopg

    schema = f"chtest_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    _schemas.append(schema)
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}')}"


def drop_schemas() -> None:
    """Drop the schemas this run created (called once, at the end of the session)."""
    if not _schemas:
        return
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10) as conn:
        for schema in _schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    _schemas.clear()


def dispose_created() -> None:
    """Close the pooled connections of every platform made so far (after each test)."""
    while _created:
        _created.pop().db.dispose()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "allow_unsafe_targets": True,  # test receivers listen on loopback
        "poll_interval": 0.05,
        "log_json": True,
    }
    if "database_url" not in overrides:
        if _backend == "postgresql":
            defaults["database_url"] = fresh_postgres_url()
            defaults["master_key"] = TEST_MASTER_KEY
        else:
            defaults["database_url"] = f"sqlite:///{tmp_path / 'callhook.db'}"
    elif not str(overrides["database_url"]).startswith("sqlite"):
        defaults["master_key"] = TEST_MASTER_KEY
    defaults.update(overrides)
    return Settings(**defaults)


def make_platform(
    tmp_path: Path, *, clock: Clock | None = None, seed: int | None = None, **overrides: Any
) -> Platform:
    """A platform on a fresh, migrated database: a SQLite file, or a new PostgreSQL schema."""
    settings = make_settings(tmp_path, **overrides)
    rng = random.Random(seed) if seed is not None else None
    platform = Platform.create(settings, clock=clock, rng=rng)
    _created.append(platform)
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
            integration_store.set_url(
                conn, account.id, url, now=now, box=platform.box, rng=platform.rng
            )
            integration_store.subscribe(conn, account.id, list(events), now=now)
            integration_store.set_retry_policy(conn, account.id, retry_policy, now=now)
            integration_store.set_enabled(conn, account.id, enabled, now=now)
        secret = integration_store.active_secrets(conn, account.id, now=now, box=platform.box)[0]
    return AccountInfo(id=account.id, secret=secret.secret)


def make_endpoint(
    platform: Platform, account_id: str, url: str, events: Iterable[str] | None = None
) -> str:
    """Another endpoint of the account at ``url`` (every event, or ``events``); its id."""
    with platform.db.write() as conn:
        return endpoint_store.create(
            conn,
            account_id,
            url=url,
            subscribed_events=None if events is None else list(events),
            limit=20,
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
        ).id


def make_token(platform: Platform, account_id: str | None, scopes: Iterable[str]) -> str:
    with platform.db.write() as conn:
        _, plaintext = token_store.create(
            conn,
            account_id=account_id,
            scopes=list(scopes),
            now=platform.clock.now(),
            rng=platform.rng,
        )
    return plaintext


def sample_event(
    event: str = "incoming_call_start",
    *,
    seed: int = 0,
    clock: Clock | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    """A valid publish request for ``event`` (deterministic for a seed)."""
    from datetime import UTC, datetime

    now = clock.now() if clock else datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    return sample_publish_request(event, random.Random(seed), now=now, account_id=account_id)


def publish_sample(
    platform: Platform,
    account_id: str,
    event: str = "incoming_call_start",
    *,
    seed: int = 0,
    idempotency_key: str | None = None,
) -> Published:
    item = sample_event(event, seed=seed, clock=platform.clock, account_id=account_id)
    if idempotency_key is not None:
        item["idempotency_key"] = idempotency_key
    return platform.publisher.publish([parse_event(item)])[0]


def make_user(platform: Platform, account_id: str, email: str) -> str:
    """A dashboard user of the account (password ``correct horse battery``); its id."""
    from callhook.store import users as user_store

    with platform.db.write() as conn:
        user = user_store.create(
            conn,
            account_id=account_id,
            email=email,
            password="correct horse battery",
            now=platform.clock.now(),
            rng=platform.rng,
        )
    return user.id


def count_attempts(platform: Platform) -> int:
    """Every attempt recorded: each delivery's latest on its row, the earlier ones rows of
    ``attempts`` (``store/attempts.py``)."""
    with platform.db.read() as conn:
        earlier = conn.execute(select(func.count()).select_from(attempts)).scalar_one()
        latest = conn.execute(
            select(func.count()).where(deliveries.c.holds_attempt.is_(True))
        ).scalar_one()
    return int(earlier) + int(latest)


_CLAIM_IDS = itertools.count(1)


def attempt_due(
    platform: Platform,
    *,
    status: int | None = 200,
    error_class: ErrorClass | None = None,
    error_message: str | None = None,
    retry_in: timedelta | None = None,
    duration_ms: float = 1.0,
    response_body: Callable[[ClaimedJob], str] | None = None,
    request_headers: Callable[[ClaimedJob], bytes] | None = None,
    limit: int = 1000,
) -> list[ClaimedJob]:
    """Claim the due deliveries (up to ``limit``) and record one attempt each, as the worker would.

    Answered ``status`` (``None``: no answer): delivered when it is 2xx, else failed with
    ``error_class`` (``http_status`` for an answer) and ``error_message`` (default: ``HTTP
    <status>``, or the class), due again ``retry_in`` later (``timedelta(0)``: at once), failed
    for good if that is None.
    ``response_body`` and ``request_headers`` give each job's stored excerpt and packed headers.
    Returns the jobs.
    """
    delivered = status is not None and 200 <= status < 300
    if (delivered and error_class is not None) or (status is None and error_class is None):
        raise ValueError("a 2xx answer has no error class; no answer needs one")
    now = platform.clock.now()
    error = None if delivered else (error_class or ErrorClass.HTTP_STATUS)
    default = f"HTTP {status}" if status is not None else str(error)
    message = None if error is None else (error_message or default)
    with platform.db.write() as conn:
        jobs = queue.claim(
            conn,
            worker_id="test",
            claim_id=f"claim{next(_CLAIM_IDS)}",
            now=now,
            lease=timedelta(seconds=30),
            limit=limit,
            box=platform.box,
        )
        queue.complete(
            conn,
            [
                queue.AttemptResult(
                    job=job,
                    started_at=now,
                    duration_ms=duration_ms,
                    delivered=delivered,
                    status_code=status,
                    response_body=None if response_body is None else response_body(job),
                    error_class=error,
                    error_message=message,
                    next_attempt_at=None if delivered or retry_in is None else now + retry_in,
                    request_headers=None if request_headers is None else request_headers(job),
                )
                for job in jobs
            ],
        )
    return jobs
