"""The per-call line in the queue (issue 14), driven through publish, claim and complete on
both backends with a fake clock: who may be claimed, who waits, who is promoted, the bound,
expiry."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callhook.core import ordering as rules
from callhook.core import replay as replay_rules
from callhook.core.clock import FakeClock
from callhook.delivery.claims import Claims
from callhook.errors import PayloadInvalid
from callhook.events import call_scenario
from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.store import deliveries as deliveries_store
from callhook.store import endpoint_health, queue
from callhook.store import endpoints as endpoint_store
from callhook.store import ordering as line_store
from callhook.store.queue import AttemptResult, ClaimedJob
from callhook.store.tables import deliveries
from tests.factories import make_account, make_platform, publish_sample

LEASE = timedelta(seconds=30)
RULES = endpoint_health.Rules()


def _publish_call(platform: Platform, account_id: str, seed: int = 3) -> list[str]:
    """Publish one answered call, an event per request; its delivery ids in sequence order."""
    call = call_scenario("answered", random.Random(seed), start=platform.clock.now())
    ids = []
    for item in call:
        [published] = platform.publisher.publish(
            [PublishRequest(item.event, item.pbx_id, account_id, item.data)]
        )
        assert published.delivery_id is not None
        ids.append(published.delivery_id)
    return ids


def _claim(platform: Platform, limit: int = 100) -> list[ClaimedJob]:
    with platform.db.write() as conn:
        return queue.claim(
            conn,
            worker_id="w",
            claim_id=f"clm_{random.random()}",
            now=platform.clock.now(),
            lease=LEASE,
            limit=limit,
            box=platform.box,
            per_endpoint=limit,
        )


def _finish(
    platform: Platform, job: ClaimedJob, *, delivered: bool, retry_in: float | None = None
) -> None:
    now = platform.clock.now()
    result = AttemptResult(
        job=job,
        started_at=now,
        duration_ms=1.0,
        delivered=delivered,
        status_code=200 if delivered else 500,
        response_body=None,
        error_class=None if delivered else "http_status",
        error_message=None,
        next_attempt_at=None if retry_in is None else now + timedelta(seconds=retry_in),
    )
    with platform.db.write() as conn:
        assert queue.complete(conn, [result]) == []


def _states(platform: Platform, ids: list[str]) -> list[tuple[str, bool]]:
    with platform.db.read() as conn:
        query = select(deliveries.c.id, deliveries.c.status, deliveries.c.holds_line).where(
            deliveries.c.id.in_(ids)
        )
        rows = {r[0]: (r[1], bool(r[2])) for r in conn.execute(query)}
    return [rows[i] for i in ids]


def test_only_the_first_event_of_a_call_is_claimable_and_each_finish_hands_on(
    tmp_path: Path,
) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    ids = _publish_call(platform, account.id)
    assert len(ids) >= 6
    assert _states(platform, ids) == [("pending", True)] + [("waiting", False)] * (len(ids) - 1)
    seen = []
    for n in range(len(ids)):
        jobs = _claim(platform)
        assert [j.delivery_id for j in jobs] == [ids[n]], f"step {n}"
        assert jobs[0].sequence == n + 1
        assert jobs[0].previous_sequence is None
        seen.append(jobs[0].sequence)
        # A failed attempt that will be retried keeps the line: nothing else becomes claimable.
        if n == 2:
            _finish(platform, jobs[0], delivered=False, retry_in=5)
            assert _claim(platform) == []
            platform.clock.advance(5)  # type: ignore[attr-defined]
            jobs = _claim(platform)
            assert [j.delivery_id for j in jobs] == [ids[n]]
        _finish(platform, jobs[0], delivered=True)
    assert seen == list(range(1, len(ids) + 1))
    assert _states(platform, ids) == [("delivered", False)] * len(ids)
    with platform.db.read() as conn:
        assert line_store.line_counts(conn) == {"holding": 0, "waiting": 0}


def test_calls_go_in_parallel_and_a_failure_for_good_hands_on(tmp_path: Path) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    first = _publish_call(platform, account.id, seed=1)
    second = _publish_call(platform, account.id, seed=2)
    jobs = _claim(platform)
    assert {j.delivery_id for j in jobs} == {first[0], second[0]}
    for job in jobs:
        _finish(platform, job, delivered=False)  # failed for good: no retry
    jobs = _claim(platform)
    assert {j.delivery_id for j in jobs} == {first[1], second[1]}


def test_the_bound_releases_the_next_in_order_with_the_gap_announced(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    ids = _publish_call(platform, account.id)
    [head] = _claim(platform)
    _finish(platform, head, delivered=False, retry_in=3600)
    clock.advance(299)
    with platform.db.write() as conn:
        assert line_store.sweep(conn, now=clock.now(), policies={}) == line_store.SweepReport()
    clock.advance(1)
    with platform.db.write() as conn:
        report = line_store.sweep(conn, now=clock.now(), policies={})
    assert report == line_store.SweepReport(bypassed=1, expired=0, promoted=1)
    [released] = _claim(platform)
    assert released.delivery_id == ids[1]
    assert (released.sequence, released.previous_sequence) == (2, 1)
    _finish(platform, released, delivered=True)
    # What follows the released one is in order behind it, and announces nothing.
    [third] = _claim(platform)
    assert (third.delivery_id, third.previous_sequence) == (ids[2], None)
    # The bypassed head keeps its own retries.
    assert _states(platform, ids[:1]) == [("pending", False)]


def test_a_holder_bypassed_in_flight_does_not_hand_on_twice(tmp_path: Path) -> None:
    """The sweep bypasses a holder while a worker is still attempting it (a retry); when
    that attempt finishes, the line stays with the released event (one holder per line, never
    two)."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    _set(platform, account.id, ordering_bound_seconds=10)
    ids = _publish_call(platform, account.id)
    [first] = _claim(platform)
    _finish(platform, first, delivered=False, retry_in=5)
    clock.advance(5)
    [head] = _claim(platform)
    assert head.holds_line
    clock.advance(5)
    with platform.db.write() as conn:
        assert line_store.sweep(conn, now=clock.now(), policies=_policies(platform)).bypassed == 1
    _finish(platform, head, delivered=True)
    assert _states(platform, ids[:3]) == [
        ("delivered", False),
        ("pending", True),
        ("waiting", False),
    ]
    [released] = _claim(platform)
    assert (released.delivery_id, released.previous_sequence) == (ids[1], 1)
    _finish(platform, released, delivered=True)
    assert [j.delivery_id for j in _claim(platform)] == [ids[2]]


