"""SQLite (real file) and Redis (real server at 127.0.0.1:6379) stores under concurrent
duplicates: exactly one winner."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from callhook.receiver import Deduplicator, Event, RedisStore, SQLiteStore
from callhook.receiver.dedup import DedupStore

T0 = 1_736_937_000.0


def event(pbx_id: str = "pbx-1") -> Event:
    return Event("evt_1", "incoming_call_end", pbx_id, "acc", datetime(2025, 1, 1, tzinfo=UTC), {})


@pytest.fixture
def redis_client() -> Iterator[redis.Redis[bytes]]:
    client = redis.Redis(host="127.0.0.1", port=6379)
    yield client
    client.close()


@pytest.fixture
def redis_store(redis_client: redis.Redis[bytes]) -> Iterator[RedisStore]:
    prefix = f"test:callhook:{uuid.uuid4().hex}:"
    yield RedisStore(redis_client, prefix=prefix)
    keys = list(redis_client.scan_iter(match=prefix + "*"))
    if keys:
        redis_client.delete(*keys)


def race(claim: Callable[[], bool], n: int = 24) -> list[bool]:
    barrier = threading.Barrier(n)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        won = claim()
        with lock:
            results.append(won)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_sqlite_concurrent_duplicates_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "dedup.db"
    stores = [SQLiteStore(path) for _ in range(3)]  # several "processes" sharing one file
    try:
        dedups = [Deduplicator(s) for s in stores]
        counter = iter(range(10_000))
        lock = threading.Lock()

        def claim() -> bool:
            with lock:
                i = next(counter)
            return dedups[i % 3].first_time(event(), now=T0)

        results = race(claim)
        assert results.count(True) == 1
        assert len(results) == 24
    finally:
        for s in stores:
            s.close()


def test_sqlite_ttl_release_purge_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "dedup.db"
    store = SQLiteStore(path)
    dedup = Deduplicator(store, ttl=60)
    assert dedup.first_time(event(), now=T0)
    assert not dedup.first_time(event(), now=T0 + 59)
    assert dedup.first_time(event(), now=T0 + 60)  # expired → claimable again
    dedup.release(event())
    assert dedup.first_time(event(), now=T0 + 61)
    store.close()
    reopened = SQLiteStore(path)  # the claim survived on disk
    assert not Deduplicator(reopened, ttl=60).first_time(event(), now=T0 + 62)
    assert Deduplicator(reopened).first_time(event("pbx-2"), now=T0)
    assert reopened.purge(T0 + 1_000_000) == 2
    reopened.close()


def test_sqlite_rejects_odd_table_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="identifier"):
        SQLiteStore(tmp_path / "x.db", table="t; drop")


def test_redis_concurrent_duplicates_one_winner(redis_store: RedisStore) -> None:
    dedup = Deduplicator(redis_store)
    results = race(lambda: dedup.first_time(event(), now=T0))
    assert results.count(True) == 1


def test_redis_key_ttl_and_release(
    redis_store: RedisStore, redis_client: redis.Redis[bytes]
) -> None:
    dedup = Deduplicator(redis_store, ttl=30)
    assert dedup.first_time(event(), now=T0)
    key = redis_store.prefix + "incoming_call_end:pbx-1"
    ttl_ms = redis_client.pttl(key)
    assert 0 < ttl_ms <= 30_000
    assert not dedup.first_time(event(), now=T0)
    dedup.release(event())
    assert redis_client.exists(key) == 0
    assert dedup.first_time(event(), now=T0)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_run_once_across_threads(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store: DedupStore = (
        SQLiteStore(tmp_path / "d.db")
        if kind == "sqlite"
        else request.getfixturevalue("redis_store")  # Redis only where it is the store
    )
    dedup = Deduplicator(store, key="id")
    ran: list[str] = []
    lock = threading.Lock()

    def handle(e: Event) -> None:
        with lock:
            ran.append(e.id)

    results = race(lambda: dedup.run_once(event(), handle, now=T0), n=12)
    assert results.count(True) == 1
    assert ran == ["evt_1"]
    if isinstance(store, SQLiteStore):
        store.close()
