"""``deliveries.list_deliveries`` (the API's, dashboard's and CLI's deliveries list) on both
backends: pages walk an account's or an endpoint's deliveries once each, newest first, also
when batches share a millisecond or the cursor's delivery was pruned; on SQLite a page is a
backwards walk of the scope's index, not a sort of every delivery of the account."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from callhook.core.clock import FakeClock
from callhook.errors import EndpointNotFound, InvalidRequest
from callhook.events import call_scenario, sample_publish_request
from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store.migrate import downgrade, upgrade
from callhook.store.tables import deliveries, events
from tests.factories import make_account, make_platform


def _two_accounts(tmp_path: Path, seed: int) -> tuple[Platform, FakeClock, str, str]:
    """A platform on a fixed clock with two accounts, each with its primary endpoint: (platform,
    clock, the account under test, another)."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, seed=seed)
    account = make_account(platform, url="https://receiver.example/hook")
    other = make_account(platform, url="https://other.example/hook")
    return platform, clock, account.id, other.id


def _second_endpoint(platform: Platform, account_id: str) -> str:
    with platform.db.write() as conn:
        endpoint = endpoint_store.create(
            conn,
            account_id,
            url="https://second.example/hook",
            subscribed_events=None,
            limit=10,
            allow_unsafe=True,
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
        )
    return endpoint.id


def _publish_batches(
    platform: Platform,
    clock: FakeClock,
    account_id: str,
    seed: int,
    steps: tuple[float, ...] = (0.0002, 0.0005, 0.002),
) -> None:
    """Batches of 1–4 events, ``steps`` seconds apart: by default several batches share a
    millisecond (and so the time in their ids); every batch shares one ``created_at``."""
    rng = random.Random(seed)
    for _ in range(12):
        batch = []
        for _ in range(rng.randint(1, 4)):
            item = sample_publish_request("sms", rng, now=clock.now(), account_id=account_id)
            batch.append(PublishRequest("sms", item["pbx_id"], account_id, item["data"]))
        platform.publisher.publish(batch)
        clock.advance(rng.choice(steps))


def _newest_first(platform: Platform, **scope: str) -> list[str]:
    """Every delivery of the scope, read whole and sorted here: what paging must give."""
    column = deliveries.c.endpoint_id if "endpoint_id" in scope else deliveries.c.account_id
    with platform.db.read() as conn:
        rows = conn.execute(
            select(deliveries.c.id, deliveries.c.created_at).where(
                column == next(iter(scope.values()))
            )
        ).all()
    return [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]


