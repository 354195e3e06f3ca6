"""The call simulator: realistic telephony traffic published through the ingest path.

Two halves:

- ``plan`` is pure: from a seed it mixes whole call lifecycles (inbound calls answered at once or
  after hunting through a dial chain, missed calls that go to voicemail, outbound calls) and SMS
  exchanges into one timeline. Calls start as a Poisson process of ``rate`` calls per wall-clock
  second; the gaps inside a call are divided by ``speed``. Payload times are simulated time
  (``speed`` × wall time after ``start``), so they stay consistent with each other.
- ``drive`` is the async driver: it publishes the planned events when they fall due, through any
  ``PublishFn`` (the in-process ``Publisher`` or HTTP ingest), with at most ``concurrency`` publish
  calls in flight. An event is never sent while an earlier event of the same call is still in
  flight, so each call's events are committed in causal order and get sequence numbers 1, 2, 3…
"""

from __future__ import annotations

import asyncio
import bisect
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from callhook.events import call_scenario, sms_exchange

if TYPE_CHECKING:
    import aiohttp

    from callhook.publish import Publisher

#: How often each kind of conversation happens (weights).
MIX: Final[tuple[tuple[str, float], ...]] = (
    ("answered", 0.30),
    ("chain-hunt", 0.20),
    ("missed-to-voicemail", 0.15),
    ("outbound", 0.20),
    ("sms", 0.15),
)
KINDS: Final = tuple(k for k, _ in MIX)


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One event to publish ``at`` wall-clock seconds after the simulation starts."""

    at: float
    conversation: int  # index of the call or SMS exchange it belongs to
    kind: str  # the scenario name, or "sms"
    event: str
    pbx_id: str
    data: dict[str, Any]

    def request(self, account_id: str) -> dict[str, Any]:
        """The publish request object (``{"event", "pbx_id", "account_id", "data"}``)."""
        return {
            "event": self.event,
            "pbx_id": self.pbx_id,
            "account_id": account_id,
            "data": self.data,
        }


def choose_kind(rng: random.Random) -> str:
    """One conversation kind, drawn with the weights of ``MIX``."""
    return rng.choices(KINDS, weights=[w for _, w in MIX])[0]


def plan(
    calls: int,
    *,
    seed: int,
    start: datetime,
    rate: float = 5.0,
    speed: float = 60.0,
    kinds: Sequence[str] | None = None,
) -> list[SimEvent]:
    """``calls`` conversations' events in publishing order (``at`` non-decreasing).

    Deterministic for a seed and ``start``. ``rate`` ≤ 0 starts every conversation at once;
    ``speed`` ≤ 0 means no gaps inside a conversation (as fast as possible). ``kinds`` restricts
    the mix (default: all of ``KINDS``). Within a conversation the events keep their causal order.
    """
    rng = random.Random(seed)
    pool = tuple(kinds) if kinds else None
    out: list[tuple[float, int, int, SimEvent]] = []
    t0 = 0.0
    for n in range(calls):
        if n and rate > 0:
            t0 += rng.expovariate(rate)
        kind = rng.choice(pool) if pool else choose_kind(rng)
        sim_start = start + timedelta(seconds=t0 * speed if speed > 0 else t0)
        if kind == "sms":
            scheduled = sms_exchange(rng, start=sim_start)
        else:
            scheduled = call_scenario(kind, rng, start=sim_start)
        for i, item in enumerate(scheduled):
            at = t0 + (item.offset / speed if speed > 0 else 0.0)
            sim = SimEvent(round(at, 6), n, kind, item.event, item.pbx_id, item.data)
            out.append((sim.at, n, i, sim))
    out.sort(key=lambda row: row[:3])
    return [row[3] for row in out]


# --- The driver ----------------------------------------------------------------------------------
PublishFn = Callable[[Sequence[SimEvent]], Awaitable[None]]


@dataclass
class Stats:
    """What a run did so far (read by the progress display while it runs)."""

    planned: int = 0
    conversations: int = 0
    published: int = 0
    failed: int = 0
    batches: int = 0
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    by_event: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def elapsed(self) -> float:
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return max(end - self.started_at, 1e-9)

    @property
    def rate(self) -> float:
        return self.published / self.elapsed

    def latency_ms(self, q: float) -> float:
        """The ``q`` quantile (0..1) of publish-call latency in ms (0 when nothing ran)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def take_batch(due: deque[SimEvent], busy: Container[int], limit: int) -> list[SimEvent]:
    """Remove and return up to ``limit`` events from the front of ``due`` that may go now.

    An event may go unless its conversation has an event in flight (``busy``) or an earlier
    event of its conversation is being held back in this pass; events of one conversation in
    one batch keep their order (a batch is committed in order, in one transaction).
    """
    batch: list[SimEvent] = []
    held: deque[SimEvent] = deque()
    blocked: set[int] = set()
    while due and len(batch) < limit:
        item = due.popleft()
        if item.conversation in busy or item.conversation in blocked:
            blocked.add(item.conversation)
            held.append(item)
        else:
            batch.append(item)
    due.extendleft(reversed(held))
    return batch


