"""Endpoint health in the store, on an injected clock: failing → warnings → disabled with each
alert recorded once; recovery replaying what failed during the outage, in order; pause/resume;
the claim gate shared through the database."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from callhook.core import health as machine
from callhook.core.clock import FakeClock
from callhook.core.health import AttemptVerdict, EndpointState
from callhook.core.throttle import Caps
from callhook.delivery.claims import Claims
from callhook.events import call_scenario
from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.store import claim_plan, endpoint_status
from callhook.store import endpoint_health as eh
from callhook.store import endpoints as endpoint_store
from callhook.store import ordering as line_store
from callhook.store.tables import alerts, deliveries
from tests.factories import make_account, make_platform, publish_sample

RULES = eh.Rules()


def _setup(tmp_path: Path) -> tuple[Platform, FakeClock, str, str]:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://hooks.example.com/in")
    with platform.db.read() as conn:
        primary = endpoint_store.primary(conn, account.id)
    assert primary is not None
    return platform, clock, account.id, primary.id


def _fail(platform: Platform, account_id: str, endpoint_id: str, n: int) -> None:
    now = platform.clock.now()
    verdicts = [eh.Verdict(endpoint_id, account_id, AttemptVerdict.FAILURE, now)] * n
    with platform.db.write() as conn:
        eh.record(conn, verdicts, now=now, rules=RULES)


def _alert_kinds(platform: Platform) -> list[str]:
    with platform.db.read() as conn:
        rows = conn.execute(
            select(alerts.c.kind).where(alerts.c.channel == "webhook").order_by(alerts.c.created_at)
        )
        return [r[0] for r in rows]


def test_failing_then_warnings_then_disabled_each_alert_once(tmp_path: Path) -> None:
    platform, clock, account_id, endpoint_id = _setup(tmp_path)
    _fail(platform, account_id, endpoint_id, 5)
    with platform.db.read() as conn:
        state = eh.get(conn, endpoint_id, account_id)
    assert state.health.state is EndpointState.FAILING
    # An hourly check for six days, and every check done twice (two workers).
    for _ in range(6 * 24):
        clock.advance(3600)
        for _worker in range(2):
            with platform.db.write() as conn:
                eh.check_due(conn, now=clock.now(), rules=RULES)
    assert _alert_kinds(platform) == [
        "endpoint.failing",
        "endpoint.disable_warning",
        "endpoint.disable_warning",
        "endpoint.disabled",
    ]
    with platform.db.read() as conn:
        endpoint = endpoint_store.get(conn, account_id, endpoint_id)
        log = endpoint_status.event_log(conn, endpoint_id)
    assert endpoint.state is EndpointState.DISABLED
    assert not endpoint.enabled
    assert [(e.after, e.cause) for e in reversed(log)] == [
        ("failing", "consecutive_failures"),
        ("failing", "disable_warning"),
        ("failing", "disable_warning"),
        ("disabled", "failing_too_long"),
    ]


def test_disabling_fails_a_calls_waiting_events_too_and_frees_its_line(tmp_path: Path) -> None:
    platform, clock, account_id, endpoint_id = _setup(tmp_path)
    call = call_scenario("answered", random.Random(2), start=clock.now())
    ids = [
        platform.publisher.publish(
            [PublishRequest(item.event, item.pbx_id, account_id, item.data)]
        )[0].delivery_id
        for item in call
    ]
    with platform.db.read() as conn:
        assert line_store.line_counts(conn) == {"holding": 1, "waiting": len(ids) - 1}
    _fail(platform, account_id, endpoint_id, 5)
    for _ in range(6 * 24):
        clock.advance(3600)
        with platform.db.write() as conn:
            eh.check_due(conn, now=clock.now(), rules=RULES)
    with platform.db.read() as conn:
        rows = conn.execute(
            select(deliveries.c.status, deliveries.c.last_error_class).where(
                deliveries.c.id.in_(ids)
            )
        ).all()
        assert line_store.line_counts(conn) == {"holding": 0, "waiting": 0}
    assert {tuple(r) for r in rows} == {("failed", "integration_disabled")}


def test_recovery_replays_what_failed_during_the_outage_in_order(tmp_path: Path) -> None:
    platform, clock, account_id, endpoint_id = _setup(tmp_path)
    before = publish_sample(platform, account_id, seed=0).delivery_id
    clock.advance(60)
    _fail(platform, account_id, endpoint_id, 5)
    ids = []
    for seed in range(1, 6):
        clock.advance(10)
        ids.append(publish_sample(platform, account_id, seed=seed).delivery_id)
    clock.advance(10)
    with platform.db.write() as conn:
        # The earliest failed before the outage; the others failed for good during it.
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == before)
            .values(status="failed", last_attempt_at=clock.now() - timedelta(hours=1))
        )
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids))
            .values(
                status="failed",
                attempts=3,
                last_attempt_at=clock.now(),
                next_attempt_at=None,
                claim_key=None,  # as a completion leaves a delivery that failed for good
            )
        )
    clock.advance(30)
    now = clock.now()
    with platform.db.write() as conn:
        done = eh.record(
            conn,
            [eh.Verdict(endpoint_id, account_id, AttemptVerdict.SUCCESS, now)],
            now=now,
            rules=RULES,
        )
    assert [t.after for _, t in done] == [EndpointState.ACTIVE]
    # Each call's replayed events wait until the line sweep gives the line to the lowest.
    with platform.db.write() as conn:
        assert line_store.sweep(conn, now=now, policies=line_store.policies(conn)).promoted == 5
    with platform.db.read() as conn:
        rows = conn.execute(
            select(deliveries.c.id, deliveries.c.status)
            .where(deliveries.c.status == "pending")
            .order_by(deliveries.c.next_attempt_at)
        ).all()
    assert [r.id for r in rows] == ids
    # The claim orders by claim key: due now, in the same order (not NULL, which sorts first on
    # SQLite and last on PostgreSQL).
    with platform.db.read() as conn:
        keyed = conn.execute(
            select(deliveries.c.id)
            .where(deliveries.c.status == "pending", deliveries.c.claim_key.is_not(None))
            .order_by(deliveries.c.claim_key)
        ).all()
    assert [r.id for r in keyed] == ids
    assert "endpoint.recovered" in _alert_kinds(platform)


def test_pause_holds_everything_but_test_events_and_resume_releases(tmp_path: Path) -> None:
    platform, clock, account_id, endpoint_id = _setup(tmp_path)
    with platform.db.write() as conn:
        eh.change(
            conn,
            endpoint_id,
            account_id,
            lambda h: machine.pause(h, clock.now(), by="customer"),
            now=clock.now(),
            rules=RULES,
        )
        plan = claim_plan.plan_claim(conn, now=clock.now(), want=100, rules=RULES)
    assert endpoint_id in plan.excluded
    clock.advance(3600 * 30)  # longer than a retry window
    with platform.db.write() as conn:
        eh.change(
            conn,
            endpoint_id,
            account_id,
            lambda h: machine.resume(h, clock.now(), by="customer"),
            now=clock.now(),
            rules=RULES,
        )
        plan = claim_plan.plan_claim(conn, now=clock.now(), want=100, rules=RULES)
        endpoint = endpoint_store.get(conn, account_id, endpoint_id)
    assert endpoint_id not in plan.excluded
    assert endpoint.state is EndpointState.ACTIVE


def test_a_token_bucket_shared_by_every_claim(tmp_path: Path) -> None:
    platform, clock, account_id, endpoint_id = _setup(tmp_path)
    caps = Caps()
    with platform.db.write() as conn:
        eh.set_limits(conn, endpoint_id, account_id, rate_limit=10, max_in_flight=None, caps=caps)
    for seed in range(20):  # work waiting: a claim takes from the bucket only then
        publish_sample(platform, account_id, seed=seed)
    granted = []
    for _ in range(3):
        with platform.db.write() as conn:
            plan = claim_plan.plan_claim(conn, now=clock.now(), want=100, rules=RULES)
            allowed = plan.limited.get(endpoint_id, 0)
            claim_plan.settle_claim(conn, plan, {endpoint_id: allowed}, rules=RULES)
        granted.append(allowed)
        clock.advance(0.2)
    assert granted == [5, 2, 2]


def test_throttled_and_failing_endpoints_with_nothing_due_cost_no_claim_of_their_own(
    tmp_path: Path,
) -> None:
    platform, clock, account_id, endpoint_id = _setup(tmp_path)
    with platform.db.write() as conn:
        eh.set_limits(conn, endpoint_id, account_id, rate_limit=10, max_in_flight=2, caps=Caps())
    with platform.db.write() as conn:
        plan = claim_plan.plan_claim(conn, now=clock.now(), want=100, rules=RULES)
        claim_plan.settle_claim(conn, plan, {}, rules=RULES)
    # Held from the general claim, but no claim of its own and its bucket untouched.
    assert endpoint_id in plan.excluded
    assert plan.limited == {}
    with platform.db.read() as conn:
        assert eh.get(conn, endpoint_id, account_id).bucket is None
    # A failing endpoint whose probe is due but which has nothing waiting keeps its probe.
    _fail(platform, account_id, endpoint_id, RULES.policy.failure_threshold)
    with platform.db.read() as conn:
        probe_at = eh.get(conn, endpoint_id, account_id).health.next_probe_at
    assert probe_at is not None
    clock.set(probe_at + timedelta(seconds=1))
    with platform.db.write() as conn:
        plan = claim_plan.plan_claim(conn, now=clock.now(), want=100, rules=RULES)
    with platform.db.read() as conn:
        assert eh.get(conn, endpoint_id, account_id).health.next_probe_at == probe_at
    assert (endpoint_id in plan.excluded, plan.limited) == (True, {})
    # Once something waits, the probe is taken: one delivery, the next probe moved on.
    publish_sample(platform, account_id)
    with platform.db.write() as conn:
        plan = claim_plan.plan_claim(conn, now=clock.now(), want=100, rules=RULES)
        claim_plan.settle_claim(conn, plan, {endpoint_id: 1}, rules=RULES)
    assert plan.limited == {endpoint_id: 1}
    with platform.db.read() as conn:
        moved = eh.get(conn, endpoint_id, account_id).health.next_probe_at
    assert moved is not None
    assert moved > clock.now()


def test_a_claim_that_does_not_take_a_due_probe_leaves_it_due(tmp_path: Path) -> None:
    """The worker leaves out an endpoint it has no room for (its probe still under way, say),
    or fills its claim before it: the probe that claim did not take is not spent (spending it
    pushed the next one a whole cooldown away), and nothing is announced for it (its due probe
    would make the worker look again every instant). The claim with room takes it."""
    platform, clock, account_id, endpoint_id = _setup(tmp_path)
    _fail(platform, account_id, endpoint_id, RULES.policy.failure_threshold)
    publish_sample(platform, account_id)
    with platform.db.read() as conn:
        probe_at = eh.get(conn, endpoint_id, account_id).health.next_probe_at
    assert probe_at is not None
    clock.set(probe_at + timedelta(seconds=1))
    claims = Claims(
        platform.db,
        platform.settings,
        clock=clock,
        rng=platform.rng,
        box=platform.box,
        worker_id="w1",
    )
    assert claims.claim(10, {endpoint_id}) == []
    assert claims.next_change is None
    with platform.db.read() as conn:
        assert eh.get(conn, endpoint_id, account_id).health.next_probe_at == probe_at
    taken = claims.claim(10, set())
    assert [job.endpoint_id for job in taken] == [endpoint_id]
    with platform.db.read() as conn:
        moved = eh.get(conn, endpoint_id, account_id).health.next_probe_at
    assert moved is not None
    assert moved > clock.now()
