"""Keeping the worker's leases: renewed while held, the unstarted ones given back at shutdown.

The bookkeeping is ``Leases`` (pure); this is its I/O, as two of the worker's tasks.
"""

from __future__ import annotations

import asyncio
import logging

from callhook.core.clock import Clock
from callhook.delivery.claims import Claims
from callhook.delivery.dispatch import Dispatch
from callhook.delivery.leases import Leases
from callhook.store.queue import ClaimedJob

log = logging.getLogger("callhook.delivery")


class Leaseholder:
    """Renews and releases ``leases`` with ``claims``; jobs lost or released leave ``dispatch``
    and set ``room`` (the claim loop re-checks how many places are free)."""

    def __init__(
        self,
        leases: Leases[ClaimedJob],
        claims: Claims,
        dispatch: Dispatch[ClaimedJob],
        *,
        clock: Clock,
        room: asyncio.Event,
        worker_id: str,
    ) -> None:
        self._leases = leases
        self._claims = claims
        self._dispatch = dispatch
        self._clock = clock
        self._room = room
        self._worker_id = worker_id

    async def renew(self) -> None:
        """Renew held leases every third of a lease, so long attempts keep their jobs; runs
        until cancelled. A failed renewal is logged and tried again next time."""
        leases = self._leases
        while True:
            await asyncio.sleep(leases.renew_interval)
            batch = leases.to_renew()
            if not batch:
                continue
            now = self._clock.now()  # before the statement: the lease lasts at least from here
            try:
                renewed = await asyncio.to_thread(self._claims.renew, batch)
            except Exception as exc:
                lapsed = len(leases.lapsed(self._clock.now()))
                log.warning(
                    "lease renewal failed",
                    extra={"error": str(exc).strip()[:200], "lapsed": lapsed},
                )
                # Its commit may have gone through: as if it renewed every job of the batch.
                if leases.orphaned(batch, {job.delivery_id for job in batch}):
                    self._claims.lapse_from(self._clock.now())
                continue
            if leases.orphaned(batch, renewed):  # results dropped meanwhile: look again later
                self._claims.lapse_from(self._clock.now())
            lost = leases.renewed(batch, renewed, now=now)
            if lost:
                # Another worker owns them now: do not start them; a result would be refused.
                self._dispatch.drop([job.delivery_id for job in lost])
                self._room.set()
            for job in lost:
                log.warning(
                    "lease lost to another worker",
                    extra={"delivery_id": job.delivery_id, "claim_id": job.claim_id},
                )

    async def release_on_stop(self, stop: asyncio.Event) -> None:
        """At shutdown, give back every held job that has not started, in one statement."""
        await stop.wait()
        jobs = self._dispatch.drop([j.delivery_id for j in self._dispatch.queued_jobs()])
        self._leases.release(jobs)
        if not jobs:
            return
        try:
            await asyncio.to_thread(self._claims.release, jobs)
        except Exception as exc:
            log.warning(
                "releasing leases failed; they will expire",
                extra={"count": len(jobs), "error": str(exc).strip()[:200]},
            )
        else:
            log.info("released leases", extra={"count": len(jobs), "worker": self._worker_id})
