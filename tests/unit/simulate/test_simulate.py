"""The simulator: valid, causally ordered, reproducible event sequences for any seed."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict, deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callhook import simulate as sim
from callhook.events import call_id_of, validate_publish_request
from callhook.store import events as event_store
from tests.factories import make_account, make_platform

START: Final = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
CALL_STARTS: Final = {"incoming_call_start", "outgoing_call_start"}
CALL_ENDS: Final = {"incoming_call_end", "outgoing_call_end"}
AFTER_END: Final = {"speech", "summary", "rating", "tags", "voicemail"}

seeds = st.integers(min_value=0, max_value=2**32 - 1)
counts = st.integers(min_value=1, max_value=25)
rates = st.sampled_from([0.0, 0.5, 5.0, 100.0])
speeds = st.sampled_from([0.0, 1.0, 60.0, 1000.0])


def by_conversation(events: Sequence[sim.SimEvent]) -> dict[int, list[sim.SimEvent]]:
    out: dict[int, list[sim.SimEvent]] = defaultdict(list)
    for e in events:
        out[e.conversation].append(e)
    return out


def assert_causal(conv: list[sim.SimEvent]) -> None:
    """One conversation's events, in the order given, make sense as a call (or SMS thread)."""
    names = [e.event for e in conv]
    if conv[0].kind == "sms":
        assert set(names) == {"sms"}
        directions = [e.data["direction"] for e in conv]
        assert directions[0] == "inbound"
        assert all(a != b for a, b in itertools.pairwise(directions))
        return
    assert names[0] in CALL_STARTS
    call_id = conv[0].pbx_id
    end_at = next(i for i, n in enumerate(names) if n in CALL_ENDS)
    assert all(n not in AFTER_END for n in names[:end_at])
    assert all(n in AFTER_END for n in names[end_at + 1 :])
    if "incoming_call_answer" in names:
        assert names.index("incoming_call_answer") < end_at
    if "outgoing_call_answer" in names:
        assert names.index("outgoing_call_answer") < end_at
    legs_started: set[str] = set()
    records: set[str] = set()
    for e in conv:
        assert call_id_of(e.event, e.pbx_id, e.data) == call_id
        if e.event == "incoming_call_start_chain_member_call":
            assert e.pbx_id not in legs_started
            legs_started.add(e.pbx_id)
        elif e.event == "incoming_call_end_chain_member_call":
            assert e.pbx_id in legs_started  # a leg ends after it started
        elif e.event in AFTER_END:
            assert e.pbx_id not in records  # each record has its own id
            records.add(e.pbx_id)
        else:
            assert e.pbx_id == call_id


@settings(max_examples=60, deadline=None)
@given(seed=seeds, calls=counts, rate=rates, speed=speeds)
def test_plan_is_valid_ordered_and_causal(seed: int, calls: int, rate: float, speed: float) -> None:
    events = sim.plan(calls, seed=seed, start=START, rate=rate, speed=speed)
    assert [e.at for e in events] == sorted(e.at for e in events)
    convs = by_conversation(events)
    assert sorted(convs) == list(range(calls))
    for conv in convs.values():
        assert len({e.kind for e in conv}) == 1
        assert_causal(conv)
        for e in conv:
            # The catalog's own check: a valid payload and the pbx_id the catalog prescribes.
            validate_publish_request({"event": e.event, "pbx_id": e.pbx_id, "data": e.data})
    call_ids = [c[0].pbx_id for c in convs.values() if c[0].kind != "sms"]
    assert len(call_ids) == len(set(call_ids))


@settings(max_examples=30, deadline=None)
@given(seed=seeds, calls=counts, rate=rates, speed=speeds)
def test_plan_is_reproducible(seed: int, calls: int, rate: float, speed: float) -> None:
    first = sim.plan(calls, seed=seed, start=START, rate=rate, speed=speed)
    assert first == sim.plan(calls, seed=seed, start=START, rate=rate, speed=speed)


@pytest.mark.parametrize("kind", sim.KINDS)
def test_plan_can_be_restricted_to_one_kind(kind: str) -> None:
    events = sim.plan(5, seed=7, start=START, kinds=[kind])
    assert {e.kind for e in events} == {kind}


def test_speed_compresses_gaps_inside_a_call() -> None:
    slow = sim.plan(1, seed=3, start=START, speed=1.0, kinds=["answered"])
    fast = sim.plan(1, seed=3, start=START, speed=100.0, kinds=["answered"])
    assert [e.data for e in slow] == [e.data for e in fast]  # same simulated call
    assert fast[-1].at == pytest.approx(slow[-1].at / 100, abs=1e-5)


