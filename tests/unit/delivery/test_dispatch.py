"""Dispatch: fair, capped hand-out of claimed jobs (pure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from callhook.delivery.dispatch import Dispatch


@dataclass(frozen=True)
class J:
    delivery_id: str
    endpoint_id: str


def jobs(endpoint: str, n: int, start: int = 0) -> list[J]:
    return [J(f"{endpoint}-{i}", endpoint) for i in range(start, start + n)]


def take_all(d: Dispatch[J]) -> list[J]:
    out = []
    while (job := d.take()) is not None:
        out.append(job)
    return out


def test_round_robin_over_endpoints_fifo_within_one() -> None:
    d: Dispatch[J] = Dispatch(per_endpoint=10)
    d.add(jobs("a", 3) + jobs("b", 2) + jobs("c", 1))
    assert [j.delivery_id for j in take_all(d)] == ["a-0", "b-0", "c-0", "a-1", "b-1", "a-2"]
    assert d.in_flight == 6
    assert d.queued == 0


def test_an_endpoint_at_its_cap_waits_until_one_of_its_attempts_is_done() -> None:
    d: Dispatch[J] = Dispatch(per_endpoint=2)
    d.add(jobs("slow", 5) + jobs("fast", 1))
    started = take_all(d)
    assert [j.delivery_id for j in started] == ["slow-0", "fast-0", "slow-1"]
    assert d.queued == 3
    assert d.busy["slow"] == 2
    assert d.done(started[1]) is False  # fast has nothing queued
    assert d.done(started[0]) is True  # slow has room again and jobs waiting
    assert [j.delivery_id for j in take_all(d)] == ["slow-2"]


def test_dropped_jobs_are_skipped_and_not_counted() -> None:
    d: Dispatch[J] = Dispatch(per_endpoint=5)
    d.add(jobs("a", 4))
    dropped = d.drop(["a-1", "a-2", "zzz"])
    assert [j.delivery_id for j in dropped] == ["a-1", "a-2"]
    assert d.queued == 2
    assert not d.is_queued("a-1")
    assert d.is_queued("a-3")
    assert [j.delivery_id for j in take_all(d)] == ["a-0", "a-3"]


def test_queued_jobs_of_one_endpoint() -> None:
    d: Dispatch[J] = Dispatch(per_endpoint=1)
    d.add(jobs("a", 2) + jobs("b", 2))
    first = d.take()
    assert first is not None
    assert first.delivery_id == "a-0"
    assert [j.delivery_id for j in d.queued_jobs("a")] == ["a-1"]
    assert {j.delivery_id for j in d.queued_jobs()} == {"a-1", "b-0", "b-1"}


@given(
    cap=st.integers(1, 4),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.sampled_from("abcd"), st.integers(1, 6)),
            st.tuples(st.just("take"), st.just(""), st.integers(1, 8)),
            st.tuples(st.just("done"), st.just(""), st.integers(0, 20)),
            st.tuples(st.just("drop"), st.just(""), st.integers(0, 40)),
        ),
        max_size=60,
    ),
)
def test_never_over_cap_nothing_lost_nothing_twice(
    cap: int, ops: list[tuple[str, str, int]]
) -> None:
    d: Dispatch[J] = Dispatch(per_endpoint=cap)
    added: list[J] = []
    running: list[J] = []
    started: Counter[str] = Counter()
    dropped: set[str] = set()
    for op, endpoint, n in ops:
        if op == "add":
            new = jobs(endpoint, n, start=sum(1 for j in added if j.endpoint_id == endpoint))
            added += new
            d.add(new)
        elif op == "take":
            for _ in range(n):
                job = d.take()
                if job is None:
                    break
                running.append(job)
                started[job.delivery_id] += 1
        elif op == "done" and running:
            d.done(running.pop(n % len(running)))
        elif op == "drop" and added:
            target = added[n % len(added)].delivery_id
            dropped |= {j.delivery_id for j in d.drop([target])}
        busy = Counter(j.endpoint_id for j in running)
        assert all(count <= cap for count in busy.values())
        assert d.in_flight == len(running)
        assert +d.busy == busy
        queued = Counter(j.endpoint_id for j in d.queued_jobs())
        assert d.saturated() == {a for a, n in (busy + queued).items() if n >= cap}
    # Everything still queued starts once the running attempts finish: nothing is stranded.
    while True:
        while (job := d.take()) is not None:
            running.append(job)
            started[job.delivery_id] += 1
        if not running:
            break
        d.done(running.pop())
    assert d.queued == 0
    assert set(started) | dropped == {j.delivery_id for j in added}
    assert max(started.values(), default=1) == 1


def test_room_grows_with_answers_and_halves_when_the_endpoint_does_not_answer() -> None:
    d: Dispatch[J] = Dispatch(per_endpoint=32, initial=4)
    d.add(jobs("dead", 40) + jobs("live", 40))
    started = take_all(d)
    assert Counter(j.endpoint_id for j in started) == {"dead": 4, "live": 4}
    for job in started:
        d.done(job, healthy=job.endpoint_id == "live")
    assert d.room("dead") == 1  # 4 → 2 → 1 → 1 → 1
    assert d.room("live") == 8
    again = Counter(j.endpoint_id for j in take_all(d))
    assert again == {"dead": 1, "live": 8}


def test_urgent_jobs_start_before_the_endpoints_queued_bulk_in_their_own_order() -> None:
    d: Dispatch[J] = Dispatch(
        per_endpoint=10, initial=10, urgent=lambda j: j.delivery_id.startswith("cc")
    )
    d.add(jobs("a", 3))
    d.add([J("cc-1", "a"), J("cc-2", "a")])
    d.add(jobs("a", 1, start=3))
    d.add([J("cc-3", "a")])
    assert [j.delivery_id for j in take_all(d)] == [
        "cc-1",
        "cc-2",
        "cc-3",
        "a-0",
        "a-1",
        "a-2",
        "a-3",
    ]


def test_a_saturated_fast_endpoint_wants_urgent_jobs_until_one_is_queued() -> None:
    d: Dispatch[J] = Dispatch(
        per_endpoint=4, initial=4, urgent=lambda j: j.delivery_id.startswith("cc")
    )
    d.add(jobs("a", 1))
    [first] = take_all(d)
    d.done(first)  # answered fast
    assert d.wanting_urgent() == set()  # room left: a normal claim takes its jobs
    d.add(jobs("a", 6, start=1))
    started = take_all(d)
    assert len(started) == 4
    assert d.queued == 2
    assert d.saturated() == {"a"}
    assert d.wanting_urgent() == {"a"}
    d.add([J("cc-1", "a")])
    assert d.wanting_urgent() == set()  # one is queued first: no more until it starts
    d.done(started[0])
    assert [j.delivery_id for j in take_all(d)] == ["cc-1"]
    assert d.wanting_urgent() == {"a"}


def test_an_endpoint_holding_twice_its_share_wants_nothing_more() -> None:
    """Bulk aged past the priority's handicap comes first by its claim key but is not urgent
    here: the urgent claims for a busy endpoint stop at twice its share."""
    d: Dispatch[J] = Dispatch(per_endpoint=2, initial=2, urgent=lambda j: j.delivery_id[0] == "u")
    d.add(jobs("a", 1))
    d.done(take_all(d)[0])
    d.add(jobs("a", 3, start=1))
    take_all(d)
    assert d.wanting_urgent() == {"a"}  # 2 in flight, 1 queued
    d.add(jobs("a", 1, start=4))  # an urgent claim brought an aged bulk job
    assert d.wanting_urgent() == set()  # 2 in flight, 2 queued: twice its share


def test_slow_endpoints_and_workers_without_urgency_want_no_urgent_jobs() -> None:
    slow: Dispatch[J] = Dispatch(per_endpoint=2, initial=2, urgent=lambda j: True)
    slow.add(jobs("s", 3))
    take_all(slow)
    assert slow.saturated() == {"s"}  # never heard from: not known fast
    assert slow.wanting_urgent() == set()
    plain: Dispatch[J] = Dispatch(per_endpoint=1, initial=1)
    plain.add(jobs("a", 1))
    plain.done(take_all(plain)[0])
    plain.add(jobs("a", 2, start=1))
    take_all(plain)
    assert plain.saturated() == {"a"}
    assert plain.wanting_urgent() == set()


@given(st.lists(st.booleans(), max_size=40))
def test_urgency_reorders_but_never_loses_a_job(flags: list[bool]) -> None:
    d: Dispatch[J] = Dispatch(
        per_endpoint=100, initial=100, urgent=lambda j: j.delivery_id[0] == "u"
    )
    made = [J(f"{'u' if f else 'b'}{i}", "a") for i, f in enumerate(flags)]
    d.add(made)
    taken = [j.delivery_id for j in take_all(d)]
    assert sorted(taken) == sorted(j.delivery_id for j in made)
    urgent = [x for x in taken if x[0] == "u"]
    assert (
        taken[: len(urgent)] == urgent == [j.delivery_id for j in made if j.delivery_id[0] == "u"]
    )


def test_endpoints_not_known_fast_share_the_slow_places_only() -> None:
    d: Dispatch[J] = Dispatch(per_endpoint=4, slow_places=6)
    d.add(jobs("fast", 1))
    [probe] = take_all(d)  # not heard from yet: it took a slow place
    assert d.slow_in_flight == 1
    d.done(probe)  # answered fast: known fast from now on
    assert d.slow_in_flight == 0
    d.add(jobs("slow1", 4) + jobs("slow2", 4) + jobs("new", 4))
    started = take_all(d)
    assert len(started) == 6  # the slow places, shared by slow1, slow2 and new
    assert d.slow_in_flight == 6
    d.add(jobs("fast", 2, start=1))
    assert [j.endpoint_id for j in take_all(d)] == ["fast", "fast"]  # not kept waiting
    d.done(started[0], slow=True)  # a slow place frees: one waiting endpoint takes it
    [next_one] = take_all(d)
    assert next_one.endpoint_id != "fast"
    assert d.slow_in_flight == 6


def test_slow_answers_do_not_grow_the_room_and_saturate_at_it() -> None:
    d: Dispatch[J] = Dispatch(per_endpoint=32, initial=4, slow_places=100)
    d.add(jobs("s", 4))
    for job in take_all(d):
        d.done(job, slow=True)
    assert d.room("s") == 4
    d.add(jobs("s", 4, start=4))
    assert "s" in d.saturated()  # its room's worth held: claim nothing more for it
    d.add(jobs("f", 1))
    assert "f" not in d.saturated()
    [*_, last] = take_all(d)
    d.done(last)  # whichever it was, a fast answer grows the room
    assert d.room(last.endpoint_id) == 5


@given(
    st.lists(st.tuples(st.sampled_from("abcdef"), st.booleans()), min_size=1, max_size=200),
    st.integers(1, 8),
)
def test_the_slow_places_are_never_exceeded(steps: list[tuple[str, bool]], places: int) -> None:
    d: Dispatch[J] = Dispatch(per_endpoint=3, slow_places=places)
    running: list[J] = []
    for n, (endpoint, slow) in enumerate(steps):
        d.add([J(f"{endpoint}-{n}", endpoint)])
        running.extend(take_all(d))
        assert d.slow_in_flight <= places
        if running and n % 2:
            d.done(running.pop(0), slow=slow)
            running.extend(take_all(d))
            assert d.slow_in_flight <= places


def test_any_below_share_tells_when_a_saturated_endpoint_can_take_more() -> None:
    d: Dispatch[J] = Dispatch(per_endpoint=2, initial=2)
    d.add(jobs("a", 3) + jobs("b", 1))
    started = take_all(d)  # a-0, b-0, a-1: "a" has 2 under way and 1 queued
    d.done(started[1])  # "b" answered fast
    assert d.saturated() == {"a"}
    assert d.any_below_share({"a"}) is False
    first_a = next(j for j in started if j.delivery_id == "a-0")
    d.done(first_a)  # 1 under way + 1 queued: still its share
    assert d.any_below_share({"a"}) is False
    assert [j.delivery_id for j in take_all(d)] == ["a-2"]
    d.done(next(j for j in started if j.delivery_id == "a-1"))  # 1 under way
    assert d.any_below_share({"a"}) is True
    assert d.saturated() == set()
    # Endpoints it holds nothing for are below their share.
    assert d.any_below_share({"unknown"}) is True
    assert d.any_below_share(set()) is False
