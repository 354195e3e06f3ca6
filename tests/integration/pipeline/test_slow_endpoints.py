"""Endpoints that answer slowly (or not yet) cannot hold every lane: a healthy endpoint's event
goes out while all of them still wait for their answers (issue 13). No timing thresholds: the
slow receivers answer only when the test lets them, after the healthy event has arrived."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from callhook.platform import Platform
from callhook.store import endpoints as endpoint_store
from tests.factories import make_account, make_platform, publish_sample
from tests.support.receiver import Receiver, Tls, wait_for
from tests.support.worker import running_worker

LANES = 8  # worker_max_in_flight: 6 of them may go to endpoints not known fast


async def test_a_healthy_endpoint_is_served_while_slow_ones_hold_their_places(
    tmp_path: Path, tls: Tls
) -> None:
    release = asyncio.Event()

    async def slow(_r: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(status=200)

    ctx = tls.server_context()
    healthy = await Receiver(ctx).start()
    sluggish = await Receiver(ctx, behaviour=slow).start()
    try:
        platform: Platform = make_platform(
            tmp_path,
            ca_bundle=tls.ca_path,
            worker_max_in_flight=LANES,
            worker_per_endpoint_limit=LANES,
            delivery_timeout=30.0,  # the slow answers are not timeouts: no breaker trips
        )
        good = make_account(platform, url=healthy.url, name="Good")
        busy = make_account(platform, url=f"{sluggish.url}?e=0", name="Busy")
        with platform.db.write() as conn:
            for n in range(1, 4):  # four slow endpoints, one account
                endpoint_store.create(
                    conn,
                    busy.id,
                    url=f"{sluggish.url}?e={n}",
                    subscribed_events=None,
                    limit=20,
                    allow_unsafe=True,
                    now=platform.clock.now(),
                    box=platform.box,
                    rng=platform.rng,
                )
        async with running_worker(platform):
            publish_sample(platform, good.id, seed=0)  # the healthy endpoint answers once: fast
            await wait_for(lambda: len(healthy.received) == 1)
            for seed in range(10):  # 40 deliveries to the slow endpoints
                publish_sample(platform, busy.id, seed=100 + seed)
            # Every place they may take is taken: 6 requests wait for their answers.
            await wait_for(lambda: len(sluggish.received) == LANES * 3 // 4)
            publish_sample(platform, good.id, seed=1)
            await wait_for(lambda: len(healthy.received) == 2)
            assert not release.is_set()
            assert len(sluggish.received) == LANES * 3 // 4  # still held, none more started
            release.set()
            await wait_for(lambda: len(sluggish.received) == 40)
    finally:
        release.set()
        await healthy.stop()
        await sluggish.stop()