def _pages(
    platform: Platform,
    limit: int,
    *,
    account_id: str,
    endpoint_id: str | None = None,
    status: str | None = None,
    pbx_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[str]:
    """Every page of the list, one after another through the cursor; the ids in order."""
    seen: list[str] = []
    before: str | None = None
    while True:
        with platform.db.read() as conn:
            page = delivery_store.list_deliveries(
                conn,
                account_id=account_id,
                endpoint_id=endpoint_id,
                status=status,
                pbx_id=pbx_id,
                since=since,
                until=until,
                before_id=before,
                limit=limit,
            )
        seen += [d.id for d in page]
        if len(page) < limit:
            return seen
        before = page[-1].id


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_pages_walk_every_delivery_once_newest_first(
    tmp_path: Path, backend: str, limit: int
) -> None:
    platform, clock, account_id, other_id = _two_accounts(tmp_path, seed=3)
    endpoint_id = _second_endpoint(platform, account_id)
    for seed in range(3):
        _publish_batches(platform, clock, account_id, seed)
        _publish_batches(platform, clock, other_id, seed + 10)
    expected = _newest_first(platform, account_id=account_id)
    assert len(expected) == len(set(expected)) > 40
    assert _pages(platform, limit, account_id=account_id) == expected
    assert _pages(platform, limit, account_id=account_id, endpoint_id=endpoint_id) == (
        _newest_first(platform, endpoint_id=endpoint_id)
    )
    # Every status filter, on the account and on the endpoint (each kind has its own index).
    rng = random.Random(limit)
    marked = rng.sample(expected, 20)
    kinds = ("failed", "expired", "waiting", "pending", "retrying")
    states = {i: kinds[n % 5] for n, i in enumerate(marked)}
    with platform.db.write() as conn:
        for delivery_id, state in states.items():
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    status="pending" if state == "retrying" else state,
                    attempts=1 if state == "retrying" else 0,
                )
            )
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.not_in(marked))
            .values(status="delivered", attempts=1)
        )
    mine = set(_newest_first(platform, endpoint_id=endpoint_id))
    for status in ("failed", "expired", "waiting", "pending", "retrying", "delivered"):
        # pending lists the retrying ones too (a retrying delivery is stored as pending).
        also = {"pending": {"retrying"}}.get(status, set())
        want = [i for i in expected if states.get(i, "delivered") in {status, *also}]
        assert _pages(platform, limit, account_id=account_id, status=status) == want, status
        assert _pages(
            platform, limit, account_id=account_id, endpoint_id=endpoint_id, status=status
        ) == [i for i in want if i in mine], status
    # A time range, page after page.
    with platform.db.read() as conn:
        created = dict(
            conn.execute(
                select(deliveries.c.id, deliveries.c.created_at).where(
                    deliveries.c.account_id == account_id
                )
            ).all()
        )
    times = sorted(set(created.values()))
    since, until = times[len(times) // 4], times[3 * len(times) // 4]
    assert _pages(platform, limit, account_id=account_id, since=since, until=until) == [
        i for i in expected if since <= created[i] < until
    ]


@pytest.mark.parametrize("offset", [0.0, 0.0005])
def test_a_cursor_pruned_since_continues_after_its_time(
    tmp_path: Path, backend: str, offset: float
) -> None:
    """Batches a millisecond or more apart, on the millisecond or half-way through one: the
    cursor's batch siblings after it are kept (one batch per millisecond: nothing repeats)."""
    clock = FakeClock()
    clock.advance(offset)
    platform = make_platform(tmp_path, clock=clock, seed=5)
    account = make_account(platform, url="https://receiver.example/hook")
    for seed in range(4):
        _publish_batches(platform, clock, account.id, seed, steps=(0.001, 0.002))
    expected = _newest_first(platform, account_id=account.id)
    with platform.db.read() as conn:
        first = delivery_store.list_deliveries(conn, account_id=account.id, limit=1000)
    # A cursor inside a batch of several, so siblings come after it.
    at = next(
        n for n, d in enumerate(first[:-1]) if d.created_at == first[n + 1].created_at and n > 2
    )
    cursor = first[at]
    with platform.db.write() as conn:
        conn.execute(delete(deliveries).where(deliveries.c.id == cursor.id))
    with platform.db.read() as conn:
        rest = delivery_store.list_deliveries(
            conn, account_id=account.id, before_id=cursor.id, limit=1000
        )
    assert [d.id for d in rest] == expected[at + 1 :]


def test_a_pbx_ids_deliveries_page_after_page(tmp_path: Path, backend: str) -> None:
    platform, clock, account_id, other_id = _two_accounts(tmp_path, seed=11)
    endpoint_id = _second_endpoint(platform, account_id)
    rng = random.Random(2)
    for _ in range(3):
        for owner in (account_id, other_id):  # the same ids in another account: never listed
            for item in call_scenario("answered", rng, start=clock.now()):
                platform.publisher.publish(
                    [PublishRequest(item.event, item.pbx_id, owner, item.data)]
                )
                clock.advance(0.0004)
    with platform.db.read() as conn:
        rows = conn.execute(
            select(
                deliveries.c.id, deliveries.c.created_at, deliveries.c.endpoint_id, events.c.pbx_id
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .where(deliveries.c.account_id == account_id)
        ).all()
    newest = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
    for pbx_id in {r.pbx_id for r in rows}:
        want = [r.id for r in newest if r.pbx_id == pbx_id]
        assert _pages(platform, 2, account_id=account_id, pbx_id=pbx_id) == want
        assert _pages(
            platform, 1, account_id=account_id, endpoint_id=endpoint_id, pbx_id=pbx_id
        ) == [r.id for r in newest if r.pbx_id == pbx_id and r.endpoint_id == endpoint_id]
    assert _pages(platform, 3, account_id=account_id, pbx_id="no-such-call") == []
    # With a status: one delivery of each pbx_id failed, one retrying.
    by_pbx: dict[str, list[str]] = {}
    for r in newest:
        by_pbx.setdefault(r.pbx_id, []).append(r.id)
    failed = {ids[0] for ids in by_pbx.values()}
    retrying = {ids[-1] for ids in by_pbx.values() if len(ids) > 1}
    with platform.db.write() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id.in_(failed)).values(status="failed"))
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(retrying))
            .values(status="pending", attempts=1)
        )
    for pbx_id, ids in by_pbx.items():
        for status, chosen in (("failed", failed), ("retrying", retrying)):
            assert _pages(platform, 1, account_id=account_id, pbx_id=pbx_id, status=status) == [
                i for i in ids if i in chosen
            ]


def test_a_value_no_id_can_have_is_refused_as_a_cursor(tmp_path: Path, backend: str) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    with platform.db.read() as conn, pytest.raises(InvalidRequest, match="cursor"):
        delivery_store.list_deliveries(
            conn, account_id=account.id, before_id="dlv_01KF0K8Y20PDDGMEPHX7DTC6DU"
        )


def test_another_accounts_endpoint_lists_nothing_of_it(tmp_path: Path, backend: str) -> None:
    platform, clock, account_id, other_id = _two_accounts(tmp_path, seed=7)
    theirs = _second_endpoint(platform, other_id)
    _publish_batches(platform, clock, other_id, 1)
    with platform.db.read() as conn:
        with pytest.raises(EndpointNotFound):
            delivery_store.list_deliveries(conn, account_id=account_id, endpoint_id=theirs)
        # With a status filter the account's own condition leaves them out.
        assert (
            delivery_store.list_deliveries(
                conn, account_id=account_id, endpoint_id=theirs, status="pending"
            )
            == []
        )
        assert delivery_store.list_deliveries(
            conn, account_id=other_id, endpoint_id=theirs, status="pending"
        )


