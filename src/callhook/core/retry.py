"""The retry schedule. Pure: the clock reading and the randomness are arguments.

Policies (per integration):

* ``none``: one attempt, as SIPSIM documents ("webhook delivery will not be retried").
* ``exponential`` (default): attempt 1 at once, then after about 5 s, 30 s, 2 min, 10 min,
  30 min, 1 h, 2 h, 4 h, 8 h, then every 8 h, each delay with ±20 % jitter, for as long as the
  next attempt still falls within 24 h of the delivery's creation. Then the delivery is failed.

A ``Retry-After`` (on 429/503) is honoured within bounds: never sooner than the schedule, never
later than ``MAX_RETRY_AFTER``. Its value is text the endpoint controls; anything that is not a
plain delay or an HTTP-date means "no hint" (the normal schedule), never an error.

The window is also enforced when an attempt is about to be made (``window_expired``), so no path
— a lost lease, a backlog, a worker outage — can make an attempt long after it ended.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final, Protocol


class RetryPolicy(StrEnum):
    """How an endpoint's failed deliveries are retried (see the module docstring)."""

    EXPONENTIAL = "exponential"
    NONE = "none"


RETRY_POLICIES: Final = tuple(p.value for p in RetryPolicy)
#: Delay before attempt n+1, indexed by n-1 (seconds); the last value repeats.
SCHEDULE: Final[tuple[float, ...]] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800)
WINDOW: Final = timedelta(hours=24)
JITTER: Final = 0.2
MAX_RETRY_AFTER: Final = 3600.0
#: How long after its window ends a due attempt may still be made. The schedule plans attempts up
#: to the end itself, and a worker picks a due attempt up a little after it falls due.
LATE_GRACE: Final = timedelta(minutes=5)
#: Longer ``Retry-After`` values are not read: an HTTP-date is 29 characters.
_RETRY_AFTER_MAX_CHARS: Final = 64


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
    if policy == RetryPolicy.NONE:
        return None
    if policy != RetryPolicy.EXPONENTIAL:
        raise ValueError(f"unknown retry policy {policy!r}")
    delay = base_delay(attempt_number) * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    when = now + timedelta(seconds=delay)
    if when > created_at + WINDOW:
        return None
    return when


def window_expired(window_start: datetime, now: datetime) -> bool:
    """Whether an attempt starting at ``now`` would fall outside the retry window that began at
    ``window_start`` (``WINDOW``, plus ``LATE_GRACE`` for pick-up delay)."""
    return now > window_start + WINDOW + LATE_GRACE


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or None when absent or not understood.

    ``value`` is whatever the endpoint sent (any characters, any length; aiohttp hands undecodable
    bytes over as surrogates): this never raises. Understood (RFC 9110 §10.2.3), after trimming
    spaces and tabs: ``delay-seconds`` — ASCII digits only (``"①"`` and ``"١٢٠"`` are digits to
    ``str.isdigit`` but not to HTTP) — or an HTTP-date with a zone (any form
    ``email.utils.parsedate_to_datetime`` reads, within ``datetime``'s range). The result is
    finite, at least 0 (a date in the past is 0) and at most ``MAX_RETRY_AFTER``.
    """
    if not value:
        return None
    text = value.strip(" \t")
    if not text or len(text) > _RETRY_AFTER_MAX_CHARS or not text.isascii():
        return None
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        # Malformed dates, fields out of range (day 32, year 99999, an offset of a day or more)
        # and numbers too big for C (a 20-digit zone offset).
        return None
    if when.tzinfo is None:  # "-0000": a local time in an unknown zone
        return None
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)
