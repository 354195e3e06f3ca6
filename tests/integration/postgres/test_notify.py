"""LISTEN/NOTIFY: an idle worker in another process wakes on a publish, not on its poll."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from callhook.delivery.worker import Worker
from callhook.platform import Platform
from callhook.settings import Settings
from callhook.store.notify import Listener
from tests import factories
from tests.integration.postgres import workers
from tests.support.receiver import wait_for

# Far longer than the test may take: only a notification can explain a prompt delivery.
SLOW_POLL = "120"


def _received(receiver: workers.CountingReceiver, ids: set[str]) -> Callable[[], bool]:
    return lambda: all(receiver.ids[i] == 1 for i in ids)


def _platform(tmp_path: Path) -> Platform:
    with factories.use_backend("postgresql"):
        return factories.make_platform(tmp_path, poll_interval=float(SLOW_POLL))


async def test_idle_worker_on_another_connection_wakes_on_publish(tmp_path: Path) -> None:
    api = _platform(tmp_path)
    receiver = await workers.CountingReceiver().start()
    # The worker's own platform: its own engine and pool, like another process; nothing wires
    # the publisher to it, so only the database can wake it.
    other = Platform.create(api.settings)
    worker = Worker.for_platform(other)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        account = workers.accounts(api, receiver.url, 1)
        await wait_for(
            lambda: isinstance(worker.listener, Listener) and worker.listener.connected.is_set()
        )
        await asyncio.sleep(0.3)  # the worker has polled, found nothing and is now idle
        for round_ in range(3):
            ids = workers.publish(api, workers.requests(account, 5, offset=round_ * 5))
            await wait_for(_received(receiver, ids))
        assert isinstance(worker.listener, Listener)
        assert worker.listener.notifications >= 3
    finally:
        stop.set()
        await task
        other.db.dispose()
        await receiver.stop()


async def test_worker_process_wakes_within_milliseconds(tmp_path: Path) -> None:
    api = _platform(tmp_path)
    receiver = await workers.CountingReceiver().start()
    log = tmp_path / "worker.log"
    proc = workers.start_worker(api, log=log, CALLHOOK_POLL_INTERVAL=SLOW_POLL)
    try:
        account = workers.accounts(api, receiver.url, 1)
        # Warm up: the process is up, listening, and has drained the queue.
        first = workers.publish(api, workers.requests(account, 1))
        await wait_for(lambda: receiver.total == 1, timeout=30)
        await asyncio.sleep(0.3)
        latencies = []
        for i in range(5):
            t0 = time.perf_counter()
            ids = workers.publish(api, workers.requests(account, 1, offset=i + 1))
            await wait_for(_received(receiver, ids))
            latencies.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.1)
        print(f"publish → received, idle worker process (ms): {[round(x) for x in latencies]}")
        assert receiver.ids.keys() >= first
    finally:
        assert workers.stop(proc) == 0
        await receiver.stop()
    assert workers.problems(log) == []


def test_listener_reports_only_its_own_schema(tmp_path: Path) -> None:
    a, b = _platform(tmp_path / "a"), _platform(tmp_path / "b")
    woken: list[str] = []
    listener = Listener(a.db, lambda: woken.append("a")).start()
    try:
        assert listener.connected.wait(10)
        woken.clear()  # the wake-up every (re)connection makes
        account_b = workers.accounts(b, "http://127.0.0.1:9/hook", 1)
        workers.publish(b, workers.requests(account_b, 3))
        account_a = workers.accounts(a, "http://127.0.0.1:9/hook", 1)
        workers.publish(a, workers.requests(account_a, 3))
        deadline = time.monotonic() + 10
        while not woken and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
    finally:
        listener.stop()
    assert woken == ["a"]  # one transaction, one notification; schema b's did not count
    assert listener.notifications == 1


def test_settings_reach_the_worker_process_unchanged() -> None:
    # The supervisor hands settings to spawned children by pickling.
    import pickle

    settings = Settings(database_url="postgresql://x/y", lease_seconds=7.5)
    assert pickle.loads(pickle.dumps(settings)) == settings
