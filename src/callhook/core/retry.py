"""The retry schedule. Pure: the clock reading and the randomness are arguments.

Policies (per integration):

* ``none``: one attempt, as SIPSIM documents ("webhook delivery will not be retried").
* ``exponential`` (default): attempt 1 at once, then after about 5 s, 30 s, 2 min, 10 min,
  30 min, 1 h, 2 h, 4 h, 8 h, then every 8 h, each delay with ±20 % jitter, for as long as the
  next attempt still falls within 24 h of the delivery's creation. Then the delivery is failed.

A ``Retry-After`` (on 429/503) is honoured within bounds: never sooner than the schedule, never
later than ``MAX_RETRY_AFTER``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Protocol

RETRY_POLICIES: Final = ("exponential", "none")
#: Delay before attempt n+1, indexed by n-1 (seconds); the last value repeats.
SCHEDULE: Final[tuple[float, ...]] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800)
WINDOW: Final = timedelta(hours=24)
JITTER: Final = 0.2
MAX_RETRY_AFTER: Final = 3600.0


class Uniform(Protocol):
    def uniform(self, a: float, b: float, /) -> float: ...


def base_delay(attempt_number: int) -> float:
    """Seconds to wait after attempt ``attempt_number`` (1-based) failed, before jitter."""
    if attempt_number < 1:
        raise ValueError("attempt numbers start at 1")
    return SCHEDULE[min(attempt_number, len(SCHEDULE)) - 1]


def next_attempt_at(
    *,
    policy: str,
    attempt_number: int,
    created_at: datetime,
    now: datetime,
    rng: Uniform,
    retry_after: float | None = None,
) -> datetime | None:
    """When to try again after failed attempt ``attempt_number``, or None to give up."""
    if policy == "none":
        return None
    if policy != "exponential":
        raise ValueError(f"unknown retry policy {policy!r}")
    delay = base_delay(attempt_number) * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    when = now + timedelta(seconds=delay)
    if when > created_at + WINDOW:
        return None
    return when


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
