"""A worker whose own task dies stops, drains and says which task and why (issue 16, item 4).

A bug is injected into the lease bookkeeping one task calls (the lease renewer, the results
flusher, the claim loop); everything else is real: the database, the receiver, the sockets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import NoReturn

import pytest
from aiohttp import web
from sqlalchemy import select

from callhook.delivery.worker import Worker
from callhook.errors import WorkerFailed
from callhook.platform import Platform
from callhook.store.queue import ClaimedJob
from callhook.store.tables import deliveries
from tests.integration.postgres import workers
from tests.support.receiver import Receiver


class InjectedBug(RuntimeError):
    pass


def broken(*_args: object, **_kwargs: object) -> NoReturn:
    raise InjectedBug("bookkeeping bug")


async def run_until_it_fails(worker: Worker, stop: asyncio.Event) -> WorkerFailed:
    with pytest.raises(WorkerFailed) as failed:
        # A safety net, not a threshold: the worker stops by itself within a lease or two.
        await asyncio.wait_for(worker.run(stop), timeout=30)
    return failed.value


def rows(platform: Platform) -> list[tuple[str, bool]]:
    """(status, leased) of every delivery."""
    with platform.db.read() as conn:
        found = conn.execute(select(deliveries.c.status, deliveries.c.lease_until)).all()
    return sorted((r.status, r.lease_until is not None) for r in found)


async def test_a_dead_lease_renewer_stops_the_worker_which_drains_and_says_why(
    platform_factory: Callable[..., Platform],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()

    async def answer_once_the_worker_stops(_r: web.Request) -> web.StreamResponse:
        await stop.wait()  # the attempt is under way when the renewer dies
        return web.Response(status=200)

    receiver = await Receiver(None, behaviour=answer_once_the_worker_stops).start()
    # One attempt at a time: of three claimed jobs one is under way and two wait for the slot.
    platform = platform_factory(lease_seconds=0.3, worker_per_endpoint_limit=1)
    account = workers.accounts(platform, receiver.url, 1)
    workers.publish(platform, workers.requests(account, 3))
    worker = Worker.for_platform(platform)
    renewed = worker.leases.renewed
    calls: list[int] = []

    def renewed_then_broken(
        batch: list[ClaimedJob], ids: set[str], *, now: datetime
    ) -> list[ClaimedJob]:
        calls.append(len(batch))
        if len(calls) > 1:
            broken()
        return renewed(batch, ids, now=now)

    monkeypatch.setattr(worker.leases, "renewed", renewed_then_broken)
    try:
        with caplog.at_level(logging.ERROR, logger="callhook.delivery"):
            failure = await run_until_it_fails(worker, stop)
    finally:
        await receiver.stop()
    assert failure.task == "lease renewer"
    assert isinstance(failure.__cause__, InjectedBug)
    assert "lease renewer" in failure.message
    assert "bookkeeping bug" in failure.message
    assert calls == [3, 3]  # it renewed once, then died with all three held
    [logged] = [r for r in caplog.records if r.getMessage().startswith("worker task failed")]
    assert getattr(logged, "task", None) == "lease renewer"
    assert logged.exc_info is not None
    assert logged.exc_info[1] is failure.__cause__
    # Drained as on SIGTERM: the attempt under way finished and was recorded, the two waiting
    # were given back at once (no lease left to wait for), not left to lapse.
    assert rows(platform) == [("delivered", False), ("pending", False), ("pending", False)]
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("bookkeeping", "task", "left"),
    [
        # The result was written, then the flusher died: delivered, and the worker stops.
        ("finish", "results flusher", [("delivered", False)]),
        # Claimed but never held: the lease runs out and another worker takes the job.
        ("hold", "claim loop", [("pending", True)]),
    ],
)
async def test_a_worker_task_that_dies_stops_the_worker_with_its_name_and_cause(
    platform_factory: Callable[..., Platform],
    monkeypatch: pytest.MonkeyPatch,
    bookkeeping: str,
    task: str,
    left: list[tuple[str, bool]],
) -> None:
    receiver = await Receiver(None).start()
    platform = platform_factory()
    account = workers.accounts(platform, receiver.url, 1)
    workers.publish(platform, workers.requests(account, 1))
    worker = Worker.for_platform(platform)
    monkeypatch.setattr(worker.leases, bookkeeping, broken)
    stop = asyncio.Event()
    try:
        failure = await run_until_it_fails(worker, stop)
    finally:
        await receiver.stop()
    assert failure.task == task
    assert isinstance(failure.__cause__, InjectedBug)
    assert stop.is_set()  # the caller's stop event says so too
    assert rows(platform) == left
