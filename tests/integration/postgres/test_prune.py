"""Retention on both backends: what is old and delivered (or failed long ago) goes, with its
attempts, events and call counters; expired sessions and old failed sign-ins go whatever the
retention; everything else stays."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from typer.testing import CliRunner

from callhook.cli.main import app
from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.store import users as user_store
from callhook.store import web_sessions as session_store
from callhook.store.prune import prune
from callhook.store.tables import (
    call_sequences,
    deliveries,
    events,
    login_failures,
    web_sessions,
)
from tests.factories import attempt_due, count_attempts, make_account, publish_sample


def _deliver_all(platform: Platform, *, delivered: bool = True) -> int:
    return len(attempt_due(platform, status=200 if delivered else 500))


def _counts(platform: Platform) -> tuple[int, int, int]:
    """(deliveries, attempts made, events)."""
    with platform.db.read() as conn:
        rows, events_ = (
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (deliveries, events)
        )
    return rows, count_attempts(platform), events_


def test_prune_removes_old_delivered_and_keeps_the_rest(
    platform_factory: Callable[..., Platform],
) -> None:
    clock = FakeClock()
    platform = platform_factory(clock=clock, seed=11)
    account = make_account(platform, url="https://example.com/hook")
    muted = make_account(platform, url="https://example.com/other", enabled=False)
    for i in range(7):  # old and delivered: pruned
        publish_sample(platform, account.id, seed=i)
    publish_sample(platform, muted.id, seed=99)  # old, skipped (no delivery): pruned
    assert _deliver_all(platform) == 7
    publish_sample(platform, account.id, seed=60)  # failed longer ago than retention: pruned
    assert _deliver_all(platform, delivered=False) == 1
    clock.advance(86400 * 10)
    publish_sample(platform, account.id, seed=50)  # failed within retention: kept
    assert _deliver_all(platform, delivered=False) == 1
    clock.advance(86400 * 25)
    for i in range(3):  # recent and delivered: kept
        publish_sample(platform, account.id, seed=100 + i)
    assert _deliver_all(platform) == 3
    publish_sample(platform, account.id, seed=200)  # pending: kept
    assert _counts(platform) == (13, 12, 14)
    calls_before = _call_counters(platform)

    report = prune(
        platform.db, now=clock.now(), older_than=timedelta(days=30), batch_size=2, pause=0
    )

    assert (report.deliveries, report.attempts, report.events) == (8, 8, 9)
    assert report.batches >= 4  # small batches, not one long transaction
    assert _counts(platform) == (5, 4, 5)
    # A call's counter goes with its last event, and only then.
    assert _call_counters(platform) == _calls_with_events(platform)
    assert report.call_sequences == len(calls_before) - len(_call_counters(platform)) > 0
    with platform.db.read() as conn:
        left = {r.status for r in conn.execute(select(deliveries.c.status))}
    assert left == {"delivered", "failed", "pending"}
    again = prune(platform.db, now=clock.now(), older_than=timedelta(days=30), pause=0)
    assert (again.deliveries, again.events) == (0, 0)


def _call_counters(platform: Platform) -> set[tuple[str, str]]:
    with platform.db.read() as conn:
        rows = conn.execute(select(call_sequences.c.account_id, call_sequences.c.call_id))
        return {(r.account_id, r.call_id) for r in rows}


def _calls_with_events(platform: Platform) -> set[tuple[str, str]]:
    with platform.db.read() as conn:
        rows = conn.execute(
            select(events.c.account_id, events.c.call_id).where(events.c.call_id.is_not(None))
        )
        return {(r.account_id, r.call_id) for r in rows}


def test_expired_sessions_and_old_sign_in_failures_are_pruned_even_with_retention_off(
    platform_factory: Callable[..., Platform],
) -> None:
    clock = FakeClock()
    platform = platform_factory(clock=clock, seed=13)
    account = make_account(platform)
    start = clock.now()
    with platform.db.write() as conn:
        user = user_store.create(
            conn,
            account_id=account.id,
            email="ana@example.com",
            password="correct horse battery",
            now=start,
            rng=platform.rng,
        )
        for i in range(5):  # sessions started hours apart; 12 h lifetime
            session_store.create(conn, user_id=user.id, now=start + timedelta(hours=4 * i))
        for minutes in (0, 5, 50, 58):
            session_store.record_failure(
                conn, ["ip:10.0.0.1"], now=start + timedelta(minutes=minutes)
            )
    clock.advance(3600 * 13)  # sessions 0 (expired at 12 h) … ; failures all old
    now = clock.now()

    report = prune(platform.db, now=now, older_than=None, batch_size=2, pause=0)

    with platform.db.read() as conn:
        left = [r.expires_at for r in conn.execute(select(web_sessions.c.expires_at))]
        failures = conn.execute(select(func.count()).select_from(login_failures)).scalar_one()
    assert all(expires > now for expires in left)
    assert (report.sessions, len(left)) == (1, 4)
    assert (report.login_failures, failures) == (4, 0)
    assert report.deliveries == report.events == 0


def test_prune_command(platform_factory: Callable[..., Platform]) -> None:
    platform = platform_factory(seed=12)  # the real clock: the command uses it too
    account = make_account(platform, url="https://example.com/hook")
    publish_sample(platform, account.id)
    assert _deliver_all(platform) == 1
    url = platform.settings.database_url
    env = {"CALLHOOK_MASTER_KEY": platform.settings.master_key or ""}
    kept = CliRunner().invoke(app, ["prune", "--database-url", url, "--json"], env=env)
    assert kept.exit_code == 0, kept.output
    assert '"deliveries":0' in kept.output.replace(" ", "")
    gone = CliRunner().invoke(
        app, ["prune", "--older-than-days", "0", "--database-url", url, "--json"], env=env
    )
    assert gone.exit_code == 0, gone.output
    assert '"deliveries":1' in gone.output.replace(" ", "")
    assert _counts(platform) == (0, 0, 0)
