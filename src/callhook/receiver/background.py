"""Run work after the response: "answer 200 now, process in the background" (spec 000).

The adapters of synchronous frameworks (Flask, Django) use a :class:`BackgroundRunner`, a small
thread pool that logs (never loses silently) a handler's exception. For durable processing hand
the event to your job queue (Celery, RQ, …) instead; the point is the same: no slow work before
the response, because the sender gives up after 2 seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec

P = ParamSpec("P")

logger = logging.getLogger("callhook.receiver")


def _log_failure(future: Future[object]) -> None:
    exc = future.exception()
    if exc is not None:
        logger.error("webhook background handler failed", exc_info=exc)


class BackgroundRunner:
    """A lazily started thread pool for webhook handlers."""

    def __init__(self, max_workers: int = 4) -> None:
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(
        self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[object]:
        """Run ``fn(*args, **kwargs)`` on the pool; failures are logged."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._max_workers, thread_name_prefix="callhook-webhook"
                )
            pool = self._pool
        future: Future[object] = pool.submit(fn, *args, **kwargs)
        future.add_done_callback(_log_failure)
        return future

    def shutdown(self, wait: bool = True) -> None:
        """Stop the pool (waiting for queued work by default)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait)


#: The runner the Flask and Django adapters use unless given another.
default_runner = BackgroundRunner()
