"""Run a real worker inside a test's event loop until a condition holds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from callhook.delivery.worker import Worker
from callhook.platform import Platform
from tests.support.receiver import wait_for


@contextlib.asynccontextmanager
async def running_worker(platform: Platform) -> AsyncIterator[Worker]:
    worker = Worker.for_platform(platform)
    platform.publisher.on_publish(worker.wake)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


async def work_until(
    platform: Platform, predicate: Callable[[], bool], timeout: float = 15
) -> None:
    async with running_worker(platform):
        await wait_for(predicate, timeout=timeout)
