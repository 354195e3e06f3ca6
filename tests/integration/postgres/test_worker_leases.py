"""The worker's lease handling on both backends: renewal during long attempts, release on stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from sqlalchemy import select

from callhook.delivery.worker import Worker
from callhook.platform import Platform
from callhook.store.tables import deliveries
from tests.integration.postgres import workers
from tests.support.receiver import Receiver, wait_for


def _worker(platform: Platform) -> Worker:
    return Worker.for_platform(platform)


async def test_a_long_attempt_keeps_its_lease_while_another_worker_polls(
    platform_factory: Callable[..., Platform],
) -> None:
    async def slow(_r: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3.0)  # five leases long
        return web.Response(status=200)

    receiver = await Receiver(None, behaviour=slow).start()
    # Leases long enough that a loaded machine's scheduling delays do not lose one.
    platform = platform_factory(lease_seconds=0.6, delivery_timeout=5.0, poll_interval=0.05)
    account = workers.accounts(platform, receiver.url, 1)
    published = workers.publish(platform, workers.requests(account, 3))
    first, second = _worker(platform), _worker(platform)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(first.run(stop))]
    try:
        await wait_for(lambda: len(receiver.received) == 3)
        tasks.append(asyncio.create_task(second.run(stop)))  # polls all through the attempts
        await wait_for(lambda: workers.status_counts(platform) == {"delivered": 3})
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await receiver.stop()
    assert len(receiver.received) == 3  # renewed: nobody took them over mid-attempt
    assert second.attempted == 0
    assert first.leases_lost == 0
    assert len(published) == 3


async def test_stop_releases_unstarted_jobs_at_once(
    platform_factory: Callable[..., Platform],
) -> None:
    started = asyncio.Event()

    async def slow(_r: web.Request) -> web.StreamResponse:
        started.set()
        await asyncio.sleep(0.5)
        return web.Response(status=200)

    receiver = await Receiver(None, behaviour=slow).start()
    # One attempt at a time per endpoint: of ten claimed jobs, nine wait for the slot.
    platform = platform_factory(lease_seconds=600, worker_per_endpoint_limit=1)
    account = workers.accounts(platform, receiver.url, 1)
    workers.publish(platform, workers.requests(account, 10))
    worker = _worker(platform)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(started.wait(), 15)
        stop.set()
        await task
    finally:
        stop.set()
        await task
        await receiver.stop()
    with platform.db.read() as conn:
        rows = conn.execute(select(deliveries.c.status, deliveries.c.lease_until)).all()
    assert sorted(r.status for r in rows) == ["delivered"] + ["pending"] * 9
    # No waiting for the 10-minute lease: the nine are free for any worker right now.
    assert [r.lease_until for r in rows if r.status == "pending"] == [None] * 9
    assert len(receiver.received) == 1
