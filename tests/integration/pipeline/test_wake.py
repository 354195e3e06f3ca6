"""An idle worker is woken by a publish, even one that commits while a claim is running."""

from __future__ import annotations

import asyncio
from collections.abc import Set
from pathlib import Path

import pytest

from callhook.delivery.worker import Worker
from callhook.store.queue import ClaimedJob
from tests.factories import make_account, make_platform, publish_sample
from tests.support.receiver import Receiver, Tls, wait_for


async def test_a_publish_during_an_empty_claim_is_not_missed(
    tmp_path: Path, tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = await Receiver(tls.server_context()).start()
    # A poll this slow means an event not delivered within seconds missed its wake-up.
    platform = make_platform(tmp_path, ca_bundle=tls.ca_path, poll_interval=30.0)
    account = make_account(platform, url=receiver.url)

    worker = Worker.for_platform(platform)
    claim = worker.claims.claim
    raced = False

    def racing_claim(
        limit: int, exclude: set[str], urgent_for: Set[str] = frozenset()
    ) -> list[ClaimedJob]:
        """Publishes from inside the first empty claim: the commit lands mid-claim."""
        nonlocal raced
        jobs = claim(limit, exclude, urgent_for)
        if not jobs and not raced:
            raced = True
            publish_sample(platform, account.id)
        return jobs

    monkeypatch.setattr(worker.claims, "claim", racing_claim)
    platform.publisher.on_publish(worker.wake)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_for(lambda: raced)
        await wait_for(lambda: len(receiver.received) == 1, timeout=10)
    finally:
        stop.set()
        await task
        await receiver.stop()
