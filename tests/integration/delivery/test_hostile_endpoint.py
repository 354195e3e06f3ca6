"""Whatever an endpoint sends back, the attempt is recorded — through the real worker, against a
raw-socket HTTPS endpoint that writes exactly the bytes each case scripts (issue 11, classes 2
and 5), and the 24 h retry window holds when a delivery is picked up.

Before the fix, ``503`` with ``Retry-After: ①`` passed ``str.isdigit`` and failed ``float()``:
the worker recorded nothing, the lease ran out and the delivery was re-sent every lease period
as ``X-Webhook-Attempt: 1``, past its window. And the stored response excerpt was whatever the
first read returned (40 of 180 bytes written in two parts).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from callhook.core import retry
from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store.tables import endpoint_secrets, endpoints
from tests.factories import make_account, make_platform, publish_sample
from tests.support.raw_endpoint import DRIP, RawEndpoint, Step
from tests.support.receiver import Tls, wait_for
from tests.support.worker import running_worker

SCHEDULE = "schedule"  # the normal schedule after attempt 1: 5 s ± 20 %


def _delivery(platform: Platform, delivery_id: str) -> delivery_store.Delivery:
    with platform.db.read() as conn:
        return delivery_store.get(conn, delivery_id)


def answer(status: bytes, *headers: bytes, body: bytes = b"") -> list[Step]:
    head = b"HTTP/1.1 " + status + b"\r\n"
    head += b"".join(h + b"\r\n" for h in headers)
    head += b"Content-Length: %d\r\n\r\n" % len(body)
    return [head + body]


def retry_after(value: bytes, status: bytes = b"503 Service Unavailable") -> list[Step]:
    return answer(status, b"Retry-After: " + value)


@dataclass(frozen=True)
class Case:
    name: str
    steps: Sequence[Step]
    status_code: int | None
    error_class: str | None
    #: Seconds from the attempt to the next one, or SCHEDULE.
    wait: float | str


CASES = [
    # Retry-After values: anything that is not plain ASCII delay-seconds or a valid HTTP-date
    # means the normal schedule; huge values and far dates are clamped to an hour.
    Case("Retry-After ①", retry_after("①".encode()), 503, "http_status", SCHEDULE),
    Case(
        "Retry-After ① on 429",
        retry_after("①".encode(), b"429 Too Many"),
        429,
        "http_status",
        SCHEDULE,
    ),
    Case("Retry-After Arabic-Indic 120", retry_after("١٢٠".encode()), 503, "http_status", SCHEDULE),
    Case("Retry-After fullwidth 120", retry_after("１２０".encode()), 503, "http_status", SCHEDULE),
    Case("Retry-After latin-1 bytes", retry_after(b"\xe9t\xe9"), 503, "http_status", SCHEDULE),
    Case("Retry-After invalid UTF-8", retry_after(b"\xff\xfe12"), 503, "http_status", SCHEDULE),
    Case("Retry-After control chars", retry_after(b"5\x01\x7f"), 503, "http_status", SCHEDULE),
    Case("Retry-After negative", retry_after(b"-5"), 503, "http_status", SCHEDULE),
    Case("Retry-After float", retry_after(b"1.5"), 503, "http_status", SCHEDULE),
    Case("Retry-After exponent", retry_after(b"1e400"), 503, "http_status", SCHEDULE),
    Case("Retry-After inf", retry_after(b"inf"), 503, "http_status", SCHEDULE),
    Case("Retry-After nan", retry_after(b"nan"), 503, "http_status", SCHEDULE),
    Case("Retry-After empty", retry_after(b""), 503, "http_status", SCHEDULE),
    Case("Retry-After overflowing", retry_after(b"9" * 60), 503, "http_status", 3600),
    Case("Retry-After 120", retry_after(b"120"), 503, "http_status", 120),
    Case("Retry-After 0", retry_after(b"0"), 503, "http_status", SCHEDULE),
    Case(
        "Retry-After last second of the calendar",
        retry_after(b"Fri, 31 Dec 9999 23:59:59 GMT"),
        503,
        "http_status",
        3600,
    ),
    Case(
        "Retry-After year 1",
        retry_after(b"Mon, 01 Jan 0001 00:00:00 GMT"),
        503,
        "http_status",
        SCHEDULE,
    ),
    Case(
        "Retry-After year 99999",
        retry_after(b"Mon, 01 Jan 99999 00:00:00 GMT"),
        503,
        "http_status",
        SCHEDULE,
    ),
    Case(
        "Retry-After 29 February of a common year",
        retry_after(b"Sat, 29 Feb 2025 00:00:00 GMT"),
        503,
        "http_status",
        SCHEDULE,
    ),
    Case(
        "Retry-After zone offset too big for C",
        retry_after(b"Thu, 15 Jan 2026 10:32:00 +99999999999999999999"),
        503,
        "http_status",
        SCHEDULE,
    ),
    Case(
        "Retry-After in two minutes, other zone",
        retry_after(b"Thu, 15 Jan 2026 11:32:00 +0100"),
        503,
        "http_status",
        120,
    ),
    # Status lines and headers: a malformed answer is a failed attempt, recorded, on the schedule.
    Case("reason phrase in latin-1", answer(b"503 \xe9\xff\xfe"), 503, "http_status", SCHEDULE),
    Case("status 999", answer(b"999 Odd"), 999, "http_status", SCHEDULE),
    Case("status 000", answer(b"000 Zero"), 0, "http_status", SCHEDULE),
    Case("status 99", answer(b"99 Two digits"), None, "connect_error", SCHEDULE),
    Case("status 5030", answer(b"5030 Four digits"), None, "connect_error", SCHEDULE),
    Case("status -1", answer(b"-1 Negative"), None, "connect_error", SCHEDULE),
    Case(
        "status in fullwidth digits", answer("５０３ x".encode()), None, "connect_error", SCHEDULE
    ),
    Case("not HTTP at all", [b"garbage\r\n\r\n"], None, "connect_error", SCHEDULE),
    Case("HTTP/2 status line", [b"HTTP/2 200\r\n\r\n"], None, "connect_error", SCHEDULE),
    Case("closed without a byte", [], None, "connect_error", SCHEDULE),
    Case(
        "100 Continue, then 503",
        [b"HTTP/1.1 100 Continue\r\n\r\n", *retry_after(b"7")],
        503,
        "http_status",
        7,
    ),
    Case(
        "header of 100 KB",
        answer(b"503 x", b"X-Big: " + b"a" * 100_000),
        None,
        "connect_error",
        SCHEDULE,
    ),
    Case(
        "20,000 headers", answer(b"503 x", *[b"X-A: b"] * 20_000), None, "connect_error", SCHEDULE
    ),
    Case(
        "non-ASCII header name",
        answer(b"503 x", "Rétry-After: 5".encode()),
        None,
        "connect_error",
        SCHEDULE,
    ),
    Case(
        "NUL in a header value",
        answer(b"503 x", b"Retry-After: 5\x00"),
        None,
        "connect_error",
        SCHEDULE,
    ),
    Case(
        "negative Content-Length",
        [b"HTTP/1.1 401 x\r\nContent-Length: -1\r\n\r\nabc"],
        None,
        "connect_error",
        SCHEDULE,
    ),
    Case(
        "overflowing Content-Length",
        [b"HTTP/1.1 401 x\r\nContent-Length: " + b"9" * 30 + b"\r\n\r\nabc"],
        None,
        "connect_error",
        SCHEDULE,
    ),
    Case(
        "bad chunk size",
        [b"HTTP/1.1 401 x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"],
        None,
        "connect_error",
        SCHEDULE,
    ),
    # Body bytes: the status stands, whatever the body does.
    Case(
        "body shorter than Content-Length",
        [b"HTTP/1.1 401 x\r\nContent-Length: 100\r\n\r\nabc"],
        401,
        "http_status",
        SCHEDULE,
    ),
    Case(
        "body with NUL and latin-1",
        answer(b"401 x", body=b"\x00\xe9\xff\x00ab"),
        401,
        "http_status",
        SCHEDULE,
    ),
    Case(
        "gzip that is not gzip",
        answer(b"401 x", b"Content-Encoding: gzip", body=b"hello"),
        401,
        "http_status",
        SCHEDULE,
    ),
]


@pytest.fixture
async def endpoint(tls: Tls) -> AsyncIterator[RawEndpoint]:
    ep = await RawEndpoint(tls.server_context()).start()
    try:
        yield ep
    finally:
        await ep.stop()


async def test_hostile_answers_are_recorded_with_the_right_attempt_and_schedule(
    tmp_path: Path, tls: Tls, endpoint: RawEndpoint
) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, seed=1, ca_bundle=tls.ca_path)
    started = clock.now()
    delivery_ids: dict[str, str] = {}
    for i, case in enumerate(CASES):
        url = endpoint.script(f"/case{i}", case.steps)
        account = make_account(platform, url=url, name=f"case {i}")
        published = publish_sample(platform, account.id)
        assert published.delivery_id is not None
        delivery_ids[case.name] = published.delivery_id

    def all_recorded() -> bool:
        return all(_delivery(platform, d).attempts == 1 for d in delivery_ids.values())

    async with running_worker(platform):
        await wait_for(all_recorded, timeout=60)
        await asyncio.sleep(0.2)  # anything sent twice would show now

    wrong: list[str] = []
    for i, case in enumerate(CASES):
        delivery = _delivery(platform, delivery_ids[case.name])
        [attempt] = delivery.attempt_log
        sent = [r for r in endpoint.received if r.path == f"/case{i}"]
        got = (attempt.number, attempt.status_code, attempt.error_class, delivery.status)
        if got != (1, case.status_code, case.error_class, "pending"):
            wrong.append(f"{case.name}: {got} ({attempt.error_message})")
        if [r.headers["x-webhook-attempt"] for r in sent] != ["1"]:
            wrong.append(f"{case.name}: sent {len(sent)} times")
        assert delivery.next_attempt_at is not None, case.name
        wait = (delivery.next_attempt_at - started).total_seconds()
        if case.wait == SCHEDULE:
            if not 4.0 <= wait <= 6.0:
                wrong.append(f"{case.name}: next attempt after {wait} s, not the schedule")
        elif wait != pytest.approx(case.wait):
            wrong.append(f"{case.name}: next attempt after {wait} s, not {case.wait}")
        for text in (attempt.error_message or "", attempt.response_body or ""):
            if "\x00" in text or text.encode("utf-8", "replace").decode() != text:
                wrong.append(f"{case.name}: unstorable text {text!r}")
    assert not wrong, "\n".join(wrong)


async def test_the_second_attempt_after_a_hostile_retry_after_is_number_2(
    tmp_path: Path, tls: Tls, endpoint: RawEndpoint
) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, seed=1, ca_bundle=tls.ca_path)
    account = make_account(platform, url=endpoint.script("/a", retry_after("①".encode())))
    published = publish_sample(platform, account.id)
    assert published.delivery_id is not None
    delivery_id = published.delivery_id
    async with running_worker(platform) as worker:
        await wait_for(lambda: _delivery(platform, delivery_id).attempts == 1)
        clock.advance(7)
        worker.wake()
        await wait_for(lambda: _delivery(platform, delivery_id).attempts == 2)
    numbers = [a.number for a in _delivery(platform, delivery_id).attempt_log]
    assert sorted(numbers) == [1, 2]
    assert [r.headers["x-webhook-attempt"] for r in endpoint.received] == ["1", "2"]


# --- class 5: the stored excerpt ---------------------------------------------------------------
ERROR_180 = b'{"error":"invalid_signature","detail":"' + b"d" * 124 + b'","hint":"check"}'
assert len(ERROR_180) == 180


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


EXCERPT_CASES: list[tuple[str, list[Step], int, bytes]] = [
    (
        "two writes 50 ms apart",
        [
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 180\r\n\r\n" + ERROR_180[:40],
            0.05,
            ERROR_180[40:],
        ],
        401,
        ERROR_180,
    ),
    (
        "chunked in three",
        [
            b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n",
            chunk(ERROR_180[:30]),
            0.05,
            chunk(ERROR_180[30:100]),
            0.05,
            chunk(ERROR_180[100:]) + b"0\r\n\r\n",
        ],
        401,
        ERROR_180,
    ),
    (
        "ended by closing the connection",
        [b"HTTP/1.1 500 Oops\r\n\r\n", ERROR_180[:90], 0.05, ERROR_180[90:]],
        500,
        ERROR_180,
    ),
    (
        "10 KiB in 100-byte writes: the first 4 KiB",
        [
            b"HTTP/1.1 400 Bad\r\nContent-Length: 10240\r\n\r\n",
            *[
                step
                for i in range(0, 10240, 100)
                for step in (bytes([65 + i // 100 % 26]) * 100, 0.002)
            ],
        ],
        400,
        b"".join(bytes([65 + i // 100 % 26]) * 100 for i in range(0, 10240, 100))[:4096],
    ),
    (
        "4 KiB at once, then a body that never ends",
        [b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"y" * 4096, DRIP],
        200,
        b"y" * 4096,
    ),
]


@pytest.mark.parametrize(
    ("steps", "status", "stored"),
    [case[1:] for case in EXCERPT_CASES],
    ids=[case[0] for case in EXCERPT_CASES],
)
async def test_the_excerpt_is_read_to_4_kib_or_the_end_of_the_body(
    tmp_path: Path,
    tls: Tls,
    endpoint: RawEndpoint,
    steps: list[Step],
    status: int,
    stored: bytes,
) -> None:
    platform = make_platform(tmp_path, clock=FakeClock(), ca_bundle=tls.ca_path)
    account = make_account(platform, url=endpoint.script("/x", steps), retry_policy="none")
    published = publish_sample(platform, account.id)
    assert published.delivery_id is not None
    delivery_id = published.delivery_id
    async with running_worker(platform):
        await wait_for(lambda: _delivery(platform, delivery_id).attempts == 1)
    [attempt] = _delivery(platform, delivery_id).attempt_log
    assert attempt.status_code == status
    assert attempt.response_body == stored.decode()
    assert len(endpoint.received) == 1


async def test_a_body_that_drips_forever_ends_at_the_time_limit(
    tmp_path: Path, tls: Tls, endpoint: RawEndpoint
) -> None:
    platform = make_platform(
        tmp_path, clock=FakeClock(), ca_bundle=tls.ca_path, delivery_timeout=0.5
    )
    steps: list[Step] = [b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 100000\r\n\r\n", DRIP]
    account = make_account(platform, url=endpoint.script("/drip", steps), retry_policy="none")
    published = publish_sample(platform, account.id)
    assert published.delivery_id is not None
    delivery_id = published.delivery_id
    async with running_worker(platform):
        await wait_for(lambda: _delivery(platform, delivery_id).status == "failed")
        await wait_for(lambda: endpoint.client_closed == 1)  # the client hung up on it
    [attempt] = _delivery(platform, delivery_id).attempt_log
    # The status stands; the excerpt is what dripped in before the limit (one byte per 50 ms).
    assert (attempt.status_code, attempt.error_class) == (401, "http_status")
    assert attempt.response_body
    assert set(attempt.response_body) == {"x"}
    assert len(attempt.response_body) < 4096
    assert attempt.duration_ms >= 400  # it waited for more, up to the limit (0.5 s)


# --- the retry window, enforced when a delivery is picked up -----------------------------------
async def test_a_delivery_picked_up_after_its_window_fails_without_being_sent(
    tmp_path: Path, tls: Tls, endpoint: RawEndpoint
) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, ca_bundle=tls.ca_path)
    account = make_account(platform, url=endpoint.script("/late", answer(b"503 Busy")))
    first = publish_sample(platform, account.id, seed=1)
    assert first.delivery_id is not None
    first_id = first.delivery_id
    async with running_worker(platform) as worker:
        await wait_for(lambda: _delivery(platform, first_id).attempts == 1)
        # The next attempt falls due, but nothing picks it up until the window is over (a
        # worker outage; or a lease that kept running out).
        clock.advance((retry.WINDOW + retry.LATE_GRACE).total_seconds() + 1)
        worker.wake()
        await wait_for(lambda: _delivery(platform, first_id).status == "failed")
    delivery = _delivery(platform, first_id)
    assert delivery.attempts == 2
    assert delivery.next_attempt_at is None
    second = next(a for a in delivery.attempt_log if a.number == 2)
    assert second.error_class == "window_expired"
    assert second.status_code is None
    assert second.error_message is not None
    assert "24 h retry window ended at 2026-01-16T10:30:00Z" in second.error_message
    assert len(endpoint.received) == 1  # the late attempt was not sent


async def test_a_delivery_picked_up_within_the_grace_is_still_sent(
    tmp_path: Path, tls: Tls, endpoint: RawEndpoint
) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, ca_bundle=tls.ca_path)
    account = make_account(platform, url=endpoint.script("/ok", answer(b"200 OK")))
    published = publish_sample(platform, account.id)
    assert published.delivery_id is not None
    delivery_id = published.delivery_id
    clock.advance((retry.WINDOW + retry.LATE_GRACE).total_seconds())
    await_delivered = lambda: _delivery(platform, delivery_id).status == "delivered"  # noqa: E731
    async with running_worker(platform):
        await wait_for(await_delivered)
    assert len(endpoint.received) == 1


# --- also: no active signing secret ------------------------------------------------------------
async def test_no_active_signing_secret_is_its_own_reason(
    tmp_path: Path, tls: Tls, endpoint: RawEndpoint
) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, ca_bundle=tls.ca_path)
    account = make_account(platform, url=endpoint.script("/s", answer(b"200 OK")))
    with platform.db.write() as conn:  # every secret expired (as after a botched rotation)
        conn.execute(
            update(endpoint_secrets)
            .where(
                endpoint_secrets.c.endpoint_id.in_(
                    select(endpoints.c.id).where(endpoints.c.account_id == account.id)
                )
            )
            .values(expires_at=clock.now() - timedelta(seconds=1))
        )
    published = publish_sample(platform, account.id)
    assert published.delivery_id is not None
    delivery_id = published.delivery_id
    async with running_worker(platform):
        await wait_for(lambda: _delivery(platform, delivery_id).status == "failed")
    delivery = _delivery(platform, delivery_id)
    [attempt] = delivery.attempt_log
    assert attempt.error_class == delivery.last_error_class == "no_signing_secret"
    assert attempt.error_message == "not sent: the integration has no active signing secret"
    assert endpoint.received == []
