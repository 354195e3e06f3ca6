"""Which deliveries a recovered endpoint gets again (``replay_on_recovery``). Pure.

When a failing endpoint recovers, the deliveries to it that *failed for good during the outage*
(status ``failed``, their last attempt at or after the streak began) are queued again, in the
order their events were created. Bounded by two operator settings: deliveries created more than
``max_age`` before the recovery are left failed (too old to matter, and the receiver may have
reconciled them), and of the rest at most ``max_count`` — the newest ones, because when there is
too much to replay the recent events are the ones a receiver can still act on. What is left out
can still be redelivered by hand (``POST /api/v2/webhooks/events/redeliver``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class ReplayPolicy:
    """Bounds on a replay: ``max_age`` before the recovery, at most ``max_count`` deliveries."""

    max_age: timedelta = timedelta(days=3)
    max_count: int = 10_000

    def __post_init__(self) -> None:
        if self.max_age <= timedelta(0) or self.max_count < 0:
            raise ValueError("replay bounds must be a positive age and a count of at least 0")


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A candidate: a failed delivery of the endpoint."""

    id: str
    created_at: datetime
    #: When it failed for good (its last attempt).
    failed_at: datetime


def oldest_created(now: datetime, policy: ReplayPolicy) -> datetime:
    """The earliest creation time a replayed delivery may have."""
    return now - policy.max_age


def select(
    candidates: Iterable[FailedDelivery],
    *,
    outage_start: datetime,
    now: datetime,
    policy: ReplayPolicy,
) -> list[str]:
    """The ids to queue again, in the order to queue them (creation time, then id)."""
    floor = oldest_created(now, policy)
    eligible = sorted(
        (
            c
            for c in candidates
            if outage_start <= c.failed_at <= now and floor <= c.created_at <= now
        ),
        key=lambda c: (c.created_at, c.id),
    )
    if policy.max_count == 0:
        return []
    return [c.id for c in eligible[-policy.max_count :]]
