"""In-process rate limits for the management API: token buckets, per token and per client.

Two limits:

- **Per token**: every authenticated request takes one unit from the token's bucket, which holds
  ``burst`` units and refills at ``rate`` units per second (``Settings.rate_limit_per_token`` and
  ``Settings.rate_limit_burst``). An empty bucket answers 429 with ``Retry-After``.
- **Auth failures per client address**: every request that *presents* credentials which turn out
  to be invalid (401) takes one unit from the client address's failure bucket. While that bucket
  is empty, requests presenting credentials from that address are refused with 429 *before* the
  token is looked up, so guessing tokens is slow and costs no database work.

Limits live in the memory of one process: with N API processes a client gets up to N times the
limit. That is deliberate (no shared store on the hot path); the limits protect a process, they
are not a billing quota.

Time comes from the injected ``now`` (seconds, any origin); a source that steps backwards never
adds units. Buckets are used from the event loop only, so no locking is needed. The number of
buckets kept is bounded (least recently used evicted): a full bucket carries no state worth
keeping, and an evicted failure bucket at worst restarts a throttled client's allowance.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from callhook.core.clock import Clock
from callhook.errors import RateLimited
from callhook.settings import Settings

#: Failed authentications allowed from one client address in a burst …
AUTH_FAILURE_BURST = 10
#: … refilled at this many per second (one every six seconds: ten a minute).
AUTH_FAILURE_RATE = 10 / 60
#: Buckets kept per limiter before the least recently used is dropped.
MAX_BUCKETS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucket:
    """Keyed token buckets of capacity ``burst`` refilled at ``rate`` units per second."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        now: Callable[[], float],
        max_keys: int = MAX_BUCKETS,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._now = now
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _refilled(self, key: str) -> _Bucket:
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = max(bucket.updated, now)
        return bucket

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` has a unit again (0 when it has one now); takes nothing."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1.0:
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def take(self, key: str) -> float:
        """Take one unit; return 0 on success, else the seconds to wait (nothing taken)."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def spend(self, key: str) -> None:
        """Take one unit if there is one (recording a failure never blocks by itself)."""
        bucket = self._refilled(key)
        bucket.tokens = max(0.0, bucket.tokens - 1.0)


def clock_seconds(clock: Clock) -> Callable[[], float]:
    """A seconds source from a ``Clock`` (tests move a ``FakeClock``; the system clock is real)."""
    return lambda: clock.now().timestamp()


class RateLimits:
    """The management API's limits; one instance per app (``app.state.rate_limits``)."""

    def __init__(
        self,
        *,
        per_token_rate: float,
        per_token_burst: int,
        now: Callable[[], float],
        auth_failure_rate: float = AUTH_FAILURE_RATE,
        auth_failure_burst: int = AUTH_FAILURE_BURST,
    ) -> None:
        self.tokens = TokenBucket(rate=per_token_rate, burst=per_token_burst, now=now)
        self.auth_failures = TokenBucket(rate=auth_failure_rate, burst=auth_failure_burst, now=now)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> RateLimits:
        """Per-token limits from settings; the auth-failure limit at its defaults."""
        return cls(
            per_token_rate=settings.rate_limit_per_token,
            per_token_burst=settings.rate_limit_burst,
            now=clock_seconds(clock),
        )

    def check_client(self, client: str) -> None:
        """Raise ``RateLimited`` while ``client`` has used up its failed authentications."""
        wait = self.auth_failures.retry_after(client)
        if wait > 0:
            raise RateLimited(
                "Too many failed authentication attempts. Try again later.",
                retry_after=_whole_seconds(wait),
            )

    def record_failure(self, client: str) -> None:
        """Count one failed authentication against ``client``."""
        self.auth_failures.spend(client)

    def take(self, token_id: str) -> None:
        """Take one request from the token's allowance, or raise ``RateLimited``."""
        wait = self.tokens.take(token_id)
        if wait > 0:
            raise RateLimited(
                f"Rate limit exceeded: at most {self.tokens.rate:g} requests per second "
                f"(bursts of {self.tokens.burst}) per token.",
                retry_after=_whole_seconds(wait),
            )


def _whole_seconds(wait: float) -> float:
    return float(max(1, math.ceil(wait)))