_OPEN = "ix_deliveries_account_open (account_id=? AND status=?"
_UNDELIVERED = "ix_deliveries_account_undelivered (account_id=? AND status=?"
#: The index a page walks, by status filter: the scope's own without one (or for delivered).
_INDEX_OF = {
    "failed": _UNDELIVERED,
    "expired": _UNDELIVERED,
    "pending": _OPEN,
    "retrying": _OPEN,
    "waiting": _OPEN,
}


@pytest.mark.parametrize(
    ("endpoint_id", "walked"),
    [
        (None, "ix_deliveries_account_created (account_id=?"),
        ("ep_x", "ix_deliveries_endpoint_created (endpoint_id=?"),
    ],
)
@pytest.mark.parametrize("cursor", [None, "dlv_01KF0K8Y20PDDGMEPHX7DTC6DB"])
@pytest.mark.parametrize(
    "status", [None, "delivered", "failed", "expired", "pending", "retrying", "waiting"]
)
@pytest.mark.parametrize("since", [None, datetime(2026, 1, 1, tzinfo=UTC)])
@pytest.mark.parametrize("remade", [False, True])
def test_a_page_walks_an_index_and_sorts_nothing_whole(
    tmp_path: Path,
    endpoint_id: str | None,
    walked: str,
    cursor: str | None,
    status: str | None,
    since: datetime | None,
    remade: bool,
) -> None:
    details = _plan(
        tmp_path, endpoint_id=endpoint_id, status=status, cursor=cursor, since=since, remade=remade
    )
    index = _INDEX_OF.get(status or "", walked)
    assert any(f"SEARCH deliveries USING INDEX {index}" in d for d in details), details
    # Only ties of created_at are sorted ("RIGHT PART"), a block at a time, up to the limit.
    assert not any(d == "USE TEMP B-TREE FOR ORDER BY" for d in details), details


@pytest.mark.parametrize("endpoint_id", [None, "ep_x"])
@pytest.mark.parametrize("status", [None, "failed"])
def test_a_pbx_id_page_starts_from_its_events(
    tmp_path: Path, endpoint_id: str | None, status: str | None
) -> None:
    details = _plan(tmp_path, endpoint_id=endpoint_id, status=status, cursor=None, pbx_id="call-1")
    assert any(
        "USING INDEX ix_events_account_pbx (account_id=? AND pbx_id=?)" in d for d in details
    )
    assert any(
        "USING INDEX ix_events_account_call (account_id=? AND call_id=?)" in d for d in details
    )
    assert any(
        "SEARCH deliveries USING INDEX sqlite_autoindex_deliveries_2 (event_id=?)" in d
        for d in details
    ), details
    assert not any("_created" in d or "SCAN deliveries" in d for d in details), details


def _plan(
    tmp_path: Path,
    *,
    endpoint_id: str | None,
    status: str | None,
    cursor: str | None,
    pbx_id: str | None = None,
    since: datetime | None = None,
    remade: bool = False,
) -> list[str]:
    """SQLite's plan of a page's query (parameters unset: the plan does not depend on them).
    ``remade``: the scope indexes made again, after the status ones (without statistics,
    SQLite breaks ties between equally good indexes by the order they were made in)."""
    platform = make_platform(tmp_path)
    if remade:
        with platform.db.write() as conn:
            for name in ("ix_deliveries_account_created", "ix_deliveries_endpoint_created"):
                sql = conn.exec_driver_sql(
                    f"SELECT sql FROM sqlite_master WHERE name = '{name}'"
                ).scalar_one()
                conn.exec_driver_sql(f"DROP INDEX {name}")
                conn.exec_driver_sql(sql)
    with platform.db.read() as conn:
        compiled = (
            delivery_store._page_query(
                conn,
                account_id="acc_x",
                endpoint_id=endpoint_id,
                status=status,
                event=None,
                pbx_id=pbx_id,
                since=since,
                until=None,
                before_id=cursor,
            )
            .limit(51)
            .compile(conn)
        )
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled.string}",
            tuple(None for _ in compiled.positiontup or ()),
        ).all()
    return [row[-1] for row in plan]


_NEW_INDEXES = ("ix_deliveries_account_open", "ix_deliveries_account_undelivered")


def _status_indexes(platform: Platform) -> set[str]:
    with platform.db.read() as conn:
        if conn.dialect.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
        else:
            sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        return set(conn.exec_driver_sql(sql).scalars()) & set(_NEW_INDEXES)


def test_migration_0008_down_and_up(tmp_path: Path, backend: str) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, seed=9)
    account = make_account(platform, url="https://receiver.example/hook")
    _publish_batches(platform, clock, account.id, 2)
    assert _status_indexes(platform) == set(_NEW_INDEXES)
    downgrade(platform.db, "0007_pbx_index")
    assert _status_indexes(platform) == set()
    upgrade(platform.db)
    assert _status_indexes(platform) == set(_NEW_INDEXES)
    assert _pages(platform, 5, account_id=account.id, status="pending") == _newest_first(
        platform, account_id=account.id
    )
