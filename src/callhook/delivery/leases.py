"""Which claimed jobs a worker holds a lease on, and what became of each. Pure bookkeeping.

A worker holds a job's lease from its claim until the job is done with: its result recorded
(``finish``), the job given back unstarted (``release``), or found taken over by another worker
when its lease was renewed (``renewed`` returns it as lost). While a result is being written
the job is *recording*: a renewal that misses it then (the write may have just ended the lease)
does not count as a loss. ``Leases`` also keeps, per job, the latest moment its lease surely
lasts until (``now`` is taken before each claim or renewal statement, so this errs early),
which says which leases have lapsed while renewals fail.

No I/O, no asyncio, no clock of its own: the worker passes ``now`` in and runs the statements
(``store.queue.claim``, ``renew_lease``, ``release``, ``complete``); tests drive this directly.
Jobs are told apart by identity, not only by delivery id: a job this worker lost and claimed
again is a new job, and news about the old one must not touch it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

#: Renewals are never more often than this (seconds), however short the lease.
MIN_RENEW_INTERVAL = 0.05


class Leased(Protocol):
    @property
    def delivery_id(self) -> str: ...

    @property
    def endpoint_id(self) -> str: ...


L = TypeVar("L", bound=Leased)


class Leases(Generic[L]):
    """The jobs one worker holds, by delivery id. ``lease`` is how long a claim or a renewal
    lasts (``Settings.lease_seconds``)."""

    def __init__(self, lease: timedelta) -> None:
        if lease <= timedelta(0):
            raise ValueError("a lease must last some time")
        self.lease = lease
        self._held: dict[str, L] = {}
        self._until: dict[str, datetime] = {}
        self._recording: set[str] = set()
        self.lost = 0  # jobs found taken over by another worker, since the start

    @property
    def renew_interval(self) -> float:
        """Seconds between renewals: a third of a lease, so two renewals in a row may fail
        (a slow statement, a database restart) before a held lease runs out."""
        return max(self.lease.total_seconds() / 3, MIN_RENEW_INTERVAL)

    def __len__(self) -> int:
        return len(self._held)

    def holds(self, job: L) -> bool:
        """Whether this very job (not another claim of its delivery) is held."""
        return self._held.get(job.delivery_id) is job

    def hold(self, jobs: Iterable[L], *, now: datetime) -> None:
        """Jobs just claimed, with leases from ``now`` (taken before the claim statement)."""
        until = now + self.lease
        for job in jobs:
            self._held[job.delivery_id] = job
            self._until[job.delivery_id] = until

    def held_per_endpoint(self) -> Counter[str]:
        """How many jobs each endpoint has held here (queued, under way or being recorded)."""
        return Counter(job.endpoint_id for job in self._held.values())

    def is_unrecorded(self, job: L) -> bool:
        """Held, and its result not being recorded right now."""
        return self.holds(job) and job.delivery_id not in self._recording

    def start_recording(self, jobs: Iterable[L]) -> list[L]:
        """Results of ``jobs`` are about to be written; returns those marked (held ones)."""
        marked = [job for job in jobs if self.holds(job)]
        self._recording.update(job.delivery_id for job in marked)
        return marked

    def finish(self, jobs: Iterable[L]) -> None:
        """The results of ``jobs`` were written (or given up on): their leases are not ours to
        renew any more, whether the write was accepted, refused as stale, or dropped."""
        for job in jobs:
            if self.holds(job):
                self._forget(job.delivery_id)

    def release(self, jobs: Iterable[L]) -> None:
        """``jobs`` were given back (unstarted: at shutdown, when an endpoint's breaker opens)."""
        for job in jobs:
            if self.holds(job):
                self._forget(job.delivery_id)

    def to_renew(self) -> list[L]:
        """The jobs to renew now: every one held (a snapshot; pass it back to ``renewed``)."""
        return list(self._held.values())

    def renewed(self, batch: Iterable[L], renewed: set[str], *, now: datetime) -> list[L]:
        """The renewal of ``batch`` at ``now`` extended the leases of the delivery ids in
        ``renewed``. Of the rest, those still held and not being recorded were taken over by
        another worker: they are forgotten, counted in ``lost`` and returned (do not start
        them; a result of theirs would be refused). Jobs finished or released while the
        statement ran are not lost, only gone."""
        lost: list[L] = []
        until = now + self.lease
        for job in batch:
            if not self.holds(job):
                continue
            delivery_id = job.delivery_id
            if delivery_id in renewed:
                self._until[delivery_id] = max(self._until[delivery_id], until)
            elif delivery_id not in self._recording:
                self._forget(delivery_id)
                lost.append(job)
        self.lost += len(lost)
        return lost

    def orphaned(self, batch: Iterable[L], renewed: set[str]) -> bool:
        """Whether the renewal of ``batch`` extended the lease of a job no longer held: its
        result dropped while the statement ran (no one will record it, and its lease now ends
        one lease after the renewal), or — a false alarm, costing one claim — recorded or given
        back after the renewal committed."""
        return any(job.delivery_id in renewed and not self.holds(job) for job in batch)

    def lapsed(self, now: datetime) -> list[L]:
        """Held jobs whose lease may have run out by ``now`` (no renewal got through in time):
        another worker may claim them, and their results may be refused."""
        return [job for delivery_id, job in self._held.items() if self._until[delivery_id] <= now]

    def _forget(self, delivery_id: str) -> None:
        del self._held[delivery_id]
        del self._until[delivery_id]
        self._recording.discard(delivery_id)  # only held jobs are ever recording