def _set(platform: Platform, account_id: str, **fields: object) -> str:
    """Set ordering fields on the account's primary endpoint; its id."""
    with platform.db.write() as conn:
        endpoint = endpoint_store.primary(conn, account_id)
        assert endpoint is not None
        endpoint_store.update(conn, account_id, endpoint.id, now=platform.clock.now(), **fields)  # type: ignore[arg-type]
    return endpoint.id


def _policies(platform: Platform) -> dict[str, line_store.LinePolicy]:
    with platform.db.read() as conn:
        return line_store.policies(conn)


def test_a_shorter_bound_per_endpoint(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    endpoint_id = _set(platform, account.id, ordering_bound_seconds=10)
    assert _policies(platform) == {endpoint_id: line_store.LinePolicy(bound=timedelta(seconds=10))}
    ids = _publish_call(platform, account.id)
    [head] = _claim(platform)
    _finish(platform, head, delivered=False, retry_in=3600)
    clock.advance(10)
    with platform.db.write() as conn:
        assert line_store.sweep(conn, now=clock.now(), policies=_policies(platform)).bypassed == 1
    assert [j.delivery_id for j in _claim(platform)] == [ids[1]]


def test_the_bound_runs_from_the_first_attempt_not_while_a_holder_waits_unattempted(
    tmp_path: Path,
) -> None:
    """A holder that has not been attempted (its endpoint paused, failing, throttled or
    backlogged) holds its call back past any bound: bypassing it would send the call's events
    in parallel once the endpoint takes them again. Its first attempt starts the bound."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    endpoint_id = _set(platform, account.id, ordering_bound_seconds=10)
    ids = _publish_call(platform, account.id)
    with platform.db.write() as conn:
        endpoint_health.pause(
            conn, endpoint_id, account.id, by="customer", now=clock.now(), rules=RULES
        )
    clock.advance(3600)
    with platform.db.write() as conn:
        assert not line_store.needs_sweep(conn, now=clock.now(), policies=_policies(platform))
        assert line_store.sweep(conn, now=clock.now(), policies=_policies(platform)).bypassed == 0
        endpoint_health.resume(
            conn, endpoint_id, account.id, by="customer", now=clock.now(), rules=RULES
        )
    assert _states(platform, ids[:2]) == [("pending", True), ("waiting", False)]
    # Attempted an hour after it took the line, failed: the bound counts from that attempt.
    [head] = _claim(platform)
    assert head.delivery_id == ids[0]
    _finish(platform, head, delivered=False, retry_in=3600)
    clock.advance(9)
    with platform.db.write() as conn:
        assert line_store.sweep(conn, now=clock.now(), policies=_policies(platform)).bypassed == 0
    clock.advance(1)
    with platform.db.write() as conn:
        assert line_store.sweep(conn, now=clock.now(), policies=_policies(platform)).bypassed == 1
    [released] = _claim(platform)
    assert (released.delivery_id, released.previous_sequence) == (ids[1], 1)


@pytest.mark.parametrize("paused_max_age", [None, 86400])
def test_unattempted_holders_do_not_fill_the_sweeps_read(
    tmp_path: Path, paused_max_age: int | None
) -> None:
    """A paused endpoint's never-attempted holders (older than everything else) are not read
    by the sweep unless they could expire now — with or without a maximum age of their own:
    an overdue holder of another endpoint is still found within the sweep's limit."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    paused = make_account(platform, url="https://a.example/hook")
    other = make_account(platform, url="https://b.example/hook", name="B")
    paused_ep = _set(
        platform,
        paused.id,
        max_age_call_control_seconds=paused_max_age,
        max_age_bulk_seconds=paused_max_age,
    )
    for seed in range(3):
        _publish_call(platform, paused.id, seed=seed)
    with platform.db.write() as conn:
        endpoint_health.pause(
            conn, paused_ep, paused.id, by="customer", now=clock.now(), rules=RULES
        )
    clock.advance(1)
    _set(platform, other.id, ordering_bound_seconds=10, max_age_bulk_seconds=86400)
    ids = _publish_call(platform, other.id, seed=7)
    with platform.db.write() as conn:  # a worker leaves the paused endpoint out
        [head] = queue.claim(
            conn,
            worker_id="w",
            claim_id="clm_other",
            now=clock.now(),
            lease=LEASE,
            limit=100,
            box=platform.box,
            exclude_endpoints=[paused_ep],
        )
    assert head.delivery_id == ids[0]
    _finish(platform, head, delivered=False, retry_in=3600)
    clock.advance(60)
    with platform.db.write() as conn:
        report = line_store.sweep(conn, now=clock.now(), policies=_policies(platform), limit=3)
    assert report.bypassed == 1


def test_switching_to_ordering_none_frees_what_waits(tmp_path: Path) -> None:
    """``ordering: none`` sends as soon as a worker is free: deliveries already waiting behind
    a retrying holder become claimable at once, not when the bound runs out."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    ids = _publish_call(platform, account.id)
    [head] = _claim(platform)
    _finish(platform, head, delivered=False, retry_in=3600)
    assert _states(platform, ids[1:]) == [("waiting", False)] * (len(ids) - 1)
    _set(platform, account.id, ordering="none")
    assert _states(platform, ids) == [("pending", False)] * len(ids)
    assert {j.delivery_id for j in _claim(platform)} == set(ids[1:])
    # Setting it again (already none) changes nothing; per_call applies to new calls.
    _set(platform, account.id, ordering="none")
    _set(platform, account.id, ordering="per_call")
    later = _publish_call(platform, account.id, seed=4)
    assert [s for s, _ in _states(platform, later)] == ["pending"] + ["waiting"] * (len(later) - 1)


def _fail_whole_call(platform: Platform, ids: list[str]) -> None:
    """Each event of the call fails for good in turn (no retries), handing the line on."""
    for delivery_id in ids:
        [job] = _claim(platform)
        assert job.delivery_id == delivery_id
        _finish(platform, job, delivered=False)
    assert [s for s, _ in _states(platform, ids)] == ["failed"] * len(ids)


def _deliver_in_turn(platform: Platform, ids: list[str]) -> None:
    """Only one event of the call is claimable at a time, in sequence order, none out of
    order."""
    for delivery_id in ids:
        [job] = _claim(platform)
        assert (job.delivery_id, job.previous_sequence) == (delivery_id, None)
        _finish(platform, job, delivered=True)
    assert _claim(platform) == []


def _sweep(platform: Platform) -> line_store.SweepReport:
    with platform.db.write() as conn:
        return line_store.sweep(conn, now=platform.clock.now(), policies=_policies(platform))


def test_a_window_redelivery_sends_each_call_in_order_again(tmp_path: Path) -> None:
    """Redelivering a time window (API, CLI, dashboard) queues a call's events through its
    line: they wait, and the next sweep gives the line to the lowest sequence (they were never
    received, so the receiver must get them in order)."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    since = clock.now()
    ids = _publish_call(platform, account.id)
    _fail_whole_call(platform, ids)
    clock.advance(60)
    with platform.db.write() as conn:
        n = deliveries_store.redeliver_window(
            conn, now=clock.now(), account_id=account.id, since=since, status="failed"
        )
    assert n == len(ids)
    assert _states(platform, ids) == [("waiting", False)] * len(ids)
    assert _claim(platform) == []
    with platform.db.read() as conn:
        assert line_store.needs_sweep(conn, now=clock.now(), policies=_policies(platform))
    assert _sweep(platform).promoted == 1
    assert _states(platform, ids) == [("pending", True)] + [("waiting", False)] * (len(ids) - 1)
    # Settled once: the next sweep has nothing to do.
    with platform.db.read() as conn:
        assert not line_store.needs_sweep(conn, now=clock.now(), policies=_policies(platform))
    _deliver_in_turn(platform, ids)


def test_a_window_redelivery_behind_a_taken_line_waits(tmp_path: Path) -> None:
    """Events of a call redelivered while the call's line is held (a later event still being
    retried) wait behind that holder rather than going out beside it."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    since = clock.now()
    ids = _publish_call(platform, account.id)
    _fail_whole_call(platform, ids[:2])
    [third] = _claim(platform)
    _finish(platform, third, delivered=False, retry_in=60)  # holds the line, retrying
    with platform.db.write() as conn:
        assert (
            deliveries_store.redeliver_window(
                conn, now=clock.now(), account_id=account.id, since=since, status="failed"
            )
            == 2
        )
    assert _states(platform, ids[:3]) == [("waiting", False), ("waiting", False), ("pending", True)]
    assert _sweep(platform).promoted == 0  # the line has its holder
    clock.advance(60)
    [again] = _claim(platform)
    assert again.delivery_id == ids[2]
    _finish(platform, again, delivered=True)
    _deliver_in_turn(platform, [ids[0], ids[1], *ids[3:]])


def test_a_recovery_replay_sends_each_call_in_order(tmp_path: Path) -> None:
    """The replay of an outage's failed deliveries (an endpoint back to active) goes through
    the calls' lines like a redelivery."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    outage = clock.now()
    ids = _publish_call(platform, account.id)
    _fail_whole_call(platform, ids)
    endpoint = _endpoint_of(platform, ids[0])
    clock.advance(60)
    with platform.db.write() as conn:
        n = endpoint_health.replay(conn, endpoint, outage, clock.now(), replay_rules.ReplayPolicy())
    assert n == len(ids)
    assert _sweep(platform).promoted == 1
    assert _states(platform, ids) == [("pending", True)] + [("waiting", False)] * (len(ids) - 1)
    _deliver_in_turn(platform, ids)


def test_a_replay_under_the_health_lock_takes_no_line_lock(tmp_path: Path) -> None:
    """A recovery holds the endpoint's health row and replays; a completion holds its line
    and then wants that row. The replay must not wait for the line (PostgreSQL deadlocked:
    each held what the other wanted). Here the completion holds the line first."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    outage = clock.now()
    _publish_call(platform, account.id)
    [first] = _claim(platform)
    _finish(platform, first, delivered=False)  # failed for good: the replay takes it
    [held] = _claim(platform)  # the next one holds the line, in flight
    with platform.db.write() as conn:  # the health row exists (it is made on first use)
        endpoint_health._ensure(conn, [(held.endpoint_id, account.id)])
    errors: list[BaseException] = []
    line_taken = threading.Event()

    def completion() -> None:
        try:
            with platform.db.write() as conn:
                line_store.lock_lines(conn, [(held.endpoint_id, held.call_id or "")])
                line_taken.set()
                time.sleep(0.5)  # long enough for the recovery to reach its replay
                endpoint_health.load(conn, [held.endpoint_id], lock=True)
        except BaseException as exc:
            errors.append(exc)

    def recovery() -> None:
        try:
            line_taken.wait(10)
            with platform.db.write() as conn:
                endpoint_health.load(conn, [held.endpoint_id], lock=True)
                endpoint_health.replay(
                    conn, held.endpoint_id, outage, clock.now(), replay_rules.ReplayPolicy()
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=completion), threading.Thread(target=recovery)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert _states(platform, [first.delivery_id]) == [("waiting", False)]


def test_a_single_redelivery_keeps_its_group_in_the_claim_order(tmp_path: Path) -> None:
    """A redelivered bulk event is not ahead of a call-control event due at the same time."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    sms = publish_sample(platform, account.id, "sms").delivery_id
    assert sms is not None
    [job] = _claim(platform)
    _finish(platform, job, delivered=True)
    with platform.db.write() as conn:
        deliveries_store.redeliver(conn, sms, now=clock.now())
    live = publish_sample(platform, account.id, "outgoing_call_start").delivery_id
    assert [j.delivery_id for j in _claim(platform, limit=1)] == [live]


def test_ordering_none_leaves_every_event_claimable(tmp_path: Path) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    _set(platform, account.id, ordering="none")
    ids = _publish_call(platform, account.id)
    assert _states(platform, ids) == [("pending", False)] * len(ids)
    assert {j.delivery_id for j in _claim(platform)} == set(ids)
    assert all(j.previous_sequence is None for j in _claim(platform))


def test_max_age_reaches_the_claimed_job(tmp_path: Path) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    _set(platform, account.id, ordering="none", max_age_call_control_seconds=120)
    _publish_call(platform, account.id)
    ages = {j.event: j.max_age for j in _claim(platform)}
    assert ages["incoming_call_start"] == timedelta(minutes=2)
    assert ages["speech"] is None


def test_expiry_at_the_sweep_releases_the_next(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    ids = _publish_call(platform, account.id)
    [head] = _claim(platform)
    _finish(platform, head, delivered=False, retry_in=3600)
    clock.advance(121)
    endpoint_id = _set(platform, account.id, max_age_call_control_seconds=120)
    policy = line_store.LinePolicy(expiry=rules.Expiry(call_control=timedelta(minutes=2)))
    assert _policies(platform) == {endpoint_id: policy}
    with platform.db.write() as conn:
        report = line_store.sweep(conn, now=clock.now(), policies=_policies(platform))
    assert report == line_store.SweepReport(bypassed=0, expired=1, promoted=1)
    assert _states(platform, ids[:2]) == [("expired", False), ("pending", True)]
    [nxt] = _claim(platform)
    assert (nxt.delivery_id, nxt.previous_sequence) == (ids[1], None)


def test_expired_at_the_attempt_hands_on(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    ids = _publish_call(platform, account.id)
    [head] = _claim(platform)
    now = clock.now()
    result = AttemptResult(
        job=head,
        started_at=now,
        duration_ms=0.0,
        delivered=False,
        status_code=None,
        response_body=None,
        error_class="expired",
        error_message="not sent",
        next_attempt_at=None,
    )
    with platform.db.write() as conn:
        queue.complete(conn, [result])
    assert _states(platform, ids[:2]) == [("expired", False), ("pending", True)]


def test_a_stale_worker_cannot_hand_on(tmp_path: Path) -> None:
    """A lease that ran out and was claimed again: the first worker's result is refused and the
    line stays with the new owner's attempt (order holds after a crash)."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    ids = _publish_call(platform, account.id)
    [first] = _claim(platform)
    clock.advance(31)
    [again] = _claim(platform)
    assert again.delivery_id == first.delivery_id
    with platform.db.write() as conn:
        stale = queue.complete(
            conn,
            [
                AttemptResult(
                    job=first,
                    started_at=clock.now(),
                    duration_ms=1.0,
                    delivered=True,
                    status_code=200,
                    response_body=None,
                    error_class=None,
                    error_message=None,
                    next_attempt_at=None,
                )
            ],
        )
    assert len(stale) == 1
    assert _states(platform, ids[:2]) == [("pending", True), ("waiting", False)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ordering", "fifo"),
        ("ordering", None),
        ("ordering_bound_seconds", -1),
        ("ordering_bound_seconds", 0),
        ("ordering_bound_seconds", 10**12),
        ("ordering_bound_seconds", "300"),
        ("max_age_call_control_seconds", -5),
        ("max_age_bulk_seconds", 86_401),
        ("max_age_bulk_seconds", 2.5),
    ],
)
def test_bad_ordering_fields_are_refused_naming_the_field_and_change_nothing(
    tmp_path: Path, field: str, value: object
) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    with platform.db.read() as conn:
        before = endpoint_store.primary(conn, account.id)
    assert before is not None
    with pytest.raises(PayloadInvalid) as info, platform.db.write() as conn:
        endpoint_store.update(
            conn,
            account.id,
            before.id,
            description="changed",
            now=platform.clock.now(),
            **{field: value},  # type: ignore[arg-type]
        )
    assert info.value.field == field
    with platform.db.read() as conn:
        assert endpoint_store.primary(conn, account.id) == before


def _claimed(platform: Platform) -> set[str]:
    with platform.db.read() as conn:
        return set(
            conn.execute(
                select(deliveries.c.id).where(deliveries.c.claim_id.is_not(None))
            ).scalars()
        )


def test_call_control_is_claimed_ahead_of_a_full_queue_of_bulk_and_bulk_ages(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    aging = rules.DEFAULT_AGING.total_seconds()
    bulk = [publish_sample(platform, account.id, "sms", seed=n).delivery_id for n in range(40)]
    # A backlog most of the aging deep still comes after a call-control event published now.
    clock.advance(aging - 5)
    live = publish_sample(platform, account.id, "outgoing_call_start").delivery_id
    # The worker has room for 3: the call-control event comes first, then bulk.
    first = {j.delivery_id for j in _claim(platform, limit=3)}
    assert live in first
    assert first - {live} <= set(bulk)
    # Bulk due for longer than the aging ranks ahead of a call-control event due now.
    clock.advance(10)
    later = publish_sample(platform, account.id, "outgoing_call_end", seed=9).delivery_id
    assert {j.delivery_id for j in _claim(platform, limit=3)} <= set(bulk)
    # ... and the call-control event is not starved either: it is claimed after the older bulk.
    # (A claim returns its rows in no particular order; ``limit`` shows who came first.)
    remaining = set(bulk) - _claimed(platform)
    assert len(remaining) == 35
    assert {j.delivery_id for j in _claim(platform, limit=35)} == remaining
    assert [j.delivery_id for j in _claim(platform, limit=100)] == [later]


def test_an_endpoint_left_out_for_lack_of_room_still_gives_its_urgent_jobs(
    tmp_path: Path,
) -> None:
    """The worker leaves a saturated endpoint out of its claim, but asks for its urgent jobs
    (``urgent_for``): the call-control event is claimed at once, its bulk stays queued."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    other = make_account(platform, url="https://other.example/hook")
    bulk = {publish_sample(platform, account.id, "sms", seed=n).delivery_id for n in range(10)}
    clock.advance(1)
    live = publish_sample(platform, account.id, "outgoing_call_start").delivery_id
    elsewhere = publish_sample(platform, other.id, "sms", seed=99).delivery_id
    assert live is not None
    endpoint = _endpoint_of(platform, live)
    claims = Claims(
        platform.db,
        platform.settings,
        clock=clock,
        rng=random.Random(1),
        box=platform.box,
        worker_id="w",
    )
    jobs = claims.claim(100, {endpoint}, urgent_for={endpoint})
    assert {j.delivery_id for j in jobs} == {live, elsewhere}
    assert not _claimed(platform) & bulk
    # Nothing urgent left there: a claim that asks again takes none of its bulk.
    assert claims.claim(100, {endpoint}, urgent_for={endpoint}) == []
    # A paused endpoint gives nothing, urgent or not.
    later = publish_sample(platform, account.id, "outgoing_call_end", seed=5).delivery_id
    with platform.db.write() as conn:
        endpoint_health.pause(
            conn,
            endpoint,
            account.id,
            by="customer",
            now=clock.now(),
            rules=endpoint_health.rules_from(platform.settings),
        )
    assert claims.claim(100, {endpoint}, urgent_for={endpoint}) == []
    assert later not in _claimed(platform)


def _endpoint_of(platform: Platform, delivery_id: str) -> str:
    with platform.db.read() as conn:
        return str(
            conn.execute(
                select(deliveries.c.endpoint_id).where(deliveries.c.id == delivery_id)
            ).scalar_one()
        )
