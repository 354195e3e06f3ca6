"""The publish write path on both backends: concurrent publishers, idempotency races, and the
reads that decide each event's fan-out."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callhook.platform import Platform
from callhook.publish import Published, PublishRequest
from callhook.store import accounts as account_store
from callhook.store import endpoints as endpoint_store
from callhook.store import events as event_store
from callhook.store.tables import events
from tests.factories import make_account, make_platform


def _rating(account_id: str, call_id: str, n: int, key: str | None = None) -> PublishRequest:
    # Publisher.publish takes parsed requests; the data is not looked at beyond call_id.
    return PublishRequest("rating", f"rat_{call_id}_{n}", account_id, {"call_id": call_id}, key)


def _in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; their results, in order."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def test_concurrent_publishers_number_each_call_without_gaps_or_repeats(tmp_path: Path) -> None:
    platform = make_platform(tmp_path)
    account = make_account(platform, url="https://hooks.example.com/a")
    calls = ["c1", "c2", "c3"]

    def publish(thread: int) -> None:
        for batch in range(4):
            platform.publisher.publish(
                [_rating(account.id, calls[n % 3], thread * 100 + batch * 10 + n) for n in range(7)]
            )

    _in_threads(6, publish)
    numbers: dict[str, list[int]] = defaultdict(list)
    with platform.db.read() as conn:
        for call_id, sequence in conn.execute(select(events.c.call_id, events.c.sequence)):
            numbers[call_id].append(sequence)
    assert {c: sorted(n) for c, n in numbers.items()} == {
        c: list(range(1, len(numbers[c]) + 1)) for c in calls
    }
    assert sum(len(n) for n in numbers.values()) == 6 * 4 * 7


def test_a_key_taken_between_lookup_and_insert_returns_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = make_platform(tmp_path)
    account = make_account(platform, url="https://hooks.example.com/a")
    [original] = platform.publisher.publish([_rating(account.id, "c1", 1, key="k-1")])
    # The lookup misses once, as when a concurrent publisher commits the key in between: the
    # insert then hits the unique index and the publish is retried.
    real = event_store.find_idempotent
    misses = [1]

    def find(conn: Any, keys: Any) -> dict[tuple[str, str], str]:
        if misses:
            misses.pop()
            return {}
        return real(conn, keys)

    monkeypatch.setattr(event_store, "find_idempotent", find)
    [again] = platform.publisher.publish([_rating(account.id, "c1", 2, key="k-1")])
    assert not misses
    assert again.duplicate
    assert again.id == original.id
    with platform.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 1


def test_concurrent_publishes_of_one_key_store_it_once(tmp_path: Path) -> None:
    platform = make_platform(tmp_path)
    account = make_account(platform, url="https://hooks.example.com/a")

    def publish(thread: int) -> Published:
        [result] = platform.publisher.publish([_rating(account.id, "c1", thread, key="same")])
        return result

    results = _in_threads(8, publish)
    assert len({r.id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    with platform.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 1


def _bare_account(platform: Platform) -> str:
    with platform.db.write() as conn:
        return account_store.create(
            conn, name="No integration", now=platform.clock.now(), rng=platform.rng
        ).id


def test_publish_targets_are_the_existing_accounts_and_their_integrations(
    tmp_path: Path,
) -> None:
    platform = make_platform(tmp_path)
    configured = make_account(platform, url="https://hooks.example.com/a").id
    without_url = make_account(platform).id
    bare = _bare_account(platform)
    with platform.db.read() as conn:
        targets = endpoint_store.publish_targets(
            conn, [configured, without_url, bare, "acc_missing", configured]
        )
        assert set(targets) == {configured, without_url, bare}
        assert targets[bare] == []
        assert targets[configured] == [endpoint_store.primary(conn, configured)]
        assert targets[without_url] == [endpoint_store.primary(conn, without_url)]
        assert endpoint_store.publish_targets(conn, []) == {}
