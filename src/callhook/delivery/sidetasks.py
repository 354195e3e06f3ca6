"""Side tasks: work a worker runs beside delivering (the alert sender), each watched.

A side task is ``async def task(stop)``: it runs until ``stop`` is set. ``watched`` keeps it
running: a task that raises is logged and started again after a pause that doubles up to a
minute, so a bug or an outage in a side task never stops the worker or its deliveries. A task
that returns before ``stop`` has nothing to do (it is not restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callhook.platform import Platform

log = logging.getLogger("callhook.delivery")

SideTask = Callable[[asyncio.Event], Awaitable[None]]
#: Seconds before a side task that raised is started again: doubles from the first to the last.
RESTART_DELAYS = (1.0, 60.0)


def name_of(task: SideTask) -> str:
    """A side task's name for logs: its qualified name, else its repr."""
    return getattr(task, "__qualname__", None) or repr(task)


async def watched(task: SideTask, stop: asyncio.Event) -> None:
    """Run ``task(stop)`` until ``stop``, restarting it whenever it raises."""
    name = name_of(task)
    delay = RESTART_DELAYS[0]
    while not stop.is_set():
        try:
            await task(stop)
            return
        except Exception:
            log.exception("side task failed; restarting it", extra={"task": name, "in": delay})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, RESTART_DELAYS[1])


def for_platform(platform: Platform) -> tuple[SideTask, ...]:
    """The side tasks every worker on ``platform`` runs: the alert sender."""
    from callhook.alerts.outbox import AlertSender

    return (AlertSender.for_platform(platform).run,)
