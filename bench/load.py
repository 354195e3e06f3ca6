"""Load generators: simulated events, HTTP ingest (flat out or paced), in-process pre-fill.

Payloads come from ``callhook.simulate`` (realistic calls and SMS). A pool of planned events is
generated once and cycled; each cycle sends a call's events to a different account, so call
sequences stay per (account, call).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from callhook import simulate as sim
from callhook.publish import Publisher, PublishRequest


def event_pool(calls: int, seed: int) -> list[sim.SimEvent]:
    """Planned events of ``calls`` conversations, all due at once, in causal order."""
    return sim.plan(calls, seed=seed, start=datetime.now(UTC), rate=0.0, speed=0.0)


def live_pool(calls: int, seed: int, *, calls_per_second: float) -> list[sim.SimEvent]:
    """Planned events of ``calls`` conversations as a PBX publishes them: calls starting
    ``calls_per_second`` on average, each at its real pace (rings, talk, the summary after it),
    all in publishing order. Published faster than planned, the order is what counts: a call's
    next event comes after other calls' events, as it does on a PBX carrying many calls at once
    (in ``event_pool`` a call's events are back to back)."""
    return sim.plan(calls, seed=seed, start=datetime.now(UTC), rate=calls_per_second, speed=1.0)


def requests(pool: Sequence[sim.SimEvent], accounts: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Publish requests forever: the pool again and again, accounts rotating per cycle."""
    for cycle in itertools.count():
        for e in pool:
            yield e.request(accounts[(e.conversation + cycle) % len(accounts)])


Body = tuple[bytes, int]  # an ingest request body and how many events it holds


def bodies(
    pool: Sequence[sim.SimEvent], accounts: Sequence[str], total: int, batch: int
) -> list[Body]:
    """``total`` events as ingest bodies of ``batch`` events (``batch`` 1 → a single object)."""
    source = requests(pool, accounts)
    out: list[Body] = []
    for start in range(0, total, batch):
        items = list(itertools.islice(source, min(batch, total - start)))
        out.append((orjson.dumps(items[0] if batch == 1 else {"events": items}), len(items)))
    return out


@dataclass(frozen=True)
class IngestResult:
    events: int
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    return aiohttp.ClientSession(connector=connector)


async def _post(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes
) -> bool:
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status == 202
    except aiohttp.ClientError:
        return False


def _ingest_target(port: int, token: str) -> tuple[str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return f"http://127.0.0.1:{port}/internal/v1/events", headers


async def ingest(
    port: int,
    token: str,
    payloads: Sequence[Body],
    concurrency: int,
    *,
    seconds: float | None = None,
) -> IngestResult:
    """POST the bodies as fast as ``concurrency`` connections allow; count committed events.

    With ``seconds``, stop starting new requests once that much time has passed.
    """
    url, headers = _ingest_target(port, token)
    queue = iter(payloads)
    ok = 0
    errors = 0

    async with _session(concurrency) as session:

        async def lane() -> None:
            nonlocal ok, errors
            for body, n in queue:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if await _post(session, url, headers, body):
                    ok += n
                else:
                    errors += 1

        t0 = time.monotonic()
        deadline = None if seconds is None else t0 + seconds
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        elapsed = time.monotonic() - t0
    return IngestResult(ok, elapsed, errors)


async def paced(port: int, token: str, payloads: Sequence[Body], interval: float) -> IngestResult:
    """POST one body every ``interval`` seconds (absolute schedule, no waiting on answers)."""
    url, headers = _ingest_target(port, token)
    ok = 0
    errors = 0
    async with _session(256) as session:

        async def one(body: bytes, n: int) -> None:
            nonlocal ok, errors
            if await _post(session, url, headers, body):
                ok += n
            else:
                errors += 1

        tasks: list[asyncio.Task[None]] = []
        t0 = time.monotonic()
        for tick, (body, n) in enumerate(payloads):
            delay = t0 + tick * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, n)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
    return IngestResult(ok, elapsed, errors)


def prefill(
    publisher: Publisher,
    pool: Sequence[sim.SimEvent],
    accounts: Sequence[str],
    total: int,
    batch: int = 500,
) -> None:
    """Publish ``total`` events in-process (payloads are known valid: no re-validation)."""
    source = requests(pool, accounts)
    for start in range(0, total, batch):
        chunk = [
            PublishRequest(r["event"], r["pbx_id"], r["account_id"], r["data"])
            for r in itertools.islice(source, min(batch, total - start))
        ]
        publisher.publish(chunk)
