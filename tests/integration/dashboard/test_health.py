"""Health at a glance: success rate, p95, per-hour counts and the failure banner."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, update

from callhook.core.outcome import ErrorClass
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store import stats
from callhook.store.tables import deliveries
from tests.factories import attempt_due, publish_sample
from tests.integration.dashboard.site import make_site, make_user, sign_in


def _attempt(
    platform: Platform,
    *,
    ms: float,
    status: int | None = 200,
    error: ErrorClass | None = None,
    retry: bool = False,
) -> None:
    """The first due delivery attempted (what the worker would do)."""
    [_] = attempt_due(
        platform,
        status=status,
        error_class=error,
        error_message="boom",  # the banner must build its text from the class and status
        retry_in=timedelta(0) if retry else None,
        duration_ms=ms,
        limit=1,
    )


def test_health_counts_rates_and_p95(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    platform = site.platform
    account_id = make_user(site, email="ana@example.com")
    # 19 fast successes and one slow one, spread over two hours, then 2 failures.
    for i in range(20):
        publish_sample(platform, account_id, seed=i)
        _attempt(platform, ms=1000.0 if i == 0 else 10.0 + i)
        site.clock.advance(360)
    for i in range(2):
        publish_sample(platform, account_id, seed=100 + i)
        _attempt(platform, ms=2000.0, status=None, error=ErrorClass.TIMEOUT)
        site.clock.advance(60)
    publish_sample(platform, account_id, seed=200)  # pending, not attempted
    with platform.db.read() as conn:
        health = stats.health(conn, account_id, now=platform.clock.now())
    assert (health.delivered, health.failed, health.pending) == (20, 2, 1)
    assert health.success_rate == 20 / 22
    assert health.attempts == 22
    # Nearest rank: ceil(0.95 * 22) = 21st of the sorted durations (19 fast, 1000, 2000, 2000).
    assert health.p95_ms == 2000.0
    assert len(health.hourly) == 24
    assert sum(b.delivered for b in health.hourly) == 20
    assert sum(b.failed for b in health.hourly) == 2
    assert health.hourly[-1].start == platform.clock.now().replace(
        minute=0, second=0, microsecond=0
    )
    # Outside the window: a day later, everything has aged out.
    site.clock.advance(25 * 3600)
    with platform.db.read() as conn:
        later = stats.health(conn, account_id, now=platform.clock.now())
    assert (later.delivered, later.failed, later.success_rate, later.p95_ms) == (0, 0, None, None)


def test_failure_streak_and_banner(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    platform = site.platform
    account_id = make_user(site, email="ana@example.com")
    publish_sample(platform, account_id, seed=1)
    _attempt(platform, ms=20.0)
    with platform.db.read() as conn:
        assert stats.failure_streak(conn, account_id, now=platform.clock.now()) is None
    site.clock.advance(600)  # 10:40
    first_failure = platform.clock.now()
    for i in range(3):
        publish_sample(platform, account_id, seed=10 + i)
        _attempt(platform, ms=2000.0, status=None, error=ErrorClass.TIMEOUT, retry=i == 2)
        site.clock.advance(30)
    publish_sample(platform, account_id, seed=20)
    _attempt(platform, ms=5.0, status=503, error=ErrorClass.HTTP_STATUS)
    with platform.db.read() as conn:
        streak = stats.failure_streak(conn, account_id, now=platform.clock.now())
    assert streak is not None
    assert streak.since == first_failure
    assert streak.consecutive == 4
    assert (streak.last_error, streak.last_status_code) == ("http_status", 503)

    sign_in(site.client, "ana@example.com")
    page = site.client.get("/dashboard").text
    assert "failing since 10:40 UTC, 4 consecutive failures, last error: HTTP 503" in page
    assert "<svg" in page
    assert 'role="img"' in page

    site.clock.advance(30)
    publish_sample(platform, account_id, seed=30)
    _attempt(platform, ms=12.0)
    with platform.db.read() as conn:
        assert stats.failure_streak(conn, account_id, now=platform.clock.now()) is None
    assert "failing since" not in site.client.get("/dashboard").text


def test_only_deliveries_of_the_look_back_are_read(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    platform = site.platform
    account_id = make_user(site, email="ana@example.com")
    old = publish_sample(platform, account_id, seed=1).delivery_id
    assert old is not None
    _attempt(platform, ms=2000.0, status=None, error=ErrorClass.TIMEOUT)
    site.clock.advance(stats.LOOK_BACK.total_seconds() + 1)
    # Redelivered two days on: its attempt now belongs to a delivery older than the look-back.
    with platform.db.write() as conn:
        delivery_store.redeliver(conn, old, now=platform.clock.now())
    _attempt(platform, ms=3000.0, status=None, error=ErrorClass.TIMEOUT)
    site.clock.advance(60)
    publish_sample(platform, account_id, seed=2)
    _attempt(platform, ms=5.0, status=503, error=ErrorClass.HTTP_STATUS)
    first = platform.clock.now()
    site.clock.advance(1)
    # Attempted now, created a minute inside the look-back: it counts.
    inside = publish_sample(platform, account_id, seed=3).delivery_id
    _attempt(platform, ms=4000.0, status=None, error=ErrorClass.TIMEOUT)
    now = platform.clock.now()
    with platform.db.write() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == inside)
            .values(created_at=now - stats.LOOK_BACK + timedelta(minutes=1))
        )
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    with platform.db.read() as conn:
        event.listen(conn.engine, "before_cursor_execute", seen)
        try:
            streak = stats.failure_streak(conn, account_id, now=now)
            health = stats.health(conn, account_id, now=now)
        finally:
            event.remove(conn.engine, "before_cursor_execute", seen)
        plans = [
            [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
            for sql, params in statements
            if "FROM attempts" in sql
        ]
    # The documented cost of the bound: the redelivery's attempt, a minute ago, is left out of
    # the streak and of the day's attempts (read whole, both would count it); the delivery
    # created a minute inside the look-back is in both.
    assert streak is not None
    assert (streak.since, streak.consecutive, streak.last_error) == (first, 2, "timeout")
    assert (health.attempts, health.p95_ms) == (2, 4000.0)
    # Each read of attempts is a range of the account's newest deliveries, not all of them.
    assert len(plans) == 5  # the streak: 3, the p95: 2
    for details in plans:
        assert any(
            "ix_deliveries_account_created (account_id=? AND created_at>?)" in d for d in details
        ), details


def test_retrying_deliveries_are_shown_and_the_banner_links_to_them(tmp_path: Path) -> None:
    """Issue 12 item 3: a pending delivery with an attempt made reads ``retrying`` with its next
    attempt time, the ``retrying`` filter lists exactly those, and the banner links there."""
    site = make_site(tmp_path)
    platform = site.platform
    account_id = make_user(site, email="ana@example.com")
    publish_sample(platform, account_id, seed=1)
    _attempt(platform, ms=2000.0, status=None, error=ErrorClass.TIMEOUT, retry=True)
    with platform.db.write() as conn:
        conn.execute(
            deliveries.update().values(next_attempt_at=platform.clock.now() + timedelta(minutes=4))
        )
    publish_sample(platform, account_id, seed=2)  # pending, never attempted
    sign_in(site.client, "ana@example.com")
    overview = site.client.get("/dashboard").text
    assert 'href="/dashboard/deliveries?status=retrying"' in overview
    listed = site.client.get("/dashboard/deliveries", params={"status": "retrying"}).text
    assert listed.count('class="pill wait"') == 1
    assert ">retrying</a>" in listed
    assert "next attempt at" in listed
    assert "10:34" in listed
    pending = site.client.get("/dashboard/deliveries", params={"status": "pending"}).text
    assert pending.count('class="pill wait"') == 2
