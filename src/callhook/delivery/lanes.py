"""The worker's attempt lanes: ``worker_max_in_flight`` long-lived coroutines that start the
claimed jobs ``Dispatch`` hands out, one attempt at a time each; their results go to the group
commit (``Recorder``), which feeds the endpoints' health in the store.

A task per attempt cost more than the rest of the bookkeeping, so lanes park on a future while
nothing may start and the claim loop (or a finished attempt) wakes as many as there is work for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from callhook.delivery.attempt import Attempts
from callhook.delivery.claims import Claims
from callhook.delivery.dispatch import Dispatch
from callhook.delivery.leases import Leases
from callhook.delivery.recorder import Recorder
from callhook.delivery.sender import Sender
from callhook.store.queue import ClaimedJob

log = logging.getLogger("callhook.delivery")

#: Failures that held a connection slot for long: the dispatcher gives such an endpoint less
#: room (an endpoint that answers, even with a 5xx, answers fast).
HOLDS_A_CONNECTION = frozenset({"timeout", "connect_error", "tls_error"})


class Lanes:
    """``count`` lanes over one worker's ``dispatch``. ``room`` is set when enough places are
    free for the next claim, ``slot_freed`` whenever an attempt finishes."""

    def __init__(
        self,
        count: int,
        *,
        dispatch: Dispatch[ClaimedJob],
        leases: Leases[ClaimedJob],
        attempts: Attempts,
        recorder: Recorder,
        claims: Claims,
        room: asyncio.Event,
        slot_freed: asyncio.Event,
        slow_ms: float = float("inf"),
    ) -> None:
        self.count = count
        #: An answer taking at least this long (ms) is slow (``Dispatch.done(slow=…)``).
        self.slow_ms = slow_ms
        self._dispatch = dispatch
        self._leases = leases
        self._attempts = attempts
        self._recorder = recorder
        self._claims = claims
        self._room = room
        self._slot_freed = slot_freed
        self._idle: deque[asyncio.Future[None]] = deque()

    def outstanding(self) -> int:
        """Claimed jobs not finished: waiting to start, or under way."""
        return self._dispatch.queued + self._dispatch.in_flight

    def pressure(self) -> int:
        """Attempts under way plus queued jobs a free lane would start now: what the claim
        loop weighs against the lane count (jobs of endpoints that must wait do not count)."""
        return self._dispatch.in_flight + self._dispatch.startable()

    async def freed_for(self, saturated: set[str], *, any_slot: bool) -> None:
        """Return once an attempt has finished (since ``slot_freed`` was last cleared) that gives
        a claim which left ``saturated`` out something new: any attempt with ``any_slot`` (the
        store's in-flight counts changed), else one that takes an endpoint of ``saturated``
        below its share. Returning at every finished attempt made a worker whose endpoints were
        all saturated run an empty claim per attempt (measured: 1,399 empty claims of 4 ms each
        in one run of the priority bench, a third of the writer's time)."""
        while True:
            await self._slot_freed.wait()
            if any_slot or self._dispatch.any_below_share(saturated):
                return
            self._slot_freed.clear()

    def wake(self, count: int) -> None:
        """Wake up to ``count`` parked lanes (jobs were queued, or the worker is stopping)."""
        while count > 0 and self._idle:
            lane = self._idle.popleft()
            if not lane.done():
                lane.set_result(None)
                count -= 1

    def wake_all(self) -> None:
        self.wake(len(self._idle))

    async def run(self, sender: Sender, stop: asyncio.Event) -> None:
        """One lane: start queued jobs one after another; park while none may start; end once
        ``stop`` is set and nothing is left to start."""
        loop = asyncio.get_running_loop()
        dispatch = self._dispatch
        while True:
            job = dispatch.take()
            if job is None:
                if stop.is_set():
                    return
                # Nothing this lane may start (what is queued waits for room or a slow place):
                # the claim loop may fetch other endpoints' work for it.
                if self.pressure() <= self.count:
                    self._room.set()
                parked = loop.create_future()
                self._idle.append(parked)
                await parked
                continue
            healthy, slow = True, False
            try:
                healthy, slow = await self._attempt(job, sender)
            except Exception as exc:
                # Never leave the attempt unrecorded: its lease would run out and it would be
                # sent again, as the same attempt number, past its retry window. Unless its
                # result is already queued or recorded (or the job was lost to another worker),
                # record it as Callhook's own failure (logged there), on the normal schedule.
                if self._leases.is_unrecorded(job) and not self._recorder.has_result(job):
                    self._recorder.add(self._attempts.crashed(job, exc))
                else:
                    log.exception(
                        "attempt bookkeeping failed", extra={"delivery_id": job.delivery_id}
                    )
            finally:
                if dispatch.done(job, healthy=healthy, slow=slow):
                    self.wake(1)
                self._slot_freed.set()
                if self.pressure() <= self.count:
                    self._room.set()

    async def _attempt(self, job: ClaimedJob, sender: Sender) -> tuple[bool, bool]:
        """One attempt, its result queued for the group commit; (healthy, slow): healthy False
        if the endpoint did not answer (timeout, connection or TLS failure), slow True if it
        answered but took ``slow_ms`` or more."""
        result = await self._attempts.make(job, sender)
        failed = None if result.delivered else result.error_class
        if self._recorder.add(result):
            await self._recorder.flush()
        healthy = failed not in HOLDS_A_CONNECTION
        return healthy, healthy and result.duration_ms >= self.slow_ms

    async def hold_back(self, endpoint_id: str, why: str) -> None:
        """The endpoint may take no more now (failing, paused, disabled, or slowed down by a
        Retry-After): give back its jobs that have not started, at once."""
        jobs = self._dispatch.drop(j.delivery_id for j in self._dispatch.queued_jobs(endpoint_id))
        self._leases.release(jobs)
        self._room.set()  # the claim loop re-checks how many places are free
        log.warning(
            "endpoint held back: giving back its deliveries",
            extra={"endpoint_id": endpoint_id, "why": why, "released": len(jobs)},
        )
        if jobs:
            try:
                await asyncio.to_thread(self._claims.release, jobs)
            except Exception as exc:
                log.warning("releasing leases failed; they will expire", extra={"error": str(exc)})
