"""A dead endpoint cannot take the worker's capacity from healthy ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, select

from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.store.tables import deliveries
from tests.factories import make_account, make_platform, publish_sample
from tests.support.receiver import Receiver, Tls, wait_for
from tests.support.worker import running_worker


def _count(platform: Platform, account_id: str, status: str, attempts: int | None = None) -> int:
    query = select(func.count()).where(
        deliveries.c.account_id == account_id, deliveries.c.status == status
    )
    if attempts is not None:
        query = query.where(deliveries.c.attempts == attempts)
    with platform.db.read() as conn:
        return int(conn.execute(query).scalar_one())


def _leased(platform: Platform, account_id: str) -> int:
    query = select(func.count()).where(
        deliveries.c.account_id == account_id, deliveries.c.lease_until.is_not(None)
    )
    with platform.db.read() as conn:
        return int(conn.execute(query).scalar_one())


async def test_dead_endpoint_is_paused_and_healthy_ones_keep_flowing(
    tmp_path: Path, tls: Tls
) -> None:
    async def hang(_r: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.Response(status=200)

    # Long enough for a healthy answer over TLS on a loaded CI machine: a healthy delivery
    # that timed out would wait for a retry on the injected clock, which only moves below
    # (the test failed so once with 0.3 s). The waits that must outlast attempts count in it.
    timeout = 1.0
    ctx = tls.server_context()
    healthy = await Receiver(ctx).start()
    dead = await Receiver(ctx, behaviour=hang).start()
    clock = FakeClock()
    limit = 4
    try:
        platform = make_platform(
            tmp_path,
            clock=clock,
            seed=2,
            ca_bundle=tls.ca_path,
            delivery_timeout=timeout,
            worker_per_endpoint_limit=limit,
        )
        good = make_account(platform, url=healthy.url, name="Good")
        bad = make_account(platform, url=dead.url, name="Bad")
        for seed in range(40):
            publish_sample(platform, bad.id, seed=seed)
            publish_sample(platform, good.id, seed=seed)
        async with running_worker(platform) as worker:
            await wait_for(lambda: _count(platform, good.id, "delivered") == 40)
            # The breaker opens after 5 timeouts: at most two rounds of `limit` attempts are
            # made, and the dead endpoint's other deliveries are given back untouched.
            await wait_for(lambda: _count(platform, bad.id, "pending", attempts=1) >= 5)
            await asyncio.sleep(2.5 * timeout)  # longer than another round of timeouts
            attempts_before = len(dead.received)
            assert 5 <= attempts_before <= 2 * limit
            assert _count(platform, bad.id, "pending", attempts=0) == 40 - attempts_before
            assert _leased(platform, bad.id) == 0
            await asyncio.sleep(0.5)
            assert len(dead.received) == attempts_before  # paused, on the injected clock
            # After the cooldown, exactly one probe goes out.
            clock.advance(31)
            worker.wake()
            await wait_for(lambda: len(dead.received) == attempts_before + 1)
            await asyncio.sleep(timeout + 0.5)  # the probe timed out: still no second one
            assert len(dead.received) == attempts_before + 1
    finally:
        await healthy.stop()
        await dead.stop()


async def test_a_claim_that_leaves_every_account_out_does_not_stall_the_worker(
    tmp_path: Path, tls: Tls
) -> None:
    receiver = await Receiver(tls.server_context()).start()
    try:
        # Room for two jobs per account, and a poll too slow to rescue a stalled worker: when
        # both accounts are full, the next claim finds nothing claimable, and the worker must
        # claim again as soon as jobs are recorded rather than wait for the poll.
        platform = make_platform(
            tmp_path,
            ca_bundle=tls.ca_path,
            poll_interval=30.0,
            worker_per_endpoint_limit=2,
            worker_batch_size=4,
        )
        accounts = [make_account(platform, url=receiver.url, name=f"A{i}") for i in range(2)]
        for seed in range(20):
            for account in accounts:
                publish_sample(platform, account.id, seed=seed)
        async with running_worker(platform):
            await wait_for(lambda: len(receiver.received) == 40, timeout=10)
    finally:
        await receiver.stop()
