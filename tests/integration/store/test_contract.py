"""The store's contract, the same on SQLite and PostgreSQL (issue 13, item 8).

What the rest of Callhook relies on from ``callhook.store``: typed rows in and out, aware UTC
times, one delivery per event and endpoint, claims fenced by claim id, errors from the one tree,
secrets never stored in plain text, and every queueing change waking the workers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta

import pytest
from sqlalchemy import select

from callhook import queueing
from callhook.core.clock import FakeClock
from callhook.core.ids import new_id
from callhook.core.outcome import DeliveryStatus, SkipReason
from callhook.errors import ConcurrentPublish, NotFound
from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store import events as event_store
from callhook.store import queue
from callhook.store.events import NewDelivery, NewEvent
from callhook.store.queue import AttemptResult
from callhook.store.tables import deliveries, endpoint_secrets
from tests.factories import make_account, make_endpoint

LEASE = timedelta(seconds=30)


@pytest.fixture
def platform(platform_factory: Callable[..., Platform]) -> Platform:
    return platform_factory(clock=FakeClock())


def _event(account_id: str, n: int, key: str | None = None) -> NewEvent:
    return NewEvent(f"evt_{n}", account_id, "sms", f"p{n}", None, None, key, b"{}", None)


def test_a_batch_reads_back_typed_with_aware_utc_times(platform: Platform) -> None:
    account = make_account(platform, url="https://a.example.com/")
    extra = make_endpoint(platform, account.id, "https://b.example.com/")
    skipped = NewEvent(
        "evt_s", account.id, "sms", "ps", None, None, None, b"{}", SkipReason.NOT_SUBSCRIBED
    )
    now = platform.clock.now()
    with platform.db.write() as conn:
        event_store.write_batch(
            conn,
            [_event(account.id, 1), skipped],
            [NewDelivery("dlv_1", "evt_1", account.id, extra, "sms")],
            now=now,
        )
    with platform.db.read() as conn:
        delivery = delivery_store.get(conn, "dlv_1")
        stored = event_store.get(conn, "evt_s")
        listed = delivery_store.list_deliveries(conn, account_id=account.id, endpoint_id=extra)
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.endpoint_id == extra
    assert delivery.created_at == now
    assert delivery.created_at.tzinfo == UTC
    assert delivery.next_attempt_at == now
    assert stored is not None
    assert stored.skip_reason == SkipReason.NOT_SUBSCRIBED
    assert [d.id for d in listed] == ["dlv_1"]


def test_one_delivery_per_event_and_endpoint(platform: Platform) -> None:
    account = make_account(platform, url="https://a.example.com/")
    with platform.db.read() as conn:
        primary = endpoint_store.primary(conn, account.id)
    assert primary is not None
    twice = [NewDelivery(f"dlv_{n}", "evt_1", account.id, primary.id, "sms") for n in (1, 2)]
    with pytest.raises(Exception) as caught, platform.db.write() as conn:
        event_store.write_batch(conn, [_event(account.id, 1)], twice, now=platform.clock.now())
    assert "unique" in str(caught.value).lower()
    with platform.db.read() as conn:
        assert event_store.get(conn, "evt_1") is None  # nothing half-written


def test_a_repeated_idempotency_key_is_the_stores_error_not_the_drivers(
    platform: Platform,
) -> None:
    account = make_account(platform)
    with platform.db.write() as conn:
        event_store.write_batch(conn, [_event(account.id, 1, "k")], [], now=platform.clock.now())
    with pytest.raises(ConcurrentPublish), platform.db.write() as conn:
        event_store.write_batch(conn, [_event(account.id, 2, "k")], [], now=platform.clock.now())


def test_claims_are_fenced_by_claim_id(platform: Platform) -> None:
    account = make_account(platform, url="https://a.example.com/")
    [published] = platform.publisher.publish(
        [
            PublishRequest(
                "sms",
                "p1",
                account.id,
                {"from": "+15550100", "to": "+15550101", "text": "x", "direction": "in"},
            )
        ]
    )

    def claim() -> list[queue.ClaimedJob]:
        now = platform.clock.now()
        with platform.db.write() as conn:
            return queue.claim(
                conn,
                worker_id="w",
                claim_id=new_id("clm", now, platform.rng),
                now=now,
                lease=LEASE,
                limit=10,
                box=platform.box,
            )

    [first] = claim()
    assert first.delivery_id == published.delivery_id
    assert first.secrets == (account.secret,)
    assert claim() == []  # leased
    platform.clock.advance(LEASE.total_seconds() + 1)  # type: ignore[attr-defined]
    [second] = claim()  # the lease ran out: someone else's now

    def done(job: queue.ClaimedJob) -> AttemptResult:
        return AttemptResult(
            job, platform.clock.now(), 1.0, True, 200, None, None, None, None, None
        )

    with platform.db.write() as conn:
        assert queue.complete(conn, [done(first)]) == [done(first)]  # stale: refused
        assert queue.complete(conn, [done(second)]) == []
    with platform.db.read() as conn:
        assert delivery_store.get(conn, second.delivery_id).status == DeliveryStatus.DELIVERED


def test_queueing_changes_write_and_wake(platform: Platform) -> None:
    account = make_account(platform, url="https://a.example.com/")
    woken: list[int] = []
    platform.publisher.on_publish(lambda: woken.append(1))
    with platform.db.write() as conn:
        event_store.write_batch(
            conn,
            [_event(account.id, 1)],
            [
                NewDelivery(
                    "dlv_1",
                    "evt_1",
                    account.id,
                    endpoint_store.primary(conn, account.id).id,  # type: ignore[union-attr]
                    "sms",
                )
            ],
            now=platform.clock.now(),
        )
        conn.execute(deliveries.update().values(status=DeliveryStatus.FAILED.value))
    since = platform.clock.now() - timedelta(minutes=1)
    assert (
        queueing.redeliver_window(
            platform.publisher, now=platform.clock.now(), account_id=account.id, since=since
        )
        == 1
    )
    assert woken == [1]
    with pytest.raises(NotFound):
        queueing.redeliver_one(
            platform.publisher, "dlv_1", now=platform.clock.now(), account_id="acc_other"
        )
    again = queueing.redeliver_one(platform.publisher, "dlv_1", now=platform.clock.now())
    assert again.status == DeliveryStatus.PENDING
    assert woken == [1, 1]


def test_secrets_are_stored_encrypted(platform: Platform) -> None:
    account = make_account(platform, url="https://a.example.com/")
    with platform.db.read() as conn:
        stored = conn.execute(select(endpoint_secrets.c.secret_encrypted)).scalars().all()
    assert stored
    assert all(account.secret.encode() not in bytes(s) for s in stored)
