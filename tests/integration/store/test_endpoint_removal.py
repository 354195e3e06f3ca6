"""Removing an endpoint in batches (``callhook.store.endpoint_removal``) on both backends: what
goes and what stays, account scoping, and a removal interrupted between two batches."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Connection, case, func, insert, select, update

from callhook.core.clock import FakeClock
from callhook.core.outcome import DeliveryStatus
from callhook.errors import EndpointNotFound, PrimaryEndpointDelete
from callhook.platform import Platform
from callhook.store import endpoint_removal, prune
from callhook.store import endpoints as endpoint_store
from callhook.store import events as event_store
from callhook.store.tables import attempts, deliveries, endpoint_secrets, endpoints
from tests.factories import AccountInfo, make_account, publish_sample

EVENT = "incoming_call_start"


@pytest.fixture
def platform(platform_factory: Callable[..., Platform]) -> Platform:
    return platform_factory(clock=FakeClock())


@dataclass
class Setup:
    account: AccountInfo
    extra: str  # the endpoint to remove
    primary: str
    both: list[str]  # events delivered to both endpoints
    only_extra: list[str]  # events only the extra endpoint takes


def _setup(platform: Platform, statuses: list[DeliveryStatus], *, shared: int = 2) -> Setup:
    """An account whose primary endpoint takes ``shared`` events and a second endpoint that
    takes those and one more event per status in ``statuses``, each delivery given that status
    and, when finished, two attempts."""
    account = make_account(platform, url="https://hooks.example.com/primary")
    with platform.db.write() as conn:
        extra = endpoint_store.create(
            conn,
            account.id,
            url="https://extra.example.com/",
            subscribed_events=[EVENT],
            limit=platform.settings.max_endpoints_per_account,
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
        )
        primary = endpoint_store.primary(conn, account.id)
    assert primary is not None
    both = [publish_sample(platform, account.id, EVENT, seed=i).id for i in range(shared)]
    with platform.db.write() as conn:
        endpoint_store.update(
            conn, account.id, primary.id, subscribed_events=["sms"], now=platform.clock.now()
        )
    only = [publish_sample(platform, account.id, EVENT, seed=100 + i) for i in range(len(statuses))]
    with platform.db.write() as conn:
        shared_to = conn.execute(
            select(deliveries.c.id, deliveries.c.endpoint_id).where(deliveries.c.event_id.in_(both))
        ).all()
        marked = [(r.id, DeliveryStatus.DELIVERED) for r in shared_to if r.endpoint_id == extra.id]
        for published, status in zip(only, statuses, strict=True):
            marked += [(published.delivery_ids[0], status)]
        for delivery_id, status in marked:
            conn.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(status=status)
            )
            if status not in (DeliveryStatus.PENDING, DeliveryStatus.WAITING):
                _attempts(platform, conn, delivery_id, 2)
        for r in shared_to:
            if r.endpoint_id == primary.id:  # the other endpoint's attempts must stay
                _attempts(platform, conn, r.id, 1)
    return Setup(account, extra.id, primary.id, both, [p.id for p in only])


def _attempts(platform: Platform, conn: Connection, delivery_id: str, count: int) -> None:
    for number in range(1, count + 1):
        conn.execute(
            insert(attempts).values(
                delivery_id=delivery_id,
                number=number,
                started_at=platform.clock.now(),
                duration_ms=1.0,
                status_code=500,
            )
        )


def _count(platform: Platform, table: object, *where: object) -> int:
    with platform.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


MIXED = [
    DeliveryStatus.DELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.EXPIRED,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.PENDING,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.WAITING,
]


@pytest.mark.parametrize("batch_size", [1, 2, 5, 1000])
def test_removal_takes_every_delivery_and_marks_events_left_with_none(
    platform: Platform, batch_size: int
) -> None:
    s = _setup(platform, MIXED)
    paced: list[float] = []

    removal = endpoint_removal.remove_endpoint(
        platform.db, s.account.id, s.extra, batch_size=batch_size, pace=paced.append
    )

    # MIXED's and the shared events' deliveries to it, by phase: delivered, expired, failed,
    # waiting, pending.
    by_phase = [3 + len(s.both), 1, 1, 1, 1]
    assert removal.deliveries == sum(by_phase)
    # Full batches and the short one ending each phase, then the endpoint's own transaction.
    assert removal.transactions == sum(n // batch_size + 1 for n in by_phase) + 1
    assert len(paced) == sum(n // batch_size for n in by_phase)
    assert all(seconds > 0 for seconds in paced)
    assert _count(platform, deliveries, deliveries.c.endpoint_id == s.extra) == 0
    assert _count(platform, endpoints, endpoints.c.id == s.extra) == 0
    assert _count(platform, endpoint_secrets, endpoint_secrets.c.endpoint_id == s.extra) == 0
    assert _count(platform, deliveries, deliveries.c.endpoint_id == s.primary) == len(s.both)
    assert _count(platform, attempts) == len(s.both)  # the other endpoint's, untouched
    with platform.db.read() as conn:
        for event_id in s.both:
            kept = event_store.get(conn, event_id)
            assert kept is not None
            assert kept.skip_reason is None  # still delivered to the primary endpoint
        for event_id in s.only_extra:
            orphan = event_store.get(conn, event_id)
            assert orphan is not None
            assert orphan.skip_reason == "endpoint_deleted"


def test_batches_take_the_least_useful_deliveries_first(platform: Platform) -> None:
    s = _setup(platform, MIXED)
    seen: list[list[str]] = []

    def statuses_left() -> list[str]:
        with platform.db.read() as conn:
            rows = conn.execute(
                select(deliveries.c.status).where(deliveries.c.endpoint_id == s.extra)
            ).scalars()
            return sorted(rows)

    seen.append(statuses_left())
    endpoint_removal.remove_endpoint(
        platform.db,
        s.account.id,
        s.extra,
        batch_size=1,
        pace=lambda _: seen.append(statuses_left()),
    )

    gone = []
    for before, after in itertools.pairwise(seen):
        [status] = list((Counter(before) - Counter(after)).elements())  # one per batch of 1
        gone.append(status)
    assert gone == ["delivered"] * (3 + len(s.both)) + ["expired", "failed", "waiting", "pending"]


def test_an_interrupted_removal_leaves_the_endpoint_whole_and_finishes_when_run_again(
    platform: Platform,
) -> None:
    s = _setup(platform, MIXED)

    class Killed(Exception):
        pass

    def die(_: float) -> None:
        raise Killed

    with pytest.raises(Killed):
        endpoint_removal.remove_endpoint(platform.db, s.account.id, s.extra, batch_size=2, pace=die)

    with platform.db.read() as conn:
        endpoint = endpoint_store.get(conn, s.account.id, s.extra)
        assert endpoint.subscribed_events == (EVENT,)
        assert endpoint_store.active_secrets(
            conn, s.account.id, s.extra, now=platform.clock.now(), box=platform.box
        )
        left = conn.execute(
            select(deliveries.c.status).where(deliveries.c.endpoint_id == s.extra)
        ).scalars()
        statuses = sorted(left)
    # Two delivered deliveries (and their four attempts) went; everything else stays.
    assert statuses == sorted(
        [DeliveryStatus.DELIVERED] * (3 + len(s.both) - 2)
        + [DeliveryStatus.EXPIRED, DeliveryStatus.FAILED]
        + [DeliveryStatus.WAITING, DeliveryStatus.PENDING]
    )
    assert _count(platform, attempts) == (len(statuses) - 2) * 2 + len(s.both)
    # It still takes new events.
    later = publish_sample(platform, s.account.id, EVENT, seed=999)
    assert len(later.delivery_ids) == 1

    removal = endpoint_removal.remove_endpoint(platform.db, s.account.id, s.extra)

    assert removal.deliveries == len(statuses) + 1
    assert _count(platform, deliveries, deliveries.c.endpoint_id == s.extra) == 0
    assert _count(platform, endpoints, endpoints.c.id == s.extra) == 0


def test_refusals_delete_nothing(platform: Platform) -> None:
    s = _setup(platform, MIXED)
    other = make_account(platform, url="https://hooks.example.com/other")
    before = _count(platform, deliveries), _count(platform, attempts)

    with pytest.raises(PrimaryEndpointDelete):
        endpoint_removal.remove_endpoint(platform.db, s.account.id, s.primary, batch_size=1)
    with pytest.raises(EndpointNotFound):  # another account's endpoint
        endpoint_removal.remove_endpoint(platform.db, other.id, s.extra, batch_size=1)
    with pytest.raises(EndpointNotFound):
        endpoint_removal.remove_endpoint(
            platform.db, s.account.id, "ep_01JAAAAAAAAAAAAAAAAAAAAAAA", batch_size=1
        )
    # A batch is scoped by account too, whoever calls it.
    with platform.db.write() as conn:
        every = tuple(DeliveryStatus)
        assert endpoint_removal.purge_batch(conn, other.id, s.extra, every, limit=10)[0] == 0
        assert endpoint_removal.purge_batch(conn, s.account.id, s.primary, every, limit=10)[0] == 0

    assert (_count(platform, deliveries), _count(platform, attempts)) == before


def test_batch_size_must_be_positive(platform: Platform) -> None:
    s = _setup(platform, [])
    with pytest.raises(ValueError, match="at least 1"):
        endpoint_removal.remove_endpoint(platform.db, s.account.id, s.extra, batch_size=0)
    assert _count(platform, endpoints, endpoints.c.id == s.extra) == 1


@pytest.mark.parametrize("second", ["removal", "prune"])
def test_two_transactions_taking_an_events_last_two_deliveries_leave_no_orphan(
    platform: Platform, second: str
) -> None:
    """The event's delivery to the primary endpoint is pruned while the other endpoint's is
    removed (or pruned by a second pruner), in two transactions at once: whichever checks last
    sees the other's commit, so the event ends skipped (retention removes it later) or deleted,
    never without deliveries and without a reason, where no prune would ever find it
    (PostgreSQL's READ COMMITTED; SQLite serializes the two)."""
    s = _setup(platform, [])
    [event_id, _] = s.both
    now = platform.clock.now()
    other_status = DeliveryStatus.FAILED if second == "removal" else DeliveryStatus.DELIVERED
    with platform.db.write() as conn:
        conn.execute(  # both old enough to prune, but a failed one was attempted now
            update(deliveries)
            .where(deliveries.c.event_id == event_id)
            .values(
                status=case(
                    (deliveries.c.endpoint_id == s.primary, DeliveryStatus.DELIVERED.value),
                    else_=other_status.value,
                ),
                delivered_at=now - timedelta(days=2),
                last_attempt_at=now,
            )
        )
    cutoff = now - timedelta(days=1)

    def take_the_other() -> None:
        with platform.db.write() as conn:
            if second == "removal":
                endpoint_removal.purge_batch(
                    conn, s.account.id, s.extra, (DeliveryStatus.FAILED,), limit=10
                )
            else:
                prune.prune_batch(conn, cutoff=cutoff, limit=10)

    with platform.db.write() as conn:
        report = prune.prune_batch(conn, cutoff=cutoff, limit=1)
        assert (report.deliveries, report.events) == (1, 0)  # the other delivery is still there
        other = threading.Thread(target=take_the_other)
        other.start()
        # Unlocked, it would be done well within this; locked, it waits for our commit.
        other.join(timeout=1.0)
    other.join()

    with platform.db.read() as conn:
        event = event_store.get(conn, event_id)
    assert _count(platform, deliveries, deliveries.c.event_id == event_id) == 0
    if second == "removal":
        assert event is not None
        assert event.skip_reason == "endpoint_deleted"
    else:
        assert event is None


def test_the_phases_take_every_status_once() -> None:
    """A status added later must get its place in the order, not wait for the last transaction."""
    taken = [s for phase in endpoint_removal.PHASES for s in phase]
    assert sorted(taken) == sorted(DeliveryStatus)