def test_rate_spaces_call_starts() -> None:
    events = sim.plan(400, seed=1, start=START, rate=20.0, speed=0.0)
    starts = sorted({e.at for e in events})
    # 400 starts at 20/s span about 20 s (Poisson arrivals; a wide band, not a timing test).
    assert 12 < starts[-1] < 30


@given(
    items=st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=30),
    limit=st.integers(1, 10),
)
def test_take_batch_never_passes_a_held_event(items: list[tuple[int, bool]], limit: int) -> None:
    due: deque[sim.SimEvent] = deque(
        sim.SimEvent(float(i), conv, "sms", "sms", f"p{i}", {}) for i, (conv, _) in enumerate(items)
    )
    busy = {conv for conv, is_busy in items if is_busy}
    before = list(due)
    batch = sim.take_batch(due, busy, limit)
    assert len(batch) <= limit
    assert all(e.conversation not in busy for e in batch)
    assert sorted(batch + list(due), key=lambda e: e.at) == before
    for conv in {e.conversation for e in before}:
        order = [e for e in before if e.conversation == conv]
        taken = [e for e in batch if e.conversation == conv]
        assert taken == order[: len(taken)]  # only a prefix of a conversation goes


@settings(max_examples=25, deadline=None)
@given(seed=seeds, concurrency=st.integers(1, 8), batch=st.integers(1, 20))
def test_drive_publishes_each_conversation_in_order(
    seed: int, concurrency: int, batch: int
) -> None:
    events = sim.plan(12, seed=seed, start=START, rate=0.0, speed=0.0)
    jitter = random.Random(seed)
    committed: list[sim.SimEvent] = []
    in_flight: set[int] = set()

    async def publish(items: Sequence[sim.SimEvent]) -> None:
        convs = {e.conversation for e in items}
        assert not convs & in_flight  # never two publishes of one conversation at once
        in_flight.update(convs)
        await asyncio.sleep(jitter.uniform(0, 0.002))
        committed.extend(items)
        in_flight.difference_update(convs)

    stats = asyncio.run(sim.drive(events, publish, concurrency=concurrency, batch_size=batch))
    assert stats.published == len(events)
    assert stats.failed == 0
    for conv, planned in by_conversation(events).items():
        assert [e for e in committed if e.conversation == conv] == planned


def test_drive_counts_failures_and_goes_on() -> None:
    events = sim.plan(6, seed=2, start=START, rate=0.0, speed=0.0)

    async def publish(items: Sequence[sim.SimEvent]) -> None:
        if items[0].conversation == 0:
            raise RuntimeError("refused")

    stats = asyncio.run(sim.drive(events, publish, concurrency=2, batch_size=1))
    assert stats.failed > 0
    assert stats.published + stats.failed == len(events)
    assert "RuntimeError: refused" in stats.errors


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=seeds)
def test_published_calls_get_sequences_in_causal_order(
    tmp_path_factory: pytest.TempPathFactory, seed: int
) -> None:
    platform = make_platform(tmp_path_factory.mktemp("sim"))
    try:
        account = make_account(platform, url="http://127.0.0.1:9/hook")
        events = sim.plan(15, seed=seed, start=START, rate=0.0, speed=0.0)
        publish = sim.in_process(platform.publisher, account.id)
        stats = asyncio.run(sim.drive(events, publish, concurrency=4, batch_size=7))
        assert stats.published == len(events)
        with platform.db.read() as conn:
            for conv in by_conversation(events).values():
                if conv[0].kind == "sms":
                    continue
                stored = event_store.for_pbx_id(conn, account.id, conv[0].pbx_id)
                assert [s.sequence for s in stored] == list(range(1, len(conv) + 1))
                assert [(s.event, s.pbx_id) for s in stored] == [(e.event, e.pbx_id) for e in conv]
    finally:
        platform.db.dispose()


def test_plan_is_pure_of_the_account() -> None:
    events = sim.plan(2, seed=1, start=START)
    request = events[0].request("acc_1")
    assert request["account_id"] == "acc_1"
    assert validate_publish_request(request)["pbx_id"] == events[0].pbx_id


def test_the_progress_bar_runs_to_its_end_on_the_cli_console() -> None:
    """``callhook simulate`` drives its run under a Rich progress bar on the CLI's console; the
    bar enters that console as a context manager when it stops (it raised ``TypeError`` at the
    end of every run, after publishing everything)."""
    from callhook.cli.common import console
    from callhook.cli.simulate import run_with_progress

    events = sim.plan(2, seed=4, start=START, speed=0.0, kinds=["answered"])
    sent: list[sim.SimEvent] = []

    async def publish(batch: Sequence[sim.SimEvent]) -> None:
        sent.extend(batch)

    stats = asyncio.run(
        run_with_progress(events, publish, concurrency=2, batch_size=10, out=console)
    )
    assert len(sent) == len(events)
    assert stats is not None
