"""``deliveries.list_deliveries`` (the API's, dashboard's and CLI's deliveries list) on both
backends: pages walk an account's or an endpoint's deliveries once each, newest first, also
when batches share a millisecond or the cursor's delivery was pruned; on SQLite a page is a
backwards walk of the scope's index, not a sort of every delivery of the account."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from callhook.core.clock import FakeClock
from callhook.errors import EndpointNotFound, InvalidRequest
from callhook.events import sample_publish_request
from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store.migrate import downgrade, upgrade
from callhook.store.tables import deliveries
from tests.factories import make_account, make_platform


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


def _pages(platform: Platform, limit: int, **scope: str) -> list[str]:
    seen: list[str] = []
    before: str | None = None
    while True:
        with platform.db.read() as conn:
            page = delivery_store.list_deliveries(conn, before_id=before, limit=limit, **scope)
        seen += [d.id for d in page]
        if len(page) < limit:
            return seen
        before = page[-1].id


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_pages_walk_every_delivery_once_newest_first(
    tmp_path: Path, backend: str, limit: int
) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, seed=3)
    account = make_account(platform, url="https://receiver.example/hook")
    other = make_account(platform, url="https://other.example/hook")
    endpoint_id = _second_endpoint(platform, account.id)
    for seed in range(3):
        _publish_batches(platform, clock, account.id, seed)
        _publish_batches(platform, clock, other.id, seed + 10)
    expected = _newest_first(platform, account_id=account.id)
    assert len(expected) == len(set(expected)) > 40
    assert _pages(platform, limit, account_id=account.id) == expected
    assert _pages(platform, limit, account_id=account.id, endpoint_id=endpoint_id) == (
        _newest_first(platform, endpoint_id=endpoint_id)
    )
    failed = set(random.Random(limit).sample(expected, 9))
    with platform.db.write() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id.in_(failed)).values(status="failed"))
    assert _pages(platform, limit, account_id=account.id, status="failed") == [
        i for i in expected if i in failed
    ]


def test_a_cursor_pruned_since_continues_after_its_time(tmp_path: Path, backend: str) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, seed=5)
    account = make_account(platform, url="https://receiver.example/hook")
    for seed in range(4):
        # Whole milliseconds: the time in each id is its delivery's created_at.
        _publish_batches(platform, clock, account.id, seed, steps=(0.001, 0.002))
    expected = _newest_first(platform, account_id=account.id)
    with platform.db.read() as conn:
        first = delivery_store.list_deliveries(conn, account_id=account.id, limit=5)
    cursor = first[-1]
    assert cursor.created_at.microsecond % 1000 == 0
    with platform.db.write() as conn:
        conn.execute(delete(deliveries).where(deliveries.c.id == cursor.id))
    with platform.db.read() as conn:
        rest = delivery_store.list_deliveries(
            conn, account_id=account.id, before_id=cursor.id, limit=1000
        )
    assert [d.id for d in rest] == expected[5:]


def test_a_value_no_id_can_have_is_refused_as_a_cursor(tmp_path: Path, backend: str) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    with platform.db.read() as conn, pytest.raises(InvalidRequest, match="cursor"):
        delivery_store.list_deliveries(
            conn, account_id=account.id, before_id="dlv_01KF0K8Y20PDDGMEPHX7DTC6DU"
        )


def test_another_accounts_endpoint_lists_nothing_of_it(tmp_path: Path, backend: str) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, seed=7)
    account = make_account(platform, url="https://receiver.example/hook")
    other = make_account(platform, url="https://other.example/hook")
    theirs = _second_endpoint(platform, other.id)
    _publish_batches(platform, clock, other.id, 1)
    with platform.db.read() as conn, pytest.raises(EndpointNotFound):
        delivery_store.list_deliveries(conn, account_id=account.id, endpoint_id=theirs)


@pytest.mark.parametrize(
    ("scope", "index"),
    [
        ({"account_id": "acc_x"}, "ix_deliveries_account_created (account_id=?"),
        (
            {"account_id": "acc_x", "endpoint_id": "ep_x"},
            "ix_deliveries_endpoint_created (endpoint_id=?",
        ),
    ],
)
@pytest.mark.parametrize("cursor", [None, "dlv_01KF0K8Y20PDDGMEPHX7DTC6DB"])
@pytest.mark.parametrize("status", [None, "failed", "retrying"])
def test_a_page_walks_the_scopes_index_and_sorts_nothing_whole(
    tmp_path: Path, scope: dict[str, str], index: str, cursor: str | None, status: str | None
) -> None:
    platform = make_platform(tmp_path)
    with platform.db.read() as conn:
        compiled = (
            delivery_store._page_query(
                conn,
                account_id=scope["account_id"],
                endpoint_id=scope.get("endpoint_id"),
                status=status,
                event=None,
                pbx_id=None,
                since=None,
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
    details = [row[-1] for row in plan]
    if status == "failed" and "endpoint_id" not in scope:
        index = "ix_deliveries_account_failed (account_id=?"  # not past every delivered one
    assert any(f"SEARCH deliveries USING INDEX {index}" in d for d in details), details
    # Only ties of created_at are sorted ("RIGHT PART"), a block at a time, up to the limit.
    assert not any(d == "USE TEMP B-TREE FOR ORDER BY" for d in details), details


def _has_failed_index(platform: Platform) -> bool:
    with platform.db.read() as conn:
        if conn.dialect.name == "sqlite":
            sql = "SELECT count(*) FROM sqlite_master WHERE name = 'ix_deliveries_account_failed'"
        else:
            sql = (
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_deliveries_account_failed'"
                " AND schemaname = current_schema()"
            )
        return bool(conn.exec_driver_sql(sql).scalar_one())


def test_migration_0008_down_and_up(tmp_path: Path, backend: str) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, seed=9)
    account = make_account(platform, url="https://receiver.example/hook")
    _publish_batches(platform, clock, account.id, 2)
    assert _has_failed_index(platform)
    downgrade(platform.db, "0007_pbx_index")
    assert not _has_failed_index(platform)
    upgrade(platform.db)
    assert _has_failed_index(platform)
    assert _pages(platform, 5, account_id=account.id) == _newest_first(
        platform, account_id=account.id
    )
