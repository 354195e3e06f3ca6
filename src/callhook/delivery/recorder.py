"""Group commit of attempt results: every ``FLUSH_INTERVAL``, or as soon as
``worker_batch_size`` results wait, one transaction records them all (``store.queue.complete``),
fenced on each job's claim id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from callhook.delivery.claims import Claims
from callhook.delivery.leases import Leases
from callhook.store.queue import AttemptResult, ClaimedJob

log = logging.getLogger("callhook.delivery")

FLUSH_INTERVAL = 0.025  # seconds: group-commit window for attempt results
# Back-off while results cannot be recorded (database restarting): a try after each, then the
# results are dropped and the deliveries are attempted again once their leases run out.
FLUSH_RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


class Recorder:
    """Results waiting to be recorded, and their group commit. ``on_recorded`` is called after
    each commit (or when a batch is given up): recorded jobs no longer count as held;
    ``after_commit`` (awaited) after each successful one: the worker acts on what the results
    changed in the endpoints' health."""

    def __init__(
        self,
        claims: Claims,
        leases: Leases[ClaimedJob],
        *,
        batch_size: int,
        on_recorded: Callable[[], None],
        after_commit: Callable[[], Awaitable[None]] | None = None,
        on_line_moved: Callable[[], None] | None = None,
    ) -> None:
        self._claims = claims
        self._leases = leases
        self._batch_size = batch_size
        self._on_recorded = on_recorded
        self._after_commit = after_commit
        # Called after a commit that finished an event of a call: the next one may be claimable
        # now (issue 14's per-call lines), so the worker should claim again at once.
        self._on_line_moved = on_line_moved
        self._results: list[AttemptResult] = []
        # One commit at a time: lanes that fill a batch meanwhile wait for it, so what a killed
        # worker sent but never recorded stays bounded (docs/architecture.md, "repeats").
        self._committing = asyncio.Lock()
        # Set by a result that may let a call's next event go (issue 14): commit it now, not at
        # the next tick, or every event of a call would wait a tick per predecessor.
        self._soon = asyncio.Event()

    def add(self, result: AttemptResult) -> bool:
        """Queue ``result`` for the next commit; True if a batch is full (``flush`` now). A
        result that finishes an event of a call has the flusher commit at once."""
        self._results.append(result)
        if _hands_on(result):
            self._soon.set()
        return len(self._results) >= self._batch_size

    def has_result(self, job: ClaimedJob) -> bool:
        """Whether a result of this very job waits for the next commit."""
        return any(res.job is job for res in self._results)

    async def run(self, stop: asyncio.Event, under_way: Callable[[], int]) -> None:
        """Commit every ``FLUSH_INTERVAL`` (at once after a result that lets a call's next event
        go) until ``stop`` and no attempt is ``under_way``."""
        while not stop.is_set() or under_way():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._soon.wait(), FLUSH_INTERVAL)
            self._soon.clear()
            if self._results:
                await self.flush()

    async def flush(self) -> None:
        """Record the waiting results in one transaction, retried while the database is
        unavailable (``FLUSH_RETRY_DELAYS``), then given up: their leases run out and the
        deliveries are attempted again (``Claims.lapse_at`` has the worker look then)."""
        async with self._committing:
            await self._flush_now()

    async def _flush_now(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, []
        jobs = [res.job for res in batch]
        self._leases.start_recording(jobs)
        delays = iter(FLUSH_RETRY_DELAYS)
        try:
            while True:
                try:
                    stale = await asyncio.to_thread(self._claims.complete, batch)
                    break
                except Exception as exc:
                    error = str(exc).strip()[:200]
                    delay = next(delays, None)
                    if delay is None:
                        log.error(
                            "results dropped; leases will expire",
                            extra={"count": len(batch), "error": error},
                        )
                        return  # the failed completions have set ``Claims.lapse_at``
                    log.warning(
                        "recording results failed; retrying",
                        extra={"count": len(batch), "error": error},
                    )
                    await asyncio.sleep(delay)
        finally:
            self._leases.finish(jobs)
            self._on_recorded()  # recorded jobs no longer count against their endpoint
        if self._on_line_moved is not None and any(_hands_on(res) for res in batch):
            self._on_line_moved()
        for res in stale:
            log.warning(
                "result refused: lease lost to another worker",
                extra={"delivery_id": res.job.delivery_id, "claim_id": res.job.claim_id},
            )
        if self._after_commit is not None:
            await self._after_commit()


def _hands_on(res: AttemptResult) -> bool:
    """Whether recording ``res`` may have made the next event of its call claimable."""
    return res.job.call_id is not None and (res.delivered or res.next_attempt_at is None)
