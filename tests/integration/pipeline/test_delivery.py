"""Publish → worker → a real local HTTPS receiver, over real sockets and a real SQLite file."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from sqlalchemy import select
from standardwebhooks import Webhook

from callhook.core import stored_headers
from callhook.core.clock import FakeClock
from callhook.events import call_scenario
from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.signing import verify_callhook, verify_standard
from callhook.store import deliveries as delivery_store
from callhook.store.tables import deliveries
from tests.factories import make_account, make_platform, publish_sample
from tests.support.receiver import Receiver, Tls, free_port, wait_for
from tests.support.worker import running_worker, work_until


def _status(platform: Platform, delivery_id: str) -> delivery_store.Delivery:
    with platform.db.read() as conn:
        return delivery_store.get(conn, delivery_id)


async def test_event_reaches_https_receiver_signed_in_both_schemes(
    tmp_path: Path, tls: Tls
) -> None:
    receiver = await Receiver(tls.server_context()).start()
    try:
        platform = make_platform(tmp_path, ca_bundle=tls.ca_path)
        account = make_account(platform, url=receiver.url)
        published = publish_sample(platform, account.id, "incoming_call_start")
        assert published.delivery_id is not None
        await work_until(platform, lambda: len(receiver.received) == 1)
    finally:
        await receiver.stop()

    got = receiver.received[0]
    body = orjson.loads(got.body)
    assert body["id"] == published.id
    assert body["event"] == "incoming_call_start"
    assert body["account_id"] == account.id
    assert body["sequence"] == 1
    assert body["created_at"].endswith("Z")
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"].startswith("Callhook/")
    assert got.headers["X-Webhook-Event"] == "incoming_call_start"
    assert got.headers["X-Webhook-Attempt"] == "1"
    assert got.headers["webhook-id"] == published.id
    assert got.headers["X-Webhook-Signature"].startswith("sha256=")
    verify_callhook(got.headers, got.body, [account.secret], now=time.time())
    verify_standard(got.headers, got.body, [account.secret], now=time.time())
    # The reference implementation accepts our delivery unchanged.
    lowered = {k.lower(): v for k, v in got.headers.items()}
    assert Webhook(account.secret).verify(got.body, lowered) == body

    await asyncio.sleep(0.1)  # let the group commit land
    delivery = _status(platform, published.delivery_id)
    assert delivery.status == "delivered"
    assert delivery.attempts == 1
    [attempt] = delivery.attempt_log
    assert attempt.status_code == 200
    assert attempt.error_class is None
    assert attempt.response_body == '{"received": true}'
    # What the delivery detail shows is exactly what went over the wire, though only the
    # timestamp and signatures are stored (``core.stored_headers``).
    shown = orjson.loads(attempt.request_headers or "null")
    # (a call's event also carries its sequence: issue 14)
    assert list(shown) == [*stored_headers.NAMES, stored_headers.SEQUENCE]
    assert shown == {name: got.headers[name] for name in shown}
    assert delivery.body == got.body
    with platform.db.read() as conn:
        raw = conn.execute(select(deliveries.c.attempt_request_headers)).scalar_one()
    assert raw[0] == stored_headers.PACKED_V2


async def test_events_of_one_call_carry_increasing_sequence(tmp_path: Path, tls: Tls) -> None:
    receiver = await Receiver(tls.server_context()).start()
    try:
        platform = make_platform(tmp_path, ca_bundle=tls.ca_path)
        account = make_account(platform, url=receiver.url)
        call = call_scenario("answered", random.Random(7), start=platform.clock.now())
        for item in call:
            platform.publisher.publish(
                [PublishRequest(item.event, item.pbx_id, account.id, item.data)]
            )
        await work_until(platform, lambda: len(receiver.received) == len(call))
    finally:
        await receiver.stop()
    bodies = sorted((orjson.loads(r.body) for r in receiver.received), key=lambda b: b["sequence"])
    assert [b["sequence"] for b in bodies] == list(range(1, len(call) + 1))
    assert [b["event"] for b in bodies] == [item.event for item in call]
    assert len({b["call_id"] for b in bodies}) == 1


async def _status_500(_r: web.Request) -> web.StreamResponse:
    return web.Response(status=500, text="boom")


async def _slow(_r: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3)
    return web.Response(status=200)


async def _drop(r: web.Request) -> web.StreamResponse:
    assert r.transport is not None
    r.transport.abort()
    return web.Response(status=200)


async def _redirect(_r: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": "https://localhost/elsewhere"})


@pytest.mark.parametrize(
    ("case", "behaviour", "cert", "error_class", "status_code"),
    [
        ("500", _status_500, "good", "http_status", 500),
        ("slower than 2 s", _slow, "good", "timeout", None),
        ("dropped connection", _drop, "good", "connect_error", None),
        ("untrusted certificate", None, "untrusted", "tls_error", None),
        ("expired certificate", None, "expired", "tls_error", None),
        ("302", _redirect, "good", "redirect", 302),
    ],
)
async def test_each_failure_class_against_a_misbehaving_receiver(
    tmp_path: Path,
    tls: Tls,
    case: str,
    behaviour: object,
    cert: str,
    error_class: str,
    status_code: int | None,
) -> None:
    ctx = tls.server_context(expired=cert == "expired", untrusted=cert == "untrusted")
    receiver = Receiver(ctx) if behaviour is None else Receiver(ctx, behaviour=behaviour)  # type: ignore[arg-type]
    await receiver.start()
    try:
        platform = make_platform(tmp_path, ca_bundle=tls.ca_path)
        account = make_account(platform, url=receiver.url, retry_policy="none")
        published = publish_sample(platform, account.id)
        assert published.delivery_id is not None
        delivery_id = published.delivery_id
        await work_until(platform, lambda: _status(platform, delivery_id).status == "failed")
    finally:
        await receiver.stop()
    delivery = _status(platform, delivery_id)
    [attempt] = delivery.attempt_log
    assert attempt.error_class == error_class, (case, attempt.error_message)
    assert attempt.status_code == status_code
    assert delivery.last_error_class == error_class
    if case == "302":
        assert len(receiver.received) == 1  # the redirect was not followed
    if case == "slower than 2 s":
        assert attempt.duration_ms < 2900  # gave up at the 2 s limit, not when the server answered


async def test_refused_port_is_a_connect_error(tmp_path: Path, tls: Tls) -> None:
    platform = make_platform(tmp_path, ca_bundle=tls.ca_path)
    account = make_account(
        platform, url=f"https://localhost:{free_port()}/hook", retry_policy="none"
    )
    published = publish_sample(platform, account.id)
    assert published.delivery_id is not None
    delivery_id = published.delivery_id
    await work_until(platform, lambda: _status(platform, delivery_id).status == "failed")
    [attempt] = _status(platform, delivery_id).attempt_log
    assert attempt.error_class == "connect_error"


async def test_loopback_target_refused_at_send_time_without_the_development_setting(
    tmp_path: Path, tls: Tls
) -> None:
    platform = make_platform(tmp_path, ca_bundle=tls.ca_path, allow_unsafe_targets=False)
    account = make_account(platform, url="https://localhost:9/hook", retry_policy="none")
    published = publish_sample(platform, account.id)
    assert published.delivery_id is not None
    delivery_id = published.delivery_id
    await work_until(platform, lambda: _status(platform, delivery_id).status == "failed")
    [attempt] = _status(platform, delivery_id).attempt_log
    assert attempt.error_class == "unsafe_target"


async def test_retry_follows_the_schedule_on_an_injected_clock(tmp_path: Path, tls: Tls) -> None:
    answers = iter([500, 503, 200])

    async def flaky(_r: web.Request) -> web.StreamResponse:
        return web.Response(status=next(answers))

    receiver = await Receiver(tls.server_context(), behaviour=flaky).start()
    clock = FakeClock()
    try:
        platform = make_platform(tmp_path, clock=clock, seed=1, ca_bundle=tls.ca_path)
        account = make_account(platform, url=receiver.url)
        published = publish_sample(platform, account.id)
        assert published.delivery_id is not None
        delivery_id = published.delivery_id
        start = clock.now()
        async with running_worker(platform) as worker:
            await wait_for(lambda: _status(platform, delivery_id).attempts == 1)
            first = _status(platform, delivery_id)
            assert first.status == "pending"
            assert first.next_attempt_at is not None
            wait = (first.next_attempt_at - start).total_seconds()
            assert 4.0 <= wait <= 6.0  # 5 s ± 20 %
            await asyncio.sleep(0.3)
            assert len(receiver.received) == 1  # not due yet on the injected clock
            clock.advance(6)
            worker.wake()
            await wait_for(lambda: _status(platform, delivery_id).attempts == 2)
            second = _status(platform, delivery_id)
            assert second.next_attempt_at is not None
            wait = (second.next_attempt_at - clock.now()).total_seconds()
            assert 24.0 <= wait <= 36.0  # 30 s ± 20 %
            clock.advance(40)
            worker.wake()
            await wait_for(lambda: _status(platform, delivery_id).status == "delivered")
    finally:
        await receiver.stop()
    ids = {r.headers["webhook-id"] for r in receiver.received}
    bodies = {r.body for r in receiver.received}
    assert ids == {published.id}  # same id on every attempt
    assert len(bodies) == 1  # and the same bytes
    assert [r.headers["X-Webhook-Attempt"] for r in receiver.received] == ["1", "2", "3"]


async def test_retry_after_is_honoured(tmp_path: Path, tls: Tls) -> None:
    async def busy(_r: web.Request) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": "120"})

    receiver = await Receiver(tls.server_context(), behaviour=busy).start()
    clock = FakeClock()
    try:
        platform = make_platform(tmp_path, clock=clock, seed=1, ca_bundle=tls.ca_path)
        account = make_account(platform, url=receiver.url)
        published = publish_sample(platform, account.id)
        assert published.delivery_id is not None
        delivery_id = published.delivery_id
        await work_until(platform, lambda: _status(platform, delivery_id).attempts == 1)
    finally:
        await receiver.stop()
    delivery = _status(platform, delivery_id)
    assert delivery.next_attempt_at is not None
    assert (delivery.next_attempt_at - clock.now()).total_seconds() == pytest.approx(120)


async def test_none_policy_makes_exactly_one_attempt(tmp_path: Path, tls: Tls) -> None:
    receiver = await Receiver(tls.server_context(), behaviour=_status_500).start()
    clock = FakeClock()
    try:
        platform = make_platform(tmp_path, clock=clock, ca_bundle=tls.ca_path)
        account = make_account(platform, url=receiver.url, retry_policy="none")
        published = publish_sample(platform, account.id)
        assert published.delivery_id is not None
        delivery_id = published.delivery_id
        async with running_worker(platform) as worker:
            await wait_for(lambda: _status(platform, delivery_id).status == "failed")
            clock.advance(3600)
            worker.wake()
            await asyncio.sleep(0.3)
    finally:
        await receiver.stop()
    assert len(receiver.received) == 1
    assert _status(platform, delivery_id).attempts == 1
