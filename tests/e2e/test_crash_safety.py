"""A worker killed with SIGKILL mid-batch loses nothing (at-least-once, same id and body)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import orjson
from aiohttp import web
from sqlalchemy import func, select

from callhook.events import call_scenario
from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.store.tables import deliveries
from tests.factories import make_account, make_platform
from tests.support.receiver import Receiver, Tls, wait_for

CALLHOOK = str(Path(sys.executable).parent / "callhook")


def _worker(db_url: str, ca: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CALLHOOK_DATABASE_URL": db_url,
        "CALLHOOK_ALLOW_UNSAFE_TARGETS": "1",
        "CALLHOOK_CA_BUNDLE": str(ca),
        "CALLHOOK_LEASE_SECONDS": "2",
        "CALLHOOK_POLL_INTERVAL": "0.05",
        "CALLHOOK_WORKER_MAX_IN_FLIGHT": "32",
        "CALLHOOK_WORKER_BATCH_SIZE": "32",
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([CALLHOOK, "worker"], env=env, stderr=subprocess.PIPE)


async def test_sigkilled_worker_loses_no_event(tmp_path: Path, tls: Tls) -> None:
    async def slowish(_r: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.02)
        return web.Response(status=200)

    receiver = await Receiver(tls.server_context(), behaviour=slowish).start()
    platform = make_platform(tmp_path, ca_bundle=tls.ca_path)
    account = make_account(platform, url=receiver.url)
    rng = random.Random(3)
    published: set[str] = set()
    for _ in range(40):
        call = call_scenario("answered", rng, start=platform.clock.now())
        results = platform.publisher.publish(
            [PublishRequest(i.event, i.pbx_id, account.id, i.data) for i in call]
        )
        published.update(r.id for r in results)
    total = len(published)
    assert total >= 200

    first = _worker(platform.settings.database_url, tls.ca_path)
    second = None
    try:
        await wait_for(lambda: len(receiver.received) >= 60, timeout=30)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        with platform.db.read() as conn:
            undelivered = conn.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.status != "delivered")
            ).scalar_one()
        assert undelivered > 0, "the kill came too late to test anything"

        second = _worker(platform.settings.database_url, tls.ca_path)
        await wait_for(
            lambda: {r.headers["webhook-id"] for r in receiver.received} >= published,
            timeout=60,
        )
        await wait_for(lambda: _all_delivered(platform), timeout=30)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0  # graceful: drains and exits 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        await receiver.stop()

    # Every event arrived at least once; every copy of an event is the same id and the same bytes.
    bodies: dict[str, set[bytes]] = {}
    for r in receiver.received:
        bodies.setdefault(r.headers["webhook-id"], set()).add(r.body)
    assert set(bodies) == published
    for event_id, copies in bodies.items():
        assert len(copies) == 1
        assert orjson.loads(next(iter(copies)))["id"] == event_id


def _all_delivered(platform: Platform) -> bool:
    with platform.db.read() as conn:
        pending = conn.execute(
            select(func.count()).select_from(deliveries).where(deliveries.c.status != "delivered")
        ).scalar_one()
    return int(pending) == 0