async def drive(
    events: Sequence[SimEvent],
    publish: PublishFn,
    *,
    concurrency: int = 4,
    batch_size: int = 100,
    stats: Stats | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Stats:
    """Publish ``events`` at their ``at`` times (relative to now); return the statistics.

    A failed publish call is counted (``stats.failed``, ``stats.errors``) and not retried; the
    run goes on. Up to ``concurrency`` publish calls run at once, each with up to ``batch_size``
    events that are due.
    """
    stats = stats or Stats()
    stats.planned = len(events)
    kinds = {e.conversation: e.kind for e in events}
    stats.conversations = len(kinds)
    stats.by_kind = Counter(kinds.values())
    stats.started_at = clock()
    times = [e.at for e in events]
    next_index = 0
    due: deque[SimEvent] = deque()
    busy: Counter[int] = Counter()
    tasks: set[asyncio.Task[None]] = set()
    limit = max(concurrency, 1)

    async def send(batch: list[SimEvent]) -> None:
        t0 = clock()
        try:
            await publish(batch)
        except Exception as exc:
            stats.failed += len(batch)
            stats.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
        else:
            stats.published += len(batch)
            for e in batch:
                stats.by_event[e.event] += 1
        finally:
            stats.latencies_ms.append((clock() - t0) * 1000)
            stats.batches += 1
            for e in batch:
                busy[e.conversation] -= 1
                if not busy[e.conversation]:
                    del busy[e.conversation]

    while next_index < len(events) or due or tasks:
        now = clock() - stats.started_at
        upto = bisect.bisect_right(times, now, lo=next_index)
        due.extend(events[next_index:upto])
        next_index = upto
        while due and len(tasks) < limit:
            batch = take_batch(due, busy, max(batch_size, 1))
            if not batch:
                break
            for e in batch:
                busy[e.conversation] += 1
            task = asyncio.create_task(send(batch))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if next_index < len(events):
            wait = max(times[next_index] - (clock() - stats.started_at), 0.0)
        else:
            wait = None
        if tasks:
            await asyncio.wait(set(tasks), timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        elif wait is not None:
            await asyncio.sleep(wait)
    stats.finished_at = clock()
    return stats


# --- Where events go -----------------------------------------------------------------------------
def in_process(publisher: Publisher, account_id: str) -> PublishFn:
    """Publish through ``Publisher`` (validated exactly like ingest), in a worker thread."""
    from callhook.publish import parse_event

    async def publish(batch: Sequence[SimEvent]) -> None:
        requests = [parse_event(e.request(account_id)) for e in batch]
        await asyncio.to_thread(publisher.publish, requests)

    return publish


class IngestRefused(Exception):
    """The ingest endpoint answered something other than 202."""


def over_http(
    session: aiohttp.ClientSession, base_url: str, token: str, account_id: str
) -> PublishFn:
    """Publish to ``POST {base_url}/internal/v1/events`` with a bearer token (events.write)."""
    import orjson

    url = base_url.rstrip("/") + "/internal/v1/events"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def publish(batch: Sequence[SimEvent]) -> None:
        body = orjson.dumps({"events": [e.request(account_id) for e in batch]})
        async with session.post(url, data=body, headers=headers) as response:
            text = await response.read()
            if response.status != 202:
                raise IngestRefused(
                    f"HTTP {response.status}: {text[:200].decode(errors='replace')}"
                )

    return publish
