"""The delivery worker: claim due deliveries in batches, send them, record results in batches.

Life of a claimed job: claimed (leased) → queued in ``Dispatch`` (fair across endpoints, at
most ``worker_per_endpoint_limit`` attempts under way per endpoint) → one of
``worker_max_in_flight`` lanes makes one attempt → its result joins the next group commit (every
``FLUSH_INTERVAL`` or ``worker_batch_size`` results), which records the attempt and
reschedules, delivers or fails the delivery — only if this worker still holds the claim. A
worker killed at any instant loses nothing: un-recorded jobs are claimed again when their lease
runs out (at-least-once; receivers dedupe on the event id).

While a job is held its lease is renewed every third of ``lease_seconds`` (fenced on the claim
id: a job lost to another worker is dropped, not renewed). On shutdown the jobs not yet started
are released in one statement at once, so other workers take them without waiting for expiry.
An idle worker is woken when any process publishes (``notify.listener_for``: ``LISTEN`` on
PostgreSQL, a datagram socket beside a SQLite file); the poll every ``poll_interval`` stays as
the safety net. Every ``prune_interval_minutes`` the worker also prunes what is older than
``retention_days`` (``callhook.store.prune``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import Counter, deque
from datetime import timedelta
from typing import Self

from callhook.core import ordering
from callhook.core.breaker import TRIPPING, Breakers
from callhook.core.clock import Clock
from callhook.core.ids import Randomness, new_id
from callhook.delivery.attempt import Attempts
from callhook.delivery.dispatch import Dispatch
from callhook.delivery.housekeeping import prune_periodically, sweep_lines_periodically
from callhook.delivery.sender import Sender
from callhook.metrics import Metrics
from callhook.platform import Platform
from callhook.settings import Settings
from callhook.store import notify, queue
from callhook.store.db import Database
from callhook.store.queue import AttemptResult, ClaimedJob
from callhook.store.secretbox import SecretBox

log = logging.getLogger("callhook.delivery")

FLUSH_INTERVAL = 0.025  # seconds: group-commit window for attempt results
# Back-off while results cannot be recorded (database restarting); after the last one the
# results are dropped and the deliveries are attempted again once their leases run out.
FLUSH_RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


class Worker:
    """One event loop's delivery worker. ``run`` returns after ``stop`` is set and drained."""

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
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._rng = rng
        self._box = box
        self._metrics = metrics
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._slot_freed = asyncio.Event()  # set whenever an attempt finishes
        self._room = asyncio.Event()  # set when enough places are free for the next claim
        self._results: list[AttemptResult] = []
        self._max_in_flight = max(settings.worker_max_in_flight, 1)
        # Claimed jobs not finished may be up to twice the lanes: every lane busy and a lane-load
        # queued, so lanes do not wait for claims; the next claim starts once half of that is
        # free. Claims are write transactions: claiming in big batches keeps them rare.
        self._budget = 2 * self._max_in_flight
        # Claimed jobs not started yet, handed to ``worker_max_in_flight`` lanes (long-lived
        # coroutines: a task per attempt cost more than the rest of the bookkeeping).
        self._dispatch: Dispatch[ClaimedJob] = Dispatch(
            settings.worker_per_endpoint_limit, urgent=_call_control
        )
        self._idle_lanes: deque[asyncio.Future[None]] = deque()
        self._secret_cache: dict[str, str] = {}
        self._breakers = Breakers()
        # Jobs this worker holds a lease on (claimed, result not yet recorded), by delivery id;
        # those whose result is being recorded right now.
        self._held: dict[str, ClaimedJob] = {}
        self._recording: set[str] = set()
        self.listener: notify.WakeListener | None = None
        self._attempts = Attempts(clock=clock, rng=rng, metrics=metrics)
        self.leases_lost = 0

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
        )

    @property
    def attempted(self) -> int:
        """Attempts made by this worker so far."""
        return self._attempts.made

    @property
    def delivered(self) -> int:
        """Attempts that delivered (2xx) so far."""
        return self._attempts.delivered

    # --- waking --------------------------------------------------------------------------------
    def wake(self) -> None:
        """Ask an idle worker to look for work now. Safe from any thread."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    # --- the loop ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.listener = notify.listener_for(self._db, self.wake)
        async with Sender(self._settings, clock=self._clock) as sender:
            lanes = [
                asyncio.create_task(self._lane(sender, stop)) for _ in range(self._max_in_flight)
            ]
            flusher = asyncio.create_task(self._flush_loop(stop))
            releaser = asyncio.create_task(self._release_on_stop(stop))
            helpers = [
                asyncio.create_task(self._renew_loop()),
                asyncio.create_task(
                    prune_periodically(
                        self._db, self._settings, self._clock, stop, worker_id=self.worker_id
                    )
                ),
                asyncio.create_task(self._relay_stop(stop)),
                asyncio.create_task(
                    sweep_lines_periodically(
                        self._db, self._settings, self._clock, stop, wake=self.wake
                    )
                ),
            ]
            try:
                await self._claim_loop(stop)
            finally:
                stop.set()
                await releaser
                self._wake_lanes(len(self._idle_lanes))
                await asyncio.gather(*lanes, return_exceptions=True)
                await flusher
                await self._flush()
                for helper in helpers:
                    helper.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
                if self.listener is not None:
                    await asyncio.to_thread(self.listener.stop)

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        assert self._wake is not None
        while not stop.is_set():
            if self._outstanding() > self._max_in_flight:
                self._room.clear()
                await self._room.wait()
                continue
            # Cleared before claiming, not after: a publish that commits (or a slot that frees)
            # while this claim runs sets them again, so the wait below returns at once.
            self._wake.clear()
            self._slot_freed.clear()
            try:
                now = self._clock.now()
                saturated = self._dispatch.saturated()
                jobs = await asyncio.to_thread(
                    self._claim,
                    min(self._budget - self._outstanding(), self._settings.worker_batch_size),
                    self._no_room(saturated),
                    self._breakers.probing(now),
                )
            except Exception:
                log.exception("claim failed; retrying", extra={"worker": self.worker_id})
                await self._sleep(stop, 1.0)
                continue
            if jobs and stop.is_set():
                # Claimed while shutting down: give them back at once, untouched.
                await asyncio.to_thread(self._release, jobs)
                break
            if not jobs:
                await self._wait_wake(stop, room_matters=bool(saturated))
                continue
            for job in jobs:
                self._held[job.delivery_id] = job
            self._dispatch.add(jobs)
            self._wake_lanes(len(jobs))

    def _outstanding(self) -> int:
        """Claimed jobs not finished: waiting to start, or under way."""
        return self._dispatch.queued + self._dispatch.in_flight

    def _wake_lanes(self, count: int) -> None:
        while count > 0 and self._idle_lanes:
            lane = self._idle_lanes.popleft()
            if not lane.done():
                lane.set_result(None)
                count -= 1

    def _no_room(self, saturated: set[str]) -> set[str]:
        """Endpoints to leave out of the next claim: those already holding their share of this
        worker (a slow endpoint must not fill every place) and those whose breaker is open or
        has its one probe under way."""
        now = self._clock.now()
        held = Counter(job.endpoint_id for job in self._held.values())
        probing = {endpoint for endpoint in self._breakers.probing(now) if held[endpoint]}
        return saturated | probing | self._breakers.blocked(now)

    def _claim(self, limit: int, exclude: set[str], probing: set[str]) -> list[ClaimedJob]:
        """Claim due jobs; for an endpoint whose breaker is half-open keep one (the probe) and
        give the rest back in the same transaction."""
        now = self._clock.now()
        with self._db.write() as conn:
            jobs = queue.claim(
                conn,
                worker_id=self.worker_id,
                claim_id=new_id("clm", now, self._rng),
                now=now,
                lease=timedelta(seconds=self._settings.lease_seconds),
                limit=limit,
                box=self._box,
                secret_cache=self._secret_cache,
                exclude_endpoints=exclude,
                per_endpoint=self._settings.worker_per_endpoint_limit,
            )
            if not probing:
                return jobs
            kept: list[ClaimedJob] = []
            extra: list[ClaimedJob] = []
            probes: set[str] = set()
            for job in jobs:
                if job.endpoint_id not in probing:
                    kept.append(job)
                elif job.endpoint_id in probes:
                    extra.append(job)
                else:
                    probes.add(job.endpoint_id)
                    kept.append(job)
            if extra:
                queue.release(conn, extra)
            return kept

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        """Let a stop end any wait for a free slot (one event to wait on, not two tasks)."""
        await stop.wait()
        self._slot_freed.set()
        self._room.set()

    async def _wait_wake(self, stop: asyncio.Event, *, room_matters: bool) -> None:
        """Wait for a publish, the poll, or — if the last claim left endpoints out for lack of
        room (``room_matters``) — an attempt finishing since that claim began. Both events were
        cleared before the claim, so nothing that happened during it is missed. (Waking on
        every finished attempt regardless made a lightly loaded worker run an empty claim
        transaction per delivery, competing with publishers for SQLite's one writer.)"""
        assert self._wake is not None
        waiting_on = [self._wake.wait(), stop.wait()]
        if room_matters:
            waiting_on.append(self._slot_freed.wait())
        waiters = {asyncio.create_task(w) for w in waiting_on}
        try:
            await asyncio.wait(
                waiters, timeout=self._settings.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for w in waiters:
                w.cancel()

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    # --- one attempt ---------------------------------------------------------------------------
    async def _lane(self, sender: Sender, stop: asyncio.Event) -> None:
        """Start queued jobs one after another; park while none may start; end on stop."""
        loop = asyncio.get_running_loop()
        dispatch = self._dispatch
        while True:
            job = dispatch.take()
            if job is None:
                if stop.is_set():
                    return
                parked = loop.create_future()
                self._idle_lanes.append(parked)
                await parked
                continue
            healthy = True
            try:
                healthy = await self._attempt(job, sender)
            except Exception as exc:
                # Never leave the attempt unrecorded: its lease would run out and it would be
                # sent again, as the same attempt number, past its retry window. Unless its
                # result is already queued or recorded (or the job was lost to another worker),
                # record it as Callhook's own failure (logged there), on the normal schedule.
                if self._unrecorded(job):
                    self._results.append(self._attempts.crashed(job, exc))
                else:
                    log.exception(
                        "attempt bookkeeping failed", extra={"delivery_id": job.delivery_id}
                    )
            finally:
                if dispatch.done(job, healthy=healthy):
                    self._wake_lanes(1)
                self._slot_freed.set()
                if self._outstanding() <= self._max_in_flight:
                    self._room.set()

    def _unrecorded(self, job: ClaimedJob) -> bool:
        """Whether ``job`` is still held with no result queued or being recorded."""
        return (
            job.delivery_id in self._held
            and job.delivery_id not in self._recording
            and not any(res.job is job for res in self._results)
        )

    async def _attempt(self, job: ClaimedJob, sender: Sender) -> bool:
        """One attempt, its result queued for the group commit; False if the endpoint did not
        answer (timeout, connection or TLS failure)."""
        result = await self._attempts.make(job, sender)
        failed = None if result.delivered else result.error_class
        if self._breakers.record(job.endpoint_id, error_class=failed, now=self._clock.now()):
            await self._trip(job.endpoint_id)
        self._results.append(result)
        if len(self._results) >= self._settings.worker_batch_size:
            await self._flush()
        return failed not in TRIPPING

    async def _trip(self, endpoint_id: str) -> None:
        """The endpoint's breaker opened: give back its jobs that have not started, at once."""
        jobs = self._dispatch.drop(j.delivery_id for j in self._dispatch.queued_jobs(endpoint_id))
        for job in jobs:
            self._held.pop(job.delivery_id, None)
        self._room.set()  # the claim loop re-checks how many places are free
        log.warning(
            "endpoint failing: pausing its deliveries",
            extra={"endpoint_id": endpoint_id, "released": len(jobs)},
        )
        if jobs:
            try:
                await asyncio.to_thread(self._release, jobs)
            except Exception as exc:
                log.warning("releasing leases failed; they will expire", extra={"error": str(exc)})

    # --- group commit --------------------------------------------------------------------------
    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set() or self._dispatch.in_flight:
            await asyncio.sleep(FLUSH_INTERVAL)
            if self._results:
                await self._flush()

    async def _flush(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, []
        ids = {res.job.delivery_id for res in batch}
        self._recording |= ids
        try:
            for delay in FLUSH_RETRY_DELAYS:
                try:
                    stale = await asyncio.to_thread(self._complete, batch)
                    break
                except Exception as exc:
                    # The database is unavailable: keep the results and try again; if we never
                    # succeed, the leases run out and the deliveries are attempted again.
                    log.warning(
                        "recording results failed; retrying",
                        extra={"count": len(batch), "error": str(exc).strip()[:200]},
                    )
                    await asyncio.sleep(delay)
            else:
                log.error("results dropped; leases will expire", extra={"count": len(batch)})
                return
        finally:
            self._recording -= ids
            for delivery_id in ids:
                self._held.pop(delivery_id, None)
            self._slot_freed.set()  # recorded jobs no longer count against their endpoint
        if self._wake is not None and any(_hands_on(res) for res in batch):
            # A finished event of a call lets the next one be claimed: look for it now.
            self._wake.set()
        for res in stale:
            log.warning(
                "result refused: lease lost to another worker",
                extra={"delivery_id": res.job.delivery_id, "claim_id": res.job.claim_id},
            )

    def _complete(self, batch: list[AttemptResult]) -> list[AttemptResult]:
        with self._db.write() as conn:
            return queue.complete(conn, batch)

    def _release(self, jobs: list[ClaimedJob]) -> None:
        with self._db.write() as conn:
            queue.release(conn, jobs)

    # --- leases --------------------------------------------------------------------------------
    async def _release_on_stop(self, stop: asyncio.Event) -> None:
        """At shutdown, give back every held job that has not started, in one statement."""
        await stop.wait()
        jobs = self._dispatch.drop([j.delivery_id for j in self._dispatch.queued_jobs()])
        for job in jobs:
            self._held.pop(job.delivery_id, None)
        if not jobs:
            return
        try:
            await asyncio.to_thread(self._release, jobs)
        except Exception as exc:
            log.warning(
                "releasing leases failed; they will expire",
                extra={"count": len(jobs), "error": str(exc).strip()[:200]},
            )
        else:
            log.info("released leases", extra={"count": len(jobs), "worker": self.worker_id})

    async def _renew_loop(self) -> None:
        """Renew held leases every third of a lease, so long attempts keep their jobs."""
        every = max(self._settings.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(every)
            held = list(self._held.values())
            if not held:
                continue
            try:
                renewed = await asyncio.to_thread(self._renew, held)
            except Exception as exc:
                log.warning("lease renewal failed", extra={"error": str(exc).strip()[:200]})
                continue
            for job in held:
                gone = job.delivery_id in renewed or job.delivery_id in self._recording
                if gone or job.delivery_id not in self._held:
                    continue
                # Another worker owns it now: do not start it; a result would be refused.
                self.leases_lost += 1
                self._held.pop(job.delivery_id, None)
                self._dispatch.drop([job.delivery_id])
                self._room.set()
                log.warning(
                    "lease lost to another worker",
                    extra={"delivery_id": job.delivery_id, "claim_id": job.claim_id},
                )

    def _renew(self, jobs: list[ClaimedJob]) -> set[str]:
        with self._db.write() as conn:
            return queue.renew_lease(
                conn,
                jobs,
                now=self._clock.now(),
                lease=timedelta(seconds=self._settings.lease_seconds),
            )


def _hands_on(res: AttemptResult) -> bool:
    """Whether recording ``res`` may have made the next event of its call claimable."""
    return res.job.call_id is not None and (res.delivered or res.next_attempt_at is None)


def _call_control(job: ClaimedJob) -> bool:
    """Whether ``job`` starts before its endpoint's bulk jobs (issue 14's priority)."""
    return ordering.group_of(job.event) is ordering.EventGroup.CALL_CONTROL
