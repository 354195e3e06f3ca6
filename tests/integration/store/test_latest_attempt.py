"""A delivery's latest attempt lives on its own row, earlier ones in ``attempts``
(``store/attempts.py``, migration 0010_latest_attempt), on both backends: the detail shows
every attempt in order whatever their number, a redelivery's attempt moves the earlier one
out, and the migration moves attempts both ways without changing what the detail shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from callhook.core import stored_headers
from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store.db import SCHEMA_REVISION
from callhook.store.migrate import alembic_config, downgrade, upgrade
from callhook.store.tables import attempts, deliveries
from tests import factories
from tests.integration.store.test_migration_compact import T0

HEADERS = {
    "Content-Type": "application/json",
    "User-Agent": "Callhook/9.9.9",
    "X-Webhook-Event": "sms",
}


def _attempt(platform: Platform, *, code: int, retry: bool) -> None:
    """A second later, the one due delivery answered ``code``: a retry after it, or its end;
    the excerpt and headers name the attempt."""
    assert isinstance(platform.clock, FakeClock)
    platform.clock.advance(1)
    [_] = factories.attempt_due(
        platform,
        status=code,
        retry_in=timedelta(0) if retry else None,
        duration_ms=code / 10,
        response_body=lambda job: f"answer {job.attempt_number}",
        request_headers=lambda job: stored_headers.pack(
            {**HEADERS, "X-Attempt": str(job.attempt_number)},
            event_id=job.event_id,
            event=job.event,
            attempt=job.attempt_number,
        ),
    )


def _log(platform: Platform, delivery_id: str) -> list[tuple[Any, ...]]:
    with platform.db.read() as conn:
        detail = delivery_store.get(conn, delivery_id)
    return [
        (
            a.number,
            a.started_at,
            a.duration_ms,
            a.status_code,
            a.response_body,
            a.error_class,
            a.error_message,
            a.request_headers,
        )
        for a in detail.attempt_log
    ]


def _rows(platform: Platform) -> tuple[int, int]:
    """(rows of ``attempts``, deliveries holding their latest attempt)."""
    with platform.db.read() as conn:
        earlier = conn.execute(select(func.count()).select_from(attempts)).scalar_one()
        held = conn.execute(
            select(func.count()).where(deliveries.c.holds_attempt.is_(True))
        ).scalar_one()
    return int(earlier), int(held)


def _published(platform: Platform) -> str:
    account = factories.make_account(platform, url="https://a.example.com/h")
    published = factories.publish_sample(platform, account.id, "sms")
    assert published.delivery_id is not None
    return published.delivery_id


def test_every_attempt_is_shown_in_order_and_only_the_earlier_ones_are_rows(
    platform_factory: Any,
) -> None:
    platform: Platform = platform_factory(clock=FakeClock(T0))
    delivery_id = _published(platform)
    assert _log(platform, delivery_id) == []
    _attempt(platform, code=500, retry=True)
    assert _rows(platform) == (0, 1)
    _attempt(platform, code=503, retry=True)
    _attempt(platform, code=200, retry=False)
    assert _rows(platform) == (2, 1)
    log = _log(platform, delivery_id)
    assert [(n, code, body, error) for n, _, _, code, body, error, _, _ in log] == [
        (1, 500, "answer 1", "http_status"),
        (2, 503, "answer 2", "http_status"),
        (3, 200, "answer 3", None),
    ]
    assert [t for _, t, *_ in log] == [T0 + timedelta(seconds=s) for s in (1, 2, 3)]
    assert [ms for _, _, ms, *_ in log] == [50.0, 50.3, 20.0]
    assert [message for *_, message, _ in log] == ["HTTP 500", "HTTP 503", None]
    assert [(h or "").count('"X-Attempt":"') for *_, h in log] == [1, 1, 1]
    assert [f'"X-Attempt":"{n}"' in (h or "") for n, *_, h in log] == [True, True, True]

    # A redelivery's attempt is the fourth: the third moves out of the row first.
    with platform.db.write() as conn:
        delivery_store.redeliver(conn, delivery_id, now=platform.clock.now())
    _attempt(platform, code=200, retry=False)
    assert _rows(platform) == (3, 1)
    assert [entry[0] for entry in _log(platform, delivery_id)] == [1, 2, 3, 4]
    assert _log(platform, delivery_id)[:3] == log


def test_the_migration_moves_each_latest_attempt_both_ways(platform_factory: Any) -> None:
    platform: Platform = platform_factory(clock=FakeClock(T0))
    once = _published(platform)
    _attempt(platform, code=200, retry=False)
    twice = _published(platform)
    _attempt(platform, code=500, retry=True)
    _attempt(platform, code=200, retry=False)
    untried = _published(platform)
    shown = {d: _log(platform, d) for d in (once, twice, untried)}
    assert [len(v) for v in shown.values()] == [1, 2, 0]
    assert _rows(platform) == (1, 2)

    downgrade(platform.db, "0009_binary_ids")
    with platform.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(attempts)).scalar_one() == 3
    upgrade(platform.db)
    assert _rows(platform) == (1, 2)
    assert {d: _log(platform, d) for d in shown} == shown


def test_the_code_names_the_newest_migration(platform_factory: Any) -> None:
    # ``set_up_database`` refuses a database at any other revision (cli/common.py).
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [SCHEMA_REVISION]
    platform: Platform = platform_factory()
    assert platform.db.schema_revision() == SCHEMA_REVISION
    downgrade(platform.db, "0009_binary_ids")
    assert platform.db.schema_revision() == "0009_binary_ids"
