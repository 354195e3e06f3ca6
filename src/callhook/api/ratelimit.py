"""In-process rate limits of the HTTP API: token buckets, per token and per client.

- **Per token** (API v2): every authenticated request takes one unit from the token's bucket,
  which holds ``burst`` units and refills at ``rate`` units per second
  (``Settings.rate_limit_per_token`` and ``Settings.rate_limit_burst``). An empty bucket answers
  429 with ``Retry-After``.
- **Failed authentications** (API v2 and ingest), counted so that they never cost a *valid*
  token its service — behind a shared proxy every client has the same address, and anyone could
  otherwise lock everyone out:

  - per *presented token* and client address (a fingerprint of the token, never the token):
    once a token has failed ``BAD_TOKEN_BURST`` times from an address, it is refused there with
    429 without any database work. A string that failed can never authenticate later (tokens
    are 256-bit random values issued by us), so this refuses no valid token. Counting and
    checking are atomic: a token not yet known to be valid is looked up by one request of that
    address at a time (``credential``: concurrent requests with it wait for the answer), so 40
    parallel requests with one bad token make at most ``BAD_TOKEN_BURST`` lookups, while a
    token that authenticated is not queued at all;
  - per client address: every failure takes a unit; while the address's bucket is empty its
    failures are answered 429 with ``Retry-After`` instead of 401 (slow down), but a token it
    presents is still looked up, and a valid one is served.

Limits live in the memory of one process: with N API processes a client gets up to N times the
limit. That is deliberate (no shared store on the hot path); the limits protect a process, they
are not a billing quota.

Time comes from the injected ``now`` (seconds, any origin); a source that steps backwards never
adds units. Buckets are used from the event loop only (between two awaits nothing else runs),
so they need no locks of their own. The number of
buckets kept is bounded (least recently used evicted): a full bucket carries no state worth
keeping, and an evicted failure bucket at worst restarts a throttled client's allowance.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from callhook.core.clock import Clock
from callhook.errors import RateLimited
from callhook.settings import Settings

#: Failed authentications allowed from one client address in a burst …
AUTH_FAILURE_BURST = 10
#: … refilled at this many per second (one every six seconds: ten a minute).
AUTH_FAILURE_RATE = 10 / 60
#: Tries of one token that failed, from one address, before it is refused unseen …
BAD_TOKEN_BURST = 3
#: … refilled at this many per second (one a minute).
BAD_TOKEN_RATE = 1 / 60
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


@dataclass(slots=True)
class _SharedLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Credential:
    """One admitted lookup (``RateLimits.credential``): report its outcome."""

    def __init__(self, limits: RateLimits, key: str) -> None:
        self._limits = limits
        self._key = key

    def valid(self) -> None:
        """It authenticated: later requests with it are neither queued nor limited."""
        self._limits._mark_valid(self._key)

    def invalid(self) -> RateLimited | None:
        """It did not authenticate: one failure for it and one for the address; returns the
        error to answer with instead of 401 while the address has failed too often."""
        self._limits._mark_invalid(self._key)
        return self._limits.failed(self._key.partition("|")[0])


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
        bad_token_rate: float = BAD_TOKEN_RATE,
        bad_token_burst: int = BAD_TOKEN_BURST,
    ) -> None:
        self.tokens = TokenBucket(rate=per_token_rate, burst=per_token_burst, now=now)
        self.auth_failures = TokenBucket(rate=auth_failure_rate, burst=auth_failure_burst, now=now)
        self.bad_tokens = TokenBucket(rate=bad_token_rate, burst=bad_token_burst, now=now)
        # (client, credential) pairs that authenticated lately, and lookups under way.
        self._valid: OrderedDict[str, None] = OrderedDict()
        self._lookups: dict[str, _SharedLock] = {}

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> RateLimits:
        """Per-token limits from settings; the auth-failure limit at its defaults."""
        return cls(
            per_token_rate=settings.rate_limit_per_token,
            per_token_burst=settings.rate_limit_burst,
            now=clock_seconds(clock),
        )

    @contextlib.asynccontextmanager
    async def credential(self, client: str, presented: str) -> AsyncIterator[Credential]:
        """Admit one lookup of the credential ``presented`` by ``client``.

        ``RateLimited`` when it has failed too often from there. A credential not known to be
        valid is looked up by one request at a time (others with it wait here); the body must
        call ``Credential.valid`` or ``Credential.invalid`` with the outcome.
        """
        key = f"{client}|{_fingerprint(presented)}"
        if key in self._valid:
            self._valid.move_to_end(key)
            yield Credential(self, key)
            return
        lock = self._lookups.get(key)
        if lock is None:
            lock = self._lookups[key] = _SharedLock()
        lock.users += 1
        try:
            async with lock.lock:
                if key not in self._valid:
                    wait = self.bad_tokens.retry_after(key)
                    if wait > 0:
                        raise RateLimited(
                            "This token has failed authentication repeatedly. Check it, then "
                            "try again later.",
                            retry_after=_whole_seconds(wait),
                        )
                yield Credential(self, key)
        finally:
            lock.users -= 1
            if lock.users == 0:
                del self._lookups[key]

    def _mark_valid(self, key: str) -> None:
        self._valid[key] = None
        self._valid.move_to_end(key)
        if len(self._valid) > MAX_BUCKETS:
            self._valid.popitem(last=False)

    def _mark_invalid(self, key: str) -> None:
        self._valid.pop(key, None)
        self.bad_tokens.spend(key)

    def failed(self, client: str) -> RateLimited | None:
        """A credential presented by ``client`` did not authenticate: count the failure against
        the address. The error to answer with instead of 401 while the address has failed too
        often lately, else None."""
        wait = self.auth_failures.take(client)
        if wait <= 0:
            return None
        return RateLimited(
            "Too many failed authentication attempts. Try again later.",
            retry_after=_whole_seconds(wait),
        )

    def take(self, token_id: str) -> None:
        """Take one request from the token's allowance, or raise ``RateLimited``."""
        wait = self.tokens.take(token_id)
        if wait > 0:
            raise RateLimited(
                f"Rate limit exceeded: at most {self.tokens.rate:g} requests per second "
                f"(bursts of {self.tokens.burst}) per token.",
                retry_after=_whole_seconds(wait),
            )


def _fingerprint(presented: str) -> str:
    """A short, one-way label of a presented credential (the credential is never kept)."""
    return hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()[:32]


def _whole_seconds(wait: float) -> float:
    return float(max(1, math.ceil(wait)))
