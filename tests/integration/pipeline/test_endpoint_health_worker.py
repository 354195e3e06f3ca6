"""Endpoint health end to end: a real worker delivering over real sockets to a real local HTTPS
receiver (trustme), on an injected clock — pause and resume of 1,000 events in order, a 429 with
Retry-After holding the whole endpoint, and failing → recovery replaying the outage in order."""

from __future__ import annotations

from pathlib import Path

import orjson
from aiohttp import web
from sqlalchemy import func, select

from callhook.alerts.model import AlertKind
from callhook.core.clock import FakeClock
from callhook.core.health import EndpointState
from callhook.core.throttle import Caps
from callhook.platform import Platform
from callhook.publish import send_test_event
from callhook.store import endpoint_health, endpoint_status
from callhook.store import endpoints as endpoint_store
from callhook.store.tables import alerts, deliveries
from tests.factories import make_account, make_platform, publish_sample
from tests.support.receiver import Receiver, Tls, wait_for
from tests.support.worker import running_worker


def _primary(platform: Platform, account_id: str) -> str:
    with platform.db.read() as conn:
        endpoint = endpoint_store.primary(conn, account_id)
    assert endpoint is not None
    return endpoint.id


def _one_at_a_time(platform: Platform, account_id: str, endpoint_id: str) -> None:
    """max_in_flight 1: attempts go strictly one after another, so arrival order is send
    order (the worker otherwise sends a claim's deliveries concurrently)."""
    with platform.db.write() as conn:
        endpoint_health.set_limits(
            conn, endpoint_id, account_id, rate_limit=None, max_in_flight=1, caps=Caps()
        )


def _statuses(platform: Platform, endpoint_id: str) -> dict[str, int]:
    with platform.db.read() as conn:
        rows = conn.execute(
            select(deliveries.c.status, func.count())
            .where(deliveries.c.endpoint_id == endpoint_id)
            .group_by(deliveries.c.status)
        )
        return {status: int(n) for status, n in rows}


def _ids(receiver: Receiver) -> list[str]:
    return [str(orjson.loads(r.body)["id"]) for r in receiver.received]


def _health(
    platform: Platform, endpoint_id: str, account_id: str
) -> endpoint_health.EndpointHealth:
    with platform.db.read() as conn:
        return endpoint_health.get(conn, endpoint_id, account_id)


async def test_pause_buffers_1000_events_and_resume_delivers_them_all_in_order(
    tmp_path: Path, tls: Tls
) -> None:
    receiver = await Receiver(tls.server_context()).start()
    clock = FakeClock()
    try:
        platform = make_platform(tmp_path, clock=clock, seed=3, ca_bundle=tls.ca_path)
        account = make_account(platform, url=receiver.url)
        endpoint_id = _primary(platform, account.id)
        _one_at_a_time(platform, account.id, endpoint_id)
        rules = endpoint_health.rules_from(platform.settings)
        with platform.db.write() as conn:
            endpoint_health.pause(
                conn, endpoint_id, account.id, by="customer", now=clock.now(), rules=rules
            )
        async with running_worker(platform) as worker:
            published = []
            for seed in range(1000):
                clock.advance(0.001)  # distinct creation times: a defined order
                p = publish_sample(platform, account.id, "incoming_call_start", seed=seed)
                published.append(p.id)
            # A test event still goes out while paused; once it has arrived, the worker has
            # claimed past the paused events — and none of them went out.
            send_test_event(
                platform.publisher, account_id=account.id, now=clock.now(), endpoint_id=endpoint_id
            )
            await wait_for(lambda: len(receiver.received) >= 1)
            assert [orjson.loads(r.body)["event"] for r in receiver.received] == ["test"]
            await wait_for(
                lambda: _statuses(platform, endpoint_id) == {"pending": 1000, "delivered": 1}
            )

            clock.advance(3600)  # a long maintenance: the events wait, nothing expires
            with platform.db.write() as conn:
                endpoint_health.resume(
                    conn, endpoint_id, account.id, by="customer", now=clock.now(), rules=rules
                )
            worker.wake()
            await wait_for(lambda: len(receiver.received) == 1001, timeout=300)
            await wait_for(lambda: _statuses(platform, endpoint_id) == {"delivered": 1001})
    finally:
        await receiver.stop()
    assert _ids(receiver)[1:] == published


