"""Which claimed job starts next: fair across endpoints, capped per endpoint. Pure bookkeeping.

A worker claims jobs in batches and starts them as attempt places free up. ``Dispatch`` holds
the claimed jobs that have not started, one FIFO queue per endpoint, and hands them out
round-robin over the endpoints that have room, so one endpoint's backlog (or one slow endpoint)
cannot take every place. An endpoint's room adapts (additive increase, multiplicative decrease):
it starts at ``initial`` attempts under way, grows by one with each healthy attempt up to
``per_endpoint``, and halves (down to one) with each attempt that timed out or could not connect
— a dead endpoint holds a few places while its attempts time out, not ``per_endpoint`` of them,
and a healthy one reaches full room within a few dozen answers. No I/O, no
asyncio: the worker's lanes call ``take`` and ``done``; tests drive it directly.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar


class Job(Protocol):
    @property
    def delivery_id(self) -> str: ...

    @property
    def endpoint_id(self) -> str: ...


J = TypeVar("J", bound=Job)


class Dispatch(Generic[J]):
    """Queued jobs by endpoint; ``take`` round-robin over endpoints below their cap."""

    def __init__(
        self,
        per_endpoint: int,
        *,
        initial: int = 4,
        urgent: Callable[[J], bool] | None = None,
    ) -> None:
        self.per_endpoint = max(per_endpoint, 1)
        # Jobs for which ``urgent`` holds (call-control events, issue 14) start before the
        # endpoint's other queued jobs, in their own arrival order.
        self._urgent = urgent
        self.initial = max(1, min(initial, self.per_endpoint))
        self._room: dict[str, int] = {}  # current room per endpoint (absent: ``initial``)
        self._queues: dict[str, deque[J]] = {}
        self._ready: deque[str] = deque()  # endpoints with queued jobs and room, in turn order
        self._in_ready: set[str] = set()
        self._queued: dict[str, J] = {}  # delivery id → job, for jobs not started nor dropped
        self._queued_of: Counter[str] = Counter()  # the same, counted per endpoint
        self.busy: Counter[str] = Counter()  # attempts under way, per endpoint
        self.in_flight = 0

    @property
    def queued(self) -> int:
        """Jobs waiting to start."""
        return len(self._queued)

    def is_queued(self, delivery_id: str) -> bool:
        return delivery_id in self._queued

    def add(self, jobs: Iterable[J]) -> None:
        for job in jobs:
            self._queued[job.delivery_id] = job
            endpoint = job.endpoint_id
            self._queued_of[endpoint] += 1
            queue = self._queues.get(endpoint)
            if queue is None:
                queue = self._queues[endpoint] = deque()
            if self._urgent is not None and self._urgent(job):
                self._put_first(queue, job)
            else:
                queue.append(job)
            self._make_ready(endpoint)

    def _put_first(self, queue: deque[J], job: J) -> None:
        """Put ``job`` after the urgent jobs already at the front of ``queue``."""
        assert self._urgent is not None
        ahead = 0
        for queued in queue:
            if not self._urgent(queued):
                break
            ahead += 1
        queue.insert(ahead, job)

    def take(self) -> J | None:
        """The next job to start (counted as under way), or None if none may start now."""
        ready = self._ready
        while ready:
            endpoint = ready[0]
            queue = self._queues.get(endpoint)
            while queue and queue[0].delivery_id not in self._queued:
                queue.popleft()  # dropped while it waited
            if not queue or self.busy[endpoint] >= self.room(endpoint):
                ready.popleft()
                self._in_ready.discard(endpoint)
                if not queue:
                    self._queues.pop(endpoint, None)
                continue
            job = queue.popleft()
            del self._queued[job.delivery_id]
            self._unqueued(endpoint)
            self.busy[endpoint] += 1
            self.in_flight += 1
            ready.rotate(-1)  # the next take serves the next endpoint
            return job
        return None

    def room(self, endpoint: str) -> int:
        """How many attempts of ``endpoint`` may be under way now."""
        return self._room.get(endpoint, self.initial)

    def done(self, job: J, *, healthy: bool = True) -> bool:
        """An attempt of ``job`` finished (``healthy``: the endpoint answered); True if its
        endpoint may start another job now."""
        endpoint = job.endpoint_id
        room = self.room(endpoint)
        self._room[endpoint] = min(self.per_endpoint, room + 1) if healthy else max(1, room // 2)
        self.in_flight -= 1
        left = self.busy[endpoint] - 1
        if left:
            self.busy[endpoint] = left
        else:
            del self.busy[endpoint]
        return self._make_ready(endpoint)

    def drop(self, delivery_ids: Iterable[str]) -> list[J]:
        """Forget queued jobs (released or lost before they started); returns those dropped."""
        dropped = []
        for delivery_id in delivery_ids:
            job = self._queued.pop(delivery_id, None)
            if job is not None:
                self._unqueued(job.endpoint_id)
                dropped.append(job)
        return dropped

    def queued_jobs(self, endpoint_id: str | None = None) -> list[J]:
        """Jobs waiting to start (of one endpoint, or all)."""
        return [
            job
            for job in self._queued.values()
            if endpoint_id is None or job.endpoint_id == endpoint_id
        ]

    def saturated(self) -> set[str]:
        """Accounts with at least ``per_endpoint`` jobs queued or under way: claiming more for
        them now would only make them wait here."""
        load = self.busy + self._queued_of
        return {endpoint for endpoint, count in load.items() if count >= self.per_endpoint}

    def _unqueued(self, endpoint: str) -> None:
        left = self._queued_of[endpoint] - 1
        if left:
            self._queued_of[endpoint] = left
        else:
            del self._queued_of[endpoint]

    def _make_ready(self, endpoint: str) -> bool:
        if endpoint in self._in_ready or self.busy[endpoint] >= self.room(endpoint):
            return False
        if not self._queues.get(endpoint):
            return False
        self._ready.append(endpoint)
        self._in_ready.add(endpoint)
        return True
