"""The worker's statements on the queue (claim, renew, release, complete) and whom a claim
leaves out.

Each statement is one write transaction (``store.queue`` has the SQL), run in a thread by the
caller (``asyncio.to_thread``); each raises what the database raises, and the caller decides
whether to retry. ``left_out`` is the pure part of the claim policy.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from callhook.core.breaker import Breakers
from callhook.core.clock import Clock
from callhook.core.ids import Randomness, new_id
from callhook.settings import Settings
from callhook.store import queue
from callhook.store.db import Database
from callhook.store.queue import AttemptResult, ClaimedJob
from callhook.store.secretbox import SecretBox


def left_out(
    saturated: set[str], held: Counter[str], breakers: Breakers, now: datetime
) -> set[str]:
    """Endpoints to leave out of the next claim: those already holding their share of this
    worker (``saturated``: a slow endpoint must not fill every place), those whose breaker is
    open, and those whose half-open breaker has its one probe ``held`` here already."""
    probing = {endpoint for endpoint in breakers.probing(now) if held[endpoint]}
    return saturated | probing | breakers.blocked(now)


class Claims:
    """One worker's queue statements, on its database, clock and randomness."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock,
        rng: Randomness,
        box: SecretBox,
        worker_id: str,
    ) -> None:
        self._db = db
        self._clock = clock
        self._rng = rng
        self._box = box
        self._worker_id = worker_id
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._per_endpoint = settings.worker_claim_per_endpoint
        self._secret_cache: dict[str, str] = {}  # decrypted secrets, by ciphertext

    def claim(self, limit: int, exclude: set[str], probing: set[str]) -> list[ClaimedJob]:
        """Claim up to ``limit`` due jobs, fairly across endpoints (``queue.claim``), none of
        the endpoints in ``exclude``; for an endpoint whose breaker is half-open (``probing``)
        keep one (the probe) and give the rest back in the same transaction."""
        now = self._clock.now()
        with self._db.write() as conn:
            jobs = queue.claim(
                conn,
                worker_id=self._worker_id,
                claim_id=new_id("clm", now, self._rng),
                now=now,
                lease=self._lease,
                limit=limit,
                box=self._box,
                secret_cache=self._secret_cache,
                exclude_endpoints=exclude,
                per_endpoint=self._per_endpoint,
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

    def renew(self, jobs: list[ClaimedJob]) -> set[str]:
        """Extend the leases of ``jobs`` still ours; returns the delivery ids renewed."""
        with self._db.write() as conn:
            return queue.renew_lease(conn, jobs, now=self._clock.now(), lease=self._lease)

    def release(self, jobs: list[ClaimedJob]) -> None:
        """Give ``jobs`` back unstarted, due at once for any worker."""
        with self._db.write() as conn:
            queue.release(conn, jobs)

    def complete(self, batch: list[AttemptResult]) -> list[AttemptResult]:
        """Record ``batch``; returns the results refused because their claim was lost."""
        with self._db.write() as conn:
            return queue.complete(conn, batch)
