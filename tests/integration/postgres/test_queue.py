"""The queue's contracts on both backends: fencing, renewal, release, SKIP LOCKED, migrations."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from callhook.core.clock import FakeClock
from callhook.core.ids import new_id
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store import queue
from callhook.store.db import Database
from callhook.store.migrate import alembic_config, current, upgrade
from callhook.store.queue import AttemptResult, ClaimedJob
from callhook.store.tables import attempts, deliveries
from tests import factories
from tests.factories import make_account, publish_sample


def _head() -> str | None:
    """The newest migration's revision id."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


LEASE = timedelta(seconds=30)


def _claim(platform: Platform, worker: str, limit: int = 10) -> list[ClaimedJob]:
    now = platform.clock.now()
    with platform.db.write() as conn:
        return queue.claim(
            conn,
            worker_id=worker,
            claim_id=new_id("clm", now, platform.rng),
            now=now,
            lease=LEASE,
            limit=limit,
            box=platform.box,
        )


def _ok(platform: Platform, job: ClaimedJob, code: int = 200) -> AttemptResult:
    return AttemptResult(
        job=job,
        started_at=platform.clock.now(),
        duration_ms=1.0,
        delivered=code == 200,
        status_code=code,
        response_body=None,
        error_class=None if code == 200 else "http_status",
        error_message=None,
        next_attempt_at=None,
    )


def _publish(platform: Platform, count: int) -> list[str]:
    account = make_account(platform, url="https://example.com/hook")
    return [publish_sample(platform, account.id, seed=i).id for i in range(count)]


def test_a_worker_whose_lease_expired_cannot_complete_over_the_new_owner(
    platform_factory: Callable[..., Platform],
) -> None:
    clock = FakeClock()
    platform = platform_factory(clock=clock, seed=3)
    _publish(platform, 1)
    [old] = _claim(platform, "worker-a")
    clock.advance(LEASE.total_seconds() + 1)  # worker-a stalls past its lease
    [new] = _claim(platform, "worker-b")
    assert new.delivery_id == old.delivery_id
    assert new.claim_id != old.claim_id

    with platform.db.write() as conn:
        # The stale worker can neither renew nor record (a 500 over the new owner's work)…
        assert queue.renew_lease(conn, [old], now=clock.now(), lease=LEASE) == set()
        assert queue.complete(conn, [_ok(platform, old, code=500)]) != []
    with platform.db.write() as conn:
        # …while the new owner can do both.
        assert queue.renew_lease(conn, [new], now=clock.now(), lease=LEASE) == {new.delivery_id}
        assert queue.complete(conn, [_ok(platform, new)]) == []
    with platform.db.read() as conn:
        delivery = delivery_store.get(conn, new.delivery_id)
        assert delivery.status == "delivered"
        assert [a.status_code for a in delivery.attempt_log] == [200]
        # …and the stale one cannot release the row either.
        assert queue.release(conn, [old]) == 0


def test_renewal_keeps_a_long_attempt_from_being_claimed_again(
    platform_factory: Callable[..., Platform],
) -> None:
    clock = FakeClock()
    platform = platform_factory(clock=clock, seed=4)
    _publish(platform, 3)
    held = _claim(platform, "worker-a")
    assert len(held) == 3
    for _ in range(4):  # four times two-thirds of a lease: far past the original expiry
        clock.advance(LEASE.total_seconds() * 2 / 3)
        with platform.db.write() as conn:
            renewed = queue.renew_lease(conn, held, now=clock.now(), lease=LEASE)
        assert renewed == {j.delivery_id for j in held}
        assert _claim(platform, "worker-b") == []
    clock.advance(LEASE.total_seconds() + 1)  # renewal stops (worker died): others take over
    assert len(_claim(platform, "worker-b")) == 3


def test_release_hands_jobs_back_at_once(platform_factory: Callable[..., Platform]) -> None:
    platform = platform_factory(clock=FakeClock(), seed=5)
    _publish(platform, 4)
    held = _claim(platform, "worker-a")
    assert _claim(platform, "worker-b") == []
    with platform.db.write() as conn:
        assert queue.release(conn, held) == 4
    again = _claim(platform, "worker-b")
    assert {j.delivery_id for j in again} == {j.delivery_id for j in held}
    assert {j.attempt_number for j in again} == {1}  # a release is not an attempt


@pytest.mark.usefixtures("backend")
def test_migrations_apply_twice_without_change(tmp_path: object) -> None:
    platform = factories.make_platform(tmp_path)  # type: ignore[arg-type]
    assert current(platform.db) == _head()
    upgrade(platform.db)
    assert current(platform.db) == _head()


def _postgres_platform(tmp_path: object, **overrides: object) -> Platform:
    with factories.use_backend("postgresql"):
        return factories.make_platform(tmp_path, **overrides)  # type: ignore[arg-type]


def test_concurrent_claims_on_postgresql_take_disjoint_rows(tmp_path: object) -> None:
    platform = _postgres_platform(tmp_path, seed=6)
    _publish(platform, 200)
    barrier = threading.Barrier(8)
    got: list[list[ClaimedJob]] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        barrier.wait()
        mine: list[ClaimedJob] = []
        while jobs := _claim(platform, f"worker-{n}", limit=7):
            mine.extend(jobs)
        with lock:
            got.append(mine)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [j.delivery_id for jobs in got for j in jobs]
    assert len(ids) == 200
    assert len(set(ids)) == 200  # SKIP LOCKED: nobody got a row twice, nobody waited forever


def test_claim_query_on_postgresql_uses_skip_locked(tmp_path: object) -> None:
    platform = _postgres_platform(tmp_path, seed=7)
    _publish(platform, 2)
    with platform.db.write() as blocker:
        # One transaction holds a row lock; a claim elsewhere skips that row instead of waiting.
        locked = blocker.execute(
            select(deliveries.c.id)
            .order_by(deliveries.c.next_attempt_at)
            .limit(1)
            .with_for_update()
        ).scalar_one()
        jobs = _claim(platform, "worker-b")
        assert jobs != []
        assert locked not in {j.delivery_id for j in jobs}


def test_concurrent_migrations_on_postgresql_apply_once(tmp_path: object) -> None:
    with factories.use_backend("postgresql"):
        settings = factories.make_settings(tmp_path)  # type: ignore[arg-type]
    dbs = [Database(settings.database_url) for _ in range(4)]
    errors: list[BaseException] = []

    def migrate(db: Database) -> None:
        try:
            upgrade(db)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert current(dbs[0]) == _head()
        with dbs[0].read() as conn:
            trigger = conn.execute(
                text(
                    "SELECT count(*) FROM pg_trigger"
                    " WHERE tgname = 'deliveries_notify' AND tgrelid = 'deliveries'::regclass"
                )
            ).scalar_one()
            assert trigger == 1
            assert conn.execute(select(func.count()).select_from(attempts)).scalar_one() == 0
    finally:
        for db in dbs:
            db.dispose()
