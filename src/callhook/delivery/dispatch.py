"""Which claimed job starts next: fair across endpoints, capped per endpoint. Pure bookkeeping.

A worker claims jobs in batches and starts them as attempt places free up. ``Dispatch`` holds
the claimed jobs that have not started, one FIFO queue per account, and hands them out
round-robin over the accounts that have room, so one endpoint's backlog (or one slow endpoint)
cannot take every place. An account's room adapts (additive increase, multiplicative decrease):
it starts at ``initial`` attempts under way, grows by one with each healthy attempt up to
``per_account``, and halves (down to one) with each attempt that timed out or could not connect
— a dead endpoint holds a few places while its attempts time out, not ``per_account`` of them,
and a healthy one reaches full room within a few dozen answers. No I/O, no
asyncio: the worker's lanes call ``take`` and ``done``; tests drive it directly.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar


class Job(Protocol):
    @property
    def delivery_id(self) -> str: ...

    @property
    def account_id(self) -> str: ...


J = TypeVar("J", bound=Job)


class Dispatch(Generic[J]):
    """Queued jobs by account; ``take`` round-robin over accounts below their cap."""

    def __init__(self, per_account: int, *, initial: int = 4) -> None:
        self.per_account = max(per_account, 1)
        self.initial = max(1, min(initial, self.per_account))
        self._room: dict[str, int] = {}  # current room per account (absent: ``initial``)
        self._queues: dict[str, deque[J]] = {}
        self._ready: deque[str] = deque()  # accounts with queued jobs and room, in turn order
        self._in_ready: set[str] = set()
        self._queued: dict[str, J] = {}  # delivery id → job, for jobs not started nor dropped
        self._queued_of: Counter[str] = Counter()  # the same, counted per account
        self.busy: Counter[str] = Counter()  # attempts under way, per account
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
            account = job.account_id
            self._queued_of[account] += 1
            queue = self._queues.get(account)
            if queue is None:
                queue = self._queues[account] = deque()
            queue.append(job)
            self._make_ready(account)

    def take(self) -> J | None:
        """The next job to start (counted as under way), or None if none may start now."""
        ready = self._ready
        while ready:
            account = ready[0]
            queue = self._queues.get(account)
            while queue and queue[0].delivery_id not in self._queued:
                queue.popleft()  # dropped while it waited
            if not queue or self.busy[account] >= self.room(account):
                ready.popleft()
                self._in_ready.discard(account)
                if not queue:
                    self._queues.pop(account, None)
                continue
            job = queue.popleft()
            del self._queued[job.delivery_id]
            self._unqueued(account)
            self.busy[account] += 1
            self.in_flight += 1
            ready.rotate(-1)  # the next take serves the next account
            return job
        return None

    def room(self, account: str) -> int:
        """How many attempts of ``account`` may be under way now."""
        return self._room.get(account, self.initial)

    def done(self, job: J, *, healthy: bool = True) -> bool:
        """An attempt of ``job`` finished (``healthy``: the endpoint answered); True if its
        account may start another job now."""
        account = job.account_id
        room = self.room(account)
        self._room[account] = min(self.per_account, room + 1) if healthy else max(1, room // 2)
        self.in_flight -= 1
        left = self.busy[account] - 1
        if left:
            self.busy[account] = left
        else:
            del self.busy[account]
        return self._make_ready(account)

    def drop(self, delivery_ids: Iterable[str]) -> list[J]:
        """Forget queued jobs (released or lost before they started); returns those dropped."""
        dropped = []
        for delivery_id in delivery_ids:
            job = self._queued.pop(delivery_id, None)
            if job is not None:
                self._unqueued(job.account_id)
                dropped.append(job)
        return dropped

    def queued_jobs(self, account_id: str | None = None) -> list[J]:
        """Jobs waiting to start (of one account, or all)."""
        return [
            job
            for job in self._queued.values()
            if account_id is None or job.account_id == account_id
        ]

    def saturated(self) -> set[str]:
        """Accounts with at least ``per_account`` jobs queued or under way: claiming more for
        them now would only make them wait here."""
        load = self.busy + self._queued_of
        return {account for account, count in load.items() if count >= self.per_account}

    def _unqueued(self, account: str) -> None:
        left = self._queued_of[account] - 1
        if left:
            self._queued_of[account] = left
        else:
            del self._queued_of[account]

    def _make_ready(self, account: str) -> bool:
        if account in self._in_ready or self.busy[account] >= self.room(account):
            return False
        if not self._queues.get(account):
            return False
        self._ready.append(account)
        self._in_ready.add(account)
        return True
