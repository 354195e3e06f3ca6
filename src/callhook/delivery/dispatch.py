"""Which claimed job starts next: fair across endpoints, capped per endpoint. Pure bookkeeping.

A worker claims jobs in batches and starts them as attempt places free up. ``Dispatch`` holds
the claimed jobs that have not started, one FIFO queue per endpoint, and hands them out
round-robin over the endpoints that have room, so one endpoint's backlog (or one slow endpoint)
cannot take every place. An endpoint's room adapts (additive increase, multiplicative decrease):
it starts at ``initial`` attempts under way, grows by one with each healthy attempt up to
``per_endpoint``, and halves (down to one) with each attempt that timed out or could not connect
— a dead endpoint holds a few places while its attempts time out, not ``per_endpoint`` of them,
and a healthy one reaches full room within a few dozen answers. An answer that came but slowly
(``done(slow=True)``: at least half the timeout) does not grow the room. Only endpoints whose
last answer came fast (*fast* endpoints) may use every place: the others — slow, not answering,
or not heard from yet — together may have at most ``slow_places`` attempts under way, so
endpoints that answer in 1.9 s, however many and however deep their backlogs, cannot take every
place from a healthy endpoint's event (issue 13). An endpoint not heard from yet counts with
the slow ones until its first answer: in a burst of slow answers, the endpoints whose answers
are not processed yet would otherwise take the places kept for fast ones. No I/O, no
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
        slow_places: int | None = None,
        urgent: Callable[[J], bool] | None = None,
    ) -> None:
        self.per_endpoint = max(per_endpoint, 1)
        # Jobs for which ``urgent`` holds (call-control events, issue 14) start before the
        # endpoint's other queued jobs, in their own arrival order.
        self._urgent = urgent
        self.initial = max(1, min(initial, self.per_endpoint))
        #: How many attempts of endpoints that are not fast may be under way together (None: no
        #: limit).
        self.slow_places = slow_places
        self._fast: set[str] = set()  # endpoints whose last answer came, and fast
        self._slow: set[str] = set()  # endpoints whose last answer came slowly, or not at all
        self._started_slow: set[str] = set()  # delivery ids started while not fast
        self._slow_waiting: set[str] = set()  # endpoints out of turn: no slow place free
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
            if (
                not queue
                or self.busy[endpoint] >= self.room(endpoint)
                or self._no_slow_place(endpoint)
            ):
                ready.popleft()
                self._in_ready.discard(endpoint)
                if not queue:
                    self._queues.pop(endpoint, None)
                elif self._no_slow_place(endpoint):
                    self._slow_waiting.add(endpoint)
                continue
            job = queue.popleft()
            del self._queued[job.delivery_id]
            self._unqueued(endpoint)
            self.busy[endpoint] += 1
            self.in_flight += 1
            if endpoint not in self._fast:
                self._started_slow.add(job.delivery_id)
            ready.rotate(-1)  # the next take serves the next endpoint
            return job
        return None

    def room(self, endpoint: str) -> int:
        """How many attempts of ``endpoint`` may be under way now."""
        return self._room.get(endpoint, self.initial)

    @property
    def slow_in_flight(self) -> int:
        """Attempts under way that started while their endpoint was not fast."""
        return len(self._started_slow)

    def done(self, job: J, *, healthy: bool = True, slow: bool = False) -> bool:
        """An attempt of ``job`` finished (``healthy``: the endpoint answered; ``slow``: but
        slowly); True if some endpoint may start another job now."""
        endpoint = job.endpoint_id
        room = self.room(endpoint)
        if not healthy:
            self._room[endpoint] = max(1, room // 2)
        elif not slow:
            self._room[endpoint] = min(self.per_endpoint, room + 1)
        if healthy and not slow:
            self._fast.add(endpoint)
            self._slow.discard(endpoint)
        else:
            self._fast.discard(endpoint)
            self._slow.add(endpoint)
        self.in_flight -= 1
        left = self.busy[endpoint] - 1
        if left:
            self.busy[endpoint] = left
        else:
            del self.busy[endpoint]
        ready = self._make_ready(endpoint)
        if job.delivery_id in self._started_slow:
            self._started_slow.discard(job.delivery_id)
            # A slow place came free: the slow endpoints that waited for one take turns again.
            waiting, self._slow_waiting = self._slow_waiting, set()
            for other in waiting:
                ready = self._make_ready(other) or ready
        return ready

    def startable(self) -> int:
        """Queued jobs of endpoints in turn (with room, and a slow place if they are slow):
        those a free lane would start. Jobs of endpoints that must wait are not counted, so
        they do not keep the worker from claiming other endpoints' work."""
        return sum(self._queued_of[endpoint] for endpoint in self._in_ready)

    def _no_slow_place(self, endpoint: str) -> bool:
        return (
            self.slow_places is not None
            and endpoint not in self._fast
            and len(self._started_slow) >= self.slow_places
        )

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
        """Endpoints with at least ``per_endpoint`` jobs queued or under way, and endpoints that
        are not fast (slow, not answering, not heard from yet) with their room's worth: claiming
        more for them now would only make them wait here."""
        load = self.busy + self._queued_of
        return {endpoint for endpoint, count in load.items() if self._full(endpoint, count)}

    def any_below_share(self, endpoints: Iterable[str]) -> bool:
        """Whether any of ``endpoints`` (``saturated`` when a claim left them out) is no longer
        saturated: a claim would take its jobs again."""
        return any(not self._full(e, self.busy[e] + self._queued_of[e]) for e in endpoints)

    def _full(self, endpoint: str, count: int) -> bool:
        return count >= self.per_endpoint or (
            endpoint not in self._fast and count >= self.room(endpoint)
        )

    def wanting_urgent(self) -> set[str]:
        """Saturated fast endpoints with no urgent job queued here and less than twice their
        share in flight or queued: a claim leaves them out but may still take their jobs whose
        claim key has come (``Claims.claim``'s ``urgent_for``); call-control ones then start at
        the endpoint's next free slot. Otherwise a call-control event published to a busy
        endpoint waited to be claimed until the bulk jobs queued here had drained (issue 14's
        priority: measured up to 20 ms at 1,700 deliveries/s). The cap matters when bulk older
        than the aging comes first by its key: those jobs are not urgent here, so without it
        every claim took 4 more of them."""
        if self._urgent is None:
            return set()
        out = set()
        for endpoint, count in (self.busy + self._queued_of).items():
            if not self.per_endpoint <= count < 2 * self.per_endpoint:
                continue
            if endpoint not in self._fast:
                continue
            queue = self._queues.get(endpoint)
            if queue and queue[0].delivery_id in self._queued and self._urgent(queue[0]):
                continue
            out.add(endpoint)
        return out

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
        if self._no_slow_place(endpoint):
            self._slow_waiting.add(endpoint)
            return False
        self._ready.append(endpoint)
        self._in_ready.add(endpoint)
        return True
