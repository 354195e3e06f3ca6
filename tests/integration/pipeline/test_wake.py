"""An idle worker is woken by a publish, even one that commits while a claim is running."""

from __future__ import annotations

import asyncio
from collections.abc import Set
from pathlib import Path

import pytest
from aiohttp import web

from callhook.core.throttle import Caps
from callhook.delivery.worker import Worker
from callhook.store import endpoint_health
from callhook.store import endpoints as endpoint_store
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


def _count_claims(worker: Worker, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every claim ``worker`` makes from now on, in order (filled as it runs)."""
    claim = worker.claims.claim
    sizes: list[int] = []

    def counted_claim(
        limit: int, exclude: set[str], urgent_for: Set[str] = frozenset()
    ) -> list[ClaimedJob]:
        jobs = claim(limit, exclude, urgent_for)
        sizes.append(len(jobs))
        return jobs

    monkeypatch.setattr(worker.claims, "claim", counted_claim)
    return sizes


@pytest.mark.parametrize(("share", "per_claim"), [(4, 4), (8, 4)])
async def test_a_worker_whose_endpoint_is_at_its_share_claims_again_only_once_it_has_room(
    tmp_path: Path, tls: Tls, monkeypatch: pytest.MonkeyPatch, share: int, per_claim: int
) -> None:
    """One endpoint with a backlog: each claim takes at most ``per_claim``, the next comes at
    once while the endpoint is below its ``share`` and otherwise (on SQLite) only once one of
    its attempts has finished. (Claiming again at once, and at every finished attempt while the
    endpoint was still at its share, ran an empty claim transaction per attempt; waiting after a
    claim that the per-claim cap cut short left the lanes idle until the poll.)"""
    receiver = await Receiver(tls.server_context()).start()
    platform = make_platform(
        tmp_path,
        ca_bundle=tls.ca_path,
        poll_interval=30.0,  # no claim from the poll during the test
        worker_per_endpoint_limit=share,
        worker_claim_per_endpoint=per_claim,
    )
    account = make_account(platform, url=receiver.url)
    events = 60
    for n in range(events):
        publish_sample(platform, account.id, "sms", seed=n)

    worker = Worker.for_platform(platform)
    sizes = _count_claims(worker, monkeypatch)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        # Well under the poll: a claim loop waiting for it would not get there.
        await wait_for(lambda: len(receiver.received) == events, timeout=20)
    finally:
        stop.set()
        await task
        await receiver.stop()
    assert sum(sizes) == events
    assert max(sizes) <= per_claim
    empty = sizes.count(0)
    if platform.db.is_sqlite:
        # Empty claims: at most the one after the listener's start-up wake-up, and the one that
        # found the queue drained.
        assert empty <= 2, sizes
    else:
        # A short claim may only have skipped rows another claim had locked, so the next one
        # follows at once (``Claims.exhaustive``): at most one empty claim per claim that took.
        assert empty <= len(sizes) - empty + 2, sizes


async def _slowly(_request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(0.2)
    return web.json_response({"received": True})


@pytest.mark.parametrize(
    ("rate_limit", "max_in_flight"),
    [(None, 1), (10.0, None), (5.0, 1)],
    ids=["one-at-a-time", "10-per-s", "5-per-s-one-at-a-time"],
)
async def test_an_endpoint_that_gave_its_whole_allowance_is_claimed_again_without_the_poll(
    tmp_path: Path,
    tls: Tls,
    monkeypatch: pytest.MonkeyPatch,
    rate_limit: float | None,
    max_in_flight: int | None,
) -> None:
    """sms events (outside calls: no hand-on wakes the worker) to a throttled endpoint: each
    claim takes what the store allows (its ``max_in_flight`` room, its tokens) and announces
    nothing for it, so the worker must look again at once, when the next plan says when —
    not wait for the poll, which never comes here. Nor spin: at its cap with tokens left, the
    next token is "now", and looking again every 2 ms ran an empty claim after empty claim for
    as long as the attempt took (here 200 ms each)."""
    receiver = await Receiver(tls.server_context(), behaviour=_slowly).start()
    platform = make_platform(tmp_path, ca_bundle=tls.ca_path, poll_interval=30.0)
    account = make_account(platform, url=receiver.url)
    with platform.db.write() as conn:
        endpoint = endpoint_store.primary(conn, account.id)
        assert endpoint is not None
        endpoint_health.set_limits(
            conn,
            endpoint.id,
            account.id,
            rate_limit=rate_limit,
            max_in_flight=max_in_flight,
            caps=Caps(),
        )
    events = 10
    for n in range(events):
        publish_sample(platform, account.id, "sms", seed=n)
    worker = Worker.for_platform(platform)
    sizes = _count_claims(worker, monkeypatch)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        # Well under the poll: a worker waiting for it would not get there.
        await wait_for(lambda: len(receiver.received) == events, timeout=20)
    finally:
        stop.set()
        await task
        await receiver.stop()
    # Per delivery: the claim that takes it, the one at once after it (nothing: capped or no
    # token), and one woken by the attempt ending before its result is recorded; plus start-up.
    assert sizes.count(0) <= 3 * events + 2, sizes
