"""Deduplicator with the in-memory store (the fake clock is passed as ``now``)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from callhook.receiver import Deduplicator, Event, MemoryStore

T0 = 1_736_937_000.0


def event(name: str = "incoming_call_end", pbx_id: str = "pbx-1", eid: str = "evt_1") -> Event:
    when = datetime(2025, 1, 15, tzinfo=UTC)
    return Event(eid, name, pbx_id, "acc_local", when, {})


def test_first_wins_until_ttl_expires() -> None:
    dedup = Deduplicator(MemoryStore(), ttl=60)
    assert dedup.first_time(event(), now=T0)
    assert not dedup.first_time(event(eid="evt_2"), now=T0 + 59)  # same event:pbx_id
    assert dedup.first_time(event(), now=T0 + 60)


def test_default_key_is_event_and_pbx_id() -> None:
    dedup = Deduplicator()
    assert dedup.key_for(event()) == "incoming_call_end:pbx-1"
    assert dedup.first_time(event(), now=T0)
    assert dedup.first_time(event(name="incoming_call_start"), now=T0)
    assert dedup.first_time(event(pbx_id="pbx-2"), now=T0)


def test_key_by_id_and_custom() -> None:
    by_id = Deduplicator(key="id")
    assert by_id.first_time(event(eid="a"), now=T0)
    assert by_id.first_time(event(eid="b"), now=T0)
    assert not by_id.first_time(event(eid="a"), now=T0)
    custom = Deduplicator(key=lambda e: e.account_id)
    assert custom.key_for(event()) == "acc_local"


def test_run_once_releases_on_failure() -> None:
    dedup = Deduplicator()
    seen: list[str] = []

    def fail(e: Event) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        dedup.run_once(event(), fail, now=T0)
    assert dedup.run_once(event(), lambda e: seen.append(e.id), now=T0)
    assert not dedup.run_once(event(), lambda e: seen.append(e.id), now=T0)
    assert seen == ["evt_1"]


def test_expired_keys_are_swept() -> None:
    store = MemoryStore()
    for i in range(100):
        store.claim(f"k{i}", 10, T0)
    store.claim("later", 10, T0 + 100)
    assert len(store) == 1


def test_concurrent_duplicates_one_winner() -> None:
    dedup = Deduplicator(MemoryStore())
    barrier = threading.Barrier(16)
    wins: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        won = dedup.first_time(event(), now=T0)
        with lock:
            wins.append(won)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 15 + [True]


@pytest.mark.parametrize("bad", [{"ttl": 0}, {"key": "pbx"}])
def test_bad_configuration(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Deduplicator(**bad)  # type: ignore[arg-type]
