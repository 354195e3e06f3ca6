"""Per-endpoint throttling: a token bucket and an in-flight cap, shared through the store. Pure.

An endpoint's ``rate_limit`` (deliveries per second, None for none) is a token bucket that
refills at ``rate_limit`` tokens a second up to a burst of ``burst_for(rate)`` tokens. The
bucket is one row in the database; a worker takes tokens from it in the same transaction that
claims deliveries (claims are serialized: SQLite's one writer, a row lock on PostgreSQL), so
every worker process and machine shares one budget. A token is spent when a delivery is
*claimed*, not when it is sent: a worker sends what it claimed within a few milliseconds, so
over any window of ``T`` seconds an endpoint receives at most ``rate * T + burst`` attempts, plus
what was claimed just before the window but sent inside it (at most one burst). With the burst at
half a second of the rate, that is at most ``rate * (T + 1)``: 50/s over 30 s is ≤ 51.7/s.

``max_in_flight`` caps the attempts under way at once for the endpoint across all workers: the
claim counts the endpoint's deliveries that are leased right now.

A ``429`` or ``503`` with ``Retry-After`` slows the whole endpoint: nothing more is claimed for it
until ``slowed_until`` (capped at ``MAX_SLOW_DOWN``), not only the one delivery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

#: The burst, in seconds of the rate: claims for a throttled endpoint take at most this much.
BURST_SECONDS: Final = 0.5
#: The longest a ``Retry-After`` may hold a whole endpoint (seconds).
MAX_SLOW_DOWN: Final = 3600.0
#: The smallest rate limit an endpoint may have: one delivery every 100 s. Below it the waits
#: a token bucket computes stop being times at all (1e-300/s overflowed ``timedelta`` and
#: stopped every claim); nobody throttles a webhook endpoint to less.
MIN_RATE_LIMIT: Final = 0.01


def burst_for(rate: float) -> float:
    """The bucket's capacity for ``rate`` deliveries per second: half a second's worth, at least
    one token (so a rate below 2/s still lets one delivery through at a time)."""
    if not rate > 0 or math.isinf(rate):
        raise ValueError("a rate limit is a finite number of deliveries per second above 0")
    return max(1.0, rate * BURST_SECONDS)


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket's stored state: ``tokens`` as of ``updated_at``."""

    tokens: float
    updated_at: datetime


def full(rate: float, now: datetime) -> Bucket:
    """A new endpoint's bucket: full."""
    return Bucket(burst_for(rate), now)


def refill(bucket: Bucket, rate: float, now: datetime) -> Bucket:
    """The bucket at ``now``. A clock that went backwards adds nothing (and takes nothing)."""
    elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
    tokens = min(burst_for(rate), bucket.tokens + elapsed * rate)
    return Bucket(tokens, max(now, bucket.updated_at))


def take(bucket: Bucket, rate: float, now: datetime, want: int) -> tuple[int, Bucket]:
    """Take up to ``want`` whole tokens at ``now``: how many were granted, and the bucket after."""
    current = refill(bucket, rate, now)
    granted = max(0, min(want, math.floor(current.tokens + 1e-9)))
    return granted, Bucket(max(0.0, current.tokens - granted), current.updated_at)


def next_token_at(bucket: Bucket, rate: float, now: datetime) -> datetime:
    """When the bucket next holds a whole token (``now`` if it does already)."""
    current = refill(bucket, rate, now)
    if current.tokens >= 1 - 1e-9:
        return now
    # Bounded whatever the stored rate (rows written before MIN_RATE_LIMIT, or by hand).
    wait = min((1 - current.tokens) / max(rate, MIN_RATE_LIMIT), 1 / MIN_RATE_LIMIT)
    return now + timedelta(seconds=wait)


def room(max_in_flight: int | None, in_flight: int) -> int | None:
    """How many more attempts may start for an endpoint (None: no cap)."""
    if max_in_flight is None:
        return None
    return max(0, max_in_flight - in_flight)


def allowance(
    *,
    want: int,
    bucket: Bucket | None,
    rate: float | None,
    max_in_flight: int | None,
    in_flight: int,
    now: datetime,
) -> tuple[int, Bucket | None]:
    """How many deliveries a claim may take for one endpoint now, and its bucket after taking
    them. ``bucket`` None with a ``rate`` is a new (full) bucket."""
    cap = room(max_in_flight, in_flight)
    limit = want if cap is None else min(want, cap)
    if rate is None:
        return limit, bucket
    granted, after = take(bucket or full(rate, now), rate, now, limit)
    return granted, after


def slowed_until(now: datetime, retry_after: float) -> datetime:
    """Until when a ``Retry-After`` of ``retry_after`` seconds holds the whole endpoint."""
    return now + timedelta(seconds=min(max(retry_after, 0.0), MAX_SLOW_DOWN))


@dataclass(frozen=True, slots=True)
class Caps:
    """The operator's caps on what customers may set."""

    max_rate_limit: float = 1000.0
    max_in_flight: int = 64


def check_limits(rate_limit: float | None, max_in_flight: int | None, caps: Caps) -> dict[str, str]:
    """Problems with an endpoint's throttling fields, by field name (empty: acceptable).

    ``rate_limit``: None (no limit) or a number from ``MIN_RATE_LIMIT`` (0.01) to the
    operator's cap.
    ``max_in_flight``: None (the worker's default) or a whole number from 1 to the cap."""
    problems: dict[str, str] = {}
    if rate_limit is not None and (
        isinstance(rate_limit, bool)
        or not math.isfinite(rate_limit)
        or not MIN_RATE_LIMIT <= rate_limit <= caps.max_rate_limit
    ):
        problems["rate_limit"] = (
            f"must be null (no limit) or a number of deliveries per second from "
            f"{MIN_RATE_LIMIT:g} to {caps.max_rate_limit:g}"
        )
    if max_in_flight is not None and (
        isinstance(max_in_flight, bool) or not 1 <= max_in_flight <= caps.max_in_flight
    ):
        problems["max_in_flight"] = f"must be null or a whole number from 1 to {caps.max_in_flight}"
    return problems
