"""A worker's own tasks, named and watched: the first one to die stops the worker, with why.

A worker is several long-lived tasks (the claim loop, the lanes, the results flusher, the lease
renewer, …). Each catches and logs the failures it expects (a database restarting, an endpoint
misbehaving); an exception that escapes one is a bug or a broken invariant. Left alone it would
end that task quietly — a dead lease renewer lets every held lease run out while attempts go on,
a dead flusher lets results pile up unrecorded — so ``Tasks`` logs it with its traceback, sets
the worker's stop event (the worker drains as on SIGTERM) and keeps it as the reason:
``raise_failure`` raises ``WorkerFailed`` chained to it once the worker has drained.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine, Iterable
from typing import Any

from callhook.errors import WorkerFailed

log = logging.getLogger("callhook.delivery")


class Tasks:
    """The named tasks of one worker run; ``stop`` is set when one fails."""

    def __init__(self, stop: asyncio.Event, *, worker_id: str) -> None:
        self._stop = stop
        self._worker_id = worker_id
        self.failure: tuple[str, BaseException] | None = None  # the first: (task name, error)

    def start(self, name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task called ``name``, watched."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._ended)
        return task

    def failed(self, name: str, exc: BaseException) -> None:
        """``name`` died with ``exc``: log it, stop the worker, keep the first as the reason."""
        log.error(
            "worker task failed; stopping the worker",
            extra={"task": name, "worker": self._worker_id, "error": repr(exc)[:200]},
            exc_info=exc,
        )
        if self.failure is None:
            self.failure = (name, exc)
        self._stop.set()

    async def guard(self, name: str, step: Awaitable[None]) -> None:
        """Await a step of the worker's own (not a task): a failure is handled as a task's."""
        try:
            await step
        except Exception as exc:
            self.failed(name, exc)

    @staticmethod
    async def settle(tasks: Iterable[asyncio.Task[None]]) -> None:
        """Wait until ``tasks`` have ended, however they end (failures are already handled)."""
        pending = [task for task in tasks if not task.done()]
        if pending:
            await asyncio.wait(pending)

    async def cancel(self, tasks: Iterable[asyncio.Task[None]]) -> None:
        """Cancel ``tasks`` (helpers that run until cancelled) and wait until they have ended."""
        ending = list(tasks)
        for task in ending:
            task.cancel()
        await self.settle(ending)

    def raise_failure(self) -> None:
        """Raise ``WorkerFailed`` (chained to the error) if a task failed."""
        if self.failure is not None:
            name, exc = self.failure
            raise WorkerFailed(name, exc) from exc

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so asyncio does not log it again at exit
        if exc is not None:
            self.failed(task.get_name(), exc)
