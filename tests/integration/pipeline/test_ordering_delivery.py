"""Ordered delivery per call through real workers and a real HTTPS receiver (issue 14).

A property test: random calls from the simulator's scenarios, published interleaved (some before
the workers start, the rest while they run), a receiver with random latency and random failures,
sometimes an event that always fails; 1 or 3 workers; both backends. The receiver never sees
event n+1 of a call before event n finished, except after the head-of-line bound and then with
the gap announced. The clock is fake and runs about 250 times faster than real time, so retries
(5 s, 30 s, 2 min…) and the 5-minute bound happen within seconds.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callhook.core.clock import FakeClock
from callhook.delivery.worker import Worker
from callhook.events import call_scenario
from callhook.publish import PublishRequest
from tests.factories import make_account, make_platform
from tests.support.ordered_receiver import OrderedBehaviour
from tests.support.receiver import Receiver, Tls, wait_for

SCENARIOS = ("answered", "missed-to-voicemail", "chain-hunt", "outbound")

calls_strategy = st.lists(st.sampled_from(SCENARIOS), min_size=1, max_size=4)


async def _run(
    tmp: Path,
    tls: Tls,
    *,
    scenarios: list[str],
    workers: int,
    fail_rate: float,
    poison_at: int | None,
    seed: int,
) -> OrderedBehaviour:
    clock = FakeClock()
    behaviour = OrderedBehaviour(seed=seed, fail_rate=fail_rate)
    receiver = await Receiver(tls.server_context(), behaviour=behaviour).start()
    platform = make_platform(
        tmp,
        clock=clock,
        ca_bundle=tls.ca_path,
        lease_seconds=3600.0,  # fake seconds: no lease runs out at this speed
        ordering_sweep_seconds=0.05,
        worker_max_in_flight=8,
    )
    account = make_account(platform, url=receiver.url)
    rng = random.Random(seed)
    calls = [call_scenario(name, rng, start=clock.now()) for name in scenarios]
    # Interleave the calls' events at random, each call's events in their own order.
    cursors = [0] * len(calls)
    order: list[tuple[int, int]] = []
    while any(c < len(call) for c, call in zip(cursors, calls, strict=True)):
        i = rng.choice([i for i, call in enumerate(calls) if cursors[i] < len(call)])
        order.append((i, cursors[i]))
        cursors[i] += 1
    call_ids = [call[0].data["call_id"] for call in calls]
    behaviour.audit.expected = {
        cid: frozenset(range(1, len(call) + 1)) for cid, call in zip(call_ids, calls, strict=True)
    }
    if poison_at is not None:
        victim = poison_at % len(calls)
        behaviour.poison.add((call_ids[victim], 1 + poison_at % len(calls[victim])))

    def publish(items: list[tuple[int, int]]) -> None:
        for i, k in items:
            item = calls[i][k]
            platform.publisher.publish(
                [PublishRequest(item.event, item.pbx_id, account.id, item.data)]
            )

    half = len(order) // 2
    publish(order[:half])
    stop = asyncio.Event()
    pool = [Worker.for_platform(platform, worker_id=f"w{n}") for n in range(workers)]
    for worker in pool:
        platform.publisher.on_publish(worker.wake)
    tasks = [asyncio.create_task(w.run(stop)) for w in pool]

    async def tick() -> None:
        while not stop.is_set():
            clock.advance(2.5)
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.to_thread(publish, order[half:])
        every = [
            (cid, s)
            for cid, call in zip(call_ids, calls, strict=True)
            for s in range(1, len(call) + 1)
            if (cid, s) not in behaviour.poison
        ]
        await wait_for(lambda: all(behaviour.finished(c, s) for c, s in every), timeout=90)
    finally:
        stop.set()
        await asyncio.gather(*tasks, ticker)
        await receiver.stop()
    return behaviour


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    scenarios=calls_strategy,
    workers=st.sampled_from([1, 3]),
    fail_rate=st.sampled_from([0.0, 0.3]),
    poison_at=st.none() | st.integers(0, 50),
    seed=st.integers(0, 2**16),
)
def test_receiver_never_sees_a_later_event_of_a_call_first(
    tmp_path: Path,
    tls: Tls,
    scenarios: list[str],
    workers: int,
    fail_rate: float,
    poison_at: int | None,
    seed: int,
) -> None:
    tmp = Path(tempfile.mkdtemp(dir=tmp_path))
    behaviour = asyncio.run(
        _run(
            tmp,
            tls,
            scenarios=scenarios,
            workers=workers,
            fail_rate=fail_rate,
            poison_at=poison_at,
            seed=seed,
        )
    )
    audit = behaviour.audit
    assert audit.violations == []
    assert audit.arrivals >= sum(len(v) for v in behaviour.expected().values()) - len(
        behaviour.poison
    )
    for call, seq in behaviour.poison:
        if seq < max(behaviour.expected()[call]):
            # Events behind the always-failing one were released past the bound, announced.
            assert audit.gaps_announced >= 1
    if not behaviour.poison and max(behaviour.attempts.values(), default=0) < 4:
        # Three retries of one event (5 s + 30 s + 2 min) stay within the 5-minute bound: no
        # event is released early. (A fourth, 10 min later, legitimately passes it.)
        assert audit.gaps_announced == 0