async def test_a_429_with_retry_after_holds_the_whole_endpoint(tmp_path: Path, tls: Tls) -> None:
    calls = 0

    async def limited(_request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.json_response({"slow": "down"}, status=429, headers={"Retry-After": "120"})
        return web.json_response({"received": True})

    receiver = await Receiver(tls.server_context(), behaviour=limited).start()
    clock = FakeClock()
    try:
        platform = make_platform(tmp_path, clock=clock, seed=4, ca_bundle=tls.ca_path)
        account = make_account(platform, url=receiver.url)
        endpoint_id = _primary(platform, account.id)
        _one_at_a_time(platform, account.id, endpoint_id)
        published = []
        for seed in range(3):
            clock.advance(0.001)
            published.append(publish_sample(platform, account.id, seed=seed).id)
        async with running_worker(platform) as worker:
            await wait_for(
                lambda: _health(platform, endpoint_id, account.id).slowed_until is not None
            )
            held = _health(platform, endpoint_id, account.id)
            assert held.slowed_until is not None
            assert 119 <= (held.slowed_until - clock.now()).total_seconds() <= 120
            # The other two deliveries are due, yet the endpoint is held: a test event (sent
            # whatever the state) arrives, and they do not.
            send_test_event(
                platform.publisher, account_id=account.id, now=clock.now(), endpoint_id=endpoint_id
            )
            await wait_for(lambda: len(receiver.received) == 2)
            assert [orjson.loads(r.body)["event"] for r in receiver.received][1] == "test"
            with platform.db.read() as conn:
                shown = endpoint_status.statuses(
                    conn,
                    [endpoint_id],
                    now=clock.now(),
                    rules=endpoint_health.rules_from(platform.settings),
                )[endpoint_id]
            assert shown.slowed_until == held.slowed_until
            await wait_for(
                lambda: _statuses(platform, endpoint_id) == {"pending": 3, "delivered": 1}
            )

            clock.advance(121)  # the Retry-After has passed: everything goes out
            worker.wake()
            await wait_for(lambda: _statuses(platform, endpoint_id) == {"delivered": 4})
    finally:
        await receiver.stop()
    events = _ids(receiver)
    assert events[0] == published[0]  # refused with 429
    assert sorted(events[2:]) == sorted(published)  # all three after the hold


async def test_failing_then_recovering_replays_the_outage_in_order(
    tmp_path: Path, tls: Tls
) -> None:
    up = False

    async def flaky(_request: web.Request) -> web.StreamResponse:
        if up:
            return web.json_response({"received": True})
        return web.json_response({"error": "down"}, status=500)

    receiver = await Receiver(tls.server_context(), behaviour=flaky).start()
    clock = FakeClock()
    try:
        platform = make_platform(
            tmp_path,
            clock=clock,
            seed=5,
            ca_bundle=tls.ca_path,
            endpoint_failure_threshold=5,
            endpoint_probe_cooldown=30.0,
        )
        # One attempt each: the outage's deliveries fail for good, and recovery replays them.
        account = make_account(platform, url=receiver.url, retry_policy="none")
        endpoint_id = _primary(platform, account.id)
        _one_at_a_time(platform, account.id, endpoint_id)
        lost = []
        for seed in range(5):
            clock.advance(0.001)
            lost.append(publish_sample(platform, account.id, seed=seed).id)
        async with running_worker(platform) as worker:
            await wait_for(lambda: _statuses(platform, endpoint_id) == {"failed": 5})
            await wait_for(
                lambda: (
                    _health(platform, endpoint_id, account.id).health.state is EndpointState.FAILING
                )
            )
            failing = _health(platform, endpoint_id, account.id).health
            assert failing.next_probe_at is not None
            # While failing, a new event waits for the probe.
            clock.advance(1)
            waiting = publish_sample(platform, account.id, seed=99).id

            up = True
            clock.set(failing.next_probe_at)  # the probe is due: the new event is the probe
            worker.wake()
            await wait_for(lambda: _statuses(platform, endpoint_id) == {"delivered": 6})
    finally:
        await receiver.stop()
    assert _ids(receiver) == [*lost, waiting, *lost]  # the probe, then the outage in order
    assert _health(platform, endpoint_id, account.id).health.state is EndpointState.ACTIVE
    with platform.db.read() as conn:
        log = [(e.before, e.after, e.cause) for e in endpoint_status.event_log(conn, endpoint_id)]
        kinds = set(conn.execute(select(alerts.c.kind).where(alerts.c.endpoint_id == endpoint_id)))
    assert log[:2] == [
        ("failing", "active", "probe_succeeded"),
        ("active", "failing", "consecutive_failures"),
    ]
    assert {k for (k,) in kinds} >= {AlertKind.ENDPOINT_FAILING, AlertKind.ENDPOINT_RECOVERED}
