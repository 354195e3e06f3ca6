"""The delivery worker: claim due deliveries in batches, send them, record results in batches.

A claimed job is leased (``Leases``, renewed every third of ``lease_seconds``, fenced on the
claim id), queued in ``Dispatch`` (fair across endpoints, ``worker_per_endpoint_limit`` under way
per endpoint, call-control first), attempted by one of ``worker_max_in_flight`` lanes
(``Lanes``), and its result joins the next group commit (``Recorder``), which records it only if
this worker still holds the claim. A worker killed at any instant loses nothing: un-recorded
jobs are claimed again when their lease runs out (at-least-once). On shutdown, jobs not started
are released at once. An idle worker is woken by any process's publish (``notify``), when
what its last claim left out or leases a failure left behind may be claimable
(``Claims.look_again_in``), the poll every ``poll_interval`` being the safety net.

What a claim may take is shared state in the database (``store.endpoint_health``: paused,
failing with one probe at a time, disabled, slowed down, throttled); the group commit feeds each
result to its endpoint's health and ``HealthFeedback`` gives back the queued jobs of an endpoint
that may take no more. Every helper (lanes, flusher, renewer, pruner, line sweeper, side tasks)
is a named, watched task (``Tasks``): one dying stops the worker, drained, and ``run`` raises
``WorkerFailed`` naming it. docs/architecture.md, "The worker", has the whole picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any, Self

from callhook.core import ordering
from callhook.core.clock import Clock
from callhook.core.ids import Randomness
from callhook.delivery import sidetasks
from callhook.delivery.attempt import Attempts
from callhook.delivery.claims import Claims, left_out
from callhook.delivery.dispatch import Dispatch
from callhook.delivery.feedback import HealthFeedback
from callhook.delivery.housekeeping import prune_periodically, sweep_lines_periodically
from callhook.delivery.lanes import Lanes
from callhook.delivery.leaseholder import Leaseholder
from callhook.delivery.leases import Leases
from callhook.delivery.recorder import Recorder
from callhook.delivery.sender import Sender
from callhook.delivery.sidetasks import SideTask
from callhook.delivery.tasks import Tasks
from callhook.metrics import Metrics
from callhook.platform import Platform
from callhook.settings import Settings
from callhook.store import notify
from callhook.store.db import Database
from callhook.store.queue import ClaimedJob
from callhook.store.secretbox import SecretBox

log = logging.getLogger("callhook.delivery")


class Worker:
    """One event loop's delivery worker. ``run`` returns after ``stop`` is set and drained, or
    raises ``WorkerFailed`` (after draining) if one of its tasks died."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock,
        rng: Randomness,
        box: SecretBox,
        metrics: Metrics | None = None,
        worker_id: str | None = None,
        side_tasks: Sequence[SideTask] = (),
    ) -> None:
        self._db = db
        self._side_tasks = tuple(side_tasks)  # the alert sender, the health checks: watched
        self._settings = settings
        self._clock = clock
        self.worker_id = worker_id = (
            worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._slot_freed = asyncio.Event()  # set whenever an attempt finishes
        self._room = asyncio.Event()  # set when enough places are free for the next claim
        max_in_flight = max(settings.worker_max_in_flight, 1)
        # Claimed jobs not finished may be up to twice the lanes: every lane busy and a lane-load
        # queued, so lanes do not wait for claims; the next claim starts once half of that is
        # free. Claims are write transactions: claiming in big batches keeps them rare.
        self._budget = 2 * max_in_flight
        # Endpoints answering slowly share three quarters of the lanes: the rest stay free for
        # the others' events (issue 13: a healthy endpoint is not kept waiting by slow ones).
        # Call-control events start before their endpoint's queued bulk ones (issue 14).
        self._dispatch: Dispatch[ClaimedJob] = Dispatch(
            settings.worker_per_endpoint_limit,
            slow_places=max(1, max_in_flight * 3 // 4),
            urgent=lambda job: ordering.is_call_control(job.event),
        )
        self.leases: Leases[ClaimedJob] = Leases(timedelta(seconds=settings.lease_seconds))
        # A failure that leaves leases behind wakes the claim loop (``Claims.lapse_from``).
        self.claims = Claims(
            db, settings, clock=clock, rng=rng, box=box, worker_id=worker_id, on_lapse=self.wake
        )
        self.recorder = Recorder(
            self.claims,
            self.leases,
            batch_size=settings.worker_batch_size,
            on_recorded=self._slot_freed.set,
            after_commit=lambda: self._feedback.after_commit(),
            # A finished event of a call may let the next one be claimed: look for it now.
            on_line_moved=self.wake,
        )
        self._attempts = Attempts(clock=clock, rng=rng, metrics=metrics)
        self._lanes = Lanes(
            max_in_flight,
            dispatch=self._dispatch,
            leases=self.leases,
            attempts=self._attempts,
            recorder=self.recorder,
            claims=self.claims,
            room=self._room,
            slot_freed=self._slot_freed,
            slow_ms=settings.delivery_timeout * 1000 / 2,
        )
        self._feedback = HealthFeedback(self.claims, self._lanes, metrics)
        self._leaseholder = Leaseholder(
            self.leases,
            self.claims,
            self._dispatch,
            clock=clock,
            room=self._room,
            worker_id=self.worker_id,
        )
        self.listener: notify.WakeListener | None = None

    @classmethod
    def for_platform(cls, platform: Platform, *, worker_id: str | None = None) -> Self:
        """A worker on this platform's database, settings, clock, randomness and metrics."""
        return cls(
            platform.db,
            platform.settings,
            clock=platform.clock,
            rng=platform.rng,
            box=platform.box,
            metrics=platform.metrics,
            worker_id=worker_id,
            side_tasks=sidetasks.for_platform(platform),
        )

    @property
    def attempted(self) -> int:
        """Attempts made by this worker so far."""
        return self._attempts.made

    @property
    def delivered(self) -> int:
        """Attempts that delivered (2xx) so far."""
        return self._attempts.delivered

    @property
    def leases_lost(self) -> int:
        """Jobs found taken over by another worker when their leases were renewed."""
        return self.leases.lost

    def wake(self) -> None:
        """Ask an idle worker to look for work now. Safe from any thread."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then drain: give back jobs not started, finish and
        record the attempts under way. Raises ``WorkerFailed`` (chained) if a task died."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.listener = notify.listener_for(self._db, self.wake)
        tasks = Tasks(stop, worker_id=self.worker_id)
        try:
            async with Sender(self._settings, clock=self._clock) as sender:
                lanes = [
                    tasks.start(f"lane {i}", self._lanes.run(sender, stop))
                    for i in range(self._lanes.count)
                ]
                flusher = tasks.start(
                    "results flusher", self.recorder.run(stop, lambda: self._dispatch.in_flight)
                )
                releaser = tasks.start("releaser", self._leaseholder.release_on_stop(stop))
                helpers = [
                    tasks.start("lease renewer", self._leaseholder.renew()),
                    tasks.start(
                        "pruner",
                        prune_periodically(
                            self._db, self._settings, self._clock, stop, worker_id=self.worker_id
                        ),
                    ),
                    tasks.start("stop relay", self._relay_stop(stop)),
                    tasks.start(
                        "line sweeper",
                        sweep_lines_periodically(
                            self._db, self._settings, self._clock, stop, wake=self.wake
                        ),
                    ),
                    *(
                        tasks.start(f"side task {sidetasks.name_of(t)}", sidetasks.watched(t, stop))
                        for t in self._side_tasks
                    ),
                ]
                claimer = tasks.start("claim loop", self._claim_loop(stop))
                try:
                    await tasks.settle([claimer])
                finally:
                    stop.set()
                    await tasks.settle([claimer, releaser])
                    self._lanes.wake_all()
                    await tasks.settle(lanes)
                    await tasks.settle([flusher])
                    await tasks.guard("final flush", self.recorder.flush())
                    await tasks.cancel(helpers)
        finally:
            if self.listener is not None:
                await asyncio.to_thread(self.listener.stop)
        tasks.raise_failure()

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        assert self._wake is not None
        lanes = self._lanes
        woken = False  # a wake not yet followed by a claim
        while not stop.is_set():
            if lanes.pressure() > lanes.count:
                self._room.clear()
                await self._room.wait()
                continue
            # Only a wake (a publish, a hand-on, a failure) gives a busy endpoint an urgent job.
            # Cleared before claiming: what commits meanwhile sets them again (no missed wake).
            woken = woken or self._wake.is_set()
            self._wake.clear()
            self._slot_freed.clear()
            now = self._clock.now()
            saturated = self._dispatch.saturated()
            # Held jobs under twice the budget (``pressure`` leaves slow ones out).
            limit = min(
                self._budget - lanes.pressure(),
                2 * self._budget - lanes.outstanding(),
                self._settings.worker_batch_size,
            )
            if limit <= 0:  # held jobs fill the budget: any finished attempt makes room
                await self._wait_wake(stop, set(), capped=True)
                continue
            urgent = self._dispatch.wanting_urgent() if woken else set()
            woken = False
            try:
                jobs = await asyncio.to_thread(
                    self.claims.claim, limit, left_out(saturated), urgent
                )
            except Exception:
                log.exception("claim failed; retrying", extra={"worker": self.worker_id})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                continue
            if jobs and stop.is_set():  # claimed while stopping: give them back, untouched
                await asyncio.to_thread(self.claims.release, jobs)
                break
            self.leases.hold(jobs, now=now)
            self._dispatch.add(jobs)
            lanes.wake(len(jobs))
            short = self.claims.cut_short - self._dispatch.saturated()
            if len(jobs) < limit and not short and (self.claims.exhaustive or not jobs):
                # It took all it could: claim again once that may change (docs/performance.md).
                await self._wait_wake(
                    stop, saturated | self._dispatch.saturated(), capped=self.claims.capped
                )

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        """Let a stop end any wait for a free slot (one event to wait on, not two tasks)."""
        await stop.wait()
        self._slot_freed.set()
        self._room.set()

    async def _wait_wake(self, stop: asyncio.Event, saturated: set[str], *, capped: bool) -> None:
        """Wait for a publish, the poll, or — if the last claim left ``saturated`` endpoints out
        for lack of room, or the store ``capped`` one — an attempt finishing since that claim
        began that makes room (``Lanes.freed_for``). Both events were cleared before the claim,
        so nothing that happened during it is missed."""
        assert self._wake is not None
        waiting_on: list[Coroutine[Any, Any, object]] = [self._wake.wait(), stop.wait()]
        if saturated or capped:
            waiting_on.append(self._lanes.freed_for(saturated, any_slot=capped))
        waiters = {asyncio.create_task(w) for w in waiting_on}
        # Look again when something the last claim left out may change (a token, a probe, a
        # slow-down ending) or leases a failure left behind run out, if before the poll.
        timeout = min(self._settings.poll_interval, self.claims.look_again_in(self._clock.now()))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
