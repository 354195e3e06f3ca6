"""The claim is fair across endpoints (issue 13, item 7), on both backends.

Sixty endpoints each with a backlog of 25 due deliveries, then one event for a healthy
endpoint: the next claim hands it out at once, instead of after the 1,500 older rows. The
order is what is tested, not timings. The claim reads the queue through indexes (SQLite's plan
is checked: no full scan of ``deliveries``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, text

from callhook.core.clock import FakeClock
from callhook.core.ids import new_id
from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.store import _claiming, queue
from callhook.store import endpoints as endpoint_store
from callhook.store.queue import ClaimedJob
from tests.factories import make_account, make_platform

LEASE = timedelta(seconds=30)
SLOW_ENDPOINTS = 60
BACKLOG = 25


def _claim(
    platform: Platform, limit: int, *, exclude: tuple[str, ...] = (), per_endpoint: int = 32
) -> list[ClaimedJob]:
    now = platform.clock.now()
    with platform.db.write() as conn:
        return queue.claim(
            conn,
            worker_id="w1",
            claim_id=new_id("clm", now, platform.rng),
            now=now,
            lease=LEASE,
            limit=limit,
            box=platform.box,
            exclude_endpoints=exclude,
            per_endpoint=per_endpoint,
        )


def _sms(account_id: str, n: int) -> PublishRequest:
    data = {"from": "+15550100", "to": "+15550101", "text": f"m{n}", "direction": "in"}
    return PublishRequest("sms", f"sms_{n}", account_id, data)


@pytest.fixture
def backlogged(platform_factory: Callable[..., Platform]) -> tuple[Platform, str]:
    """60 endpoints (3 accounts × 20) with 25 due deliveries each, then one newer event for a
    fourth account's healthy endpoint; returns the platform and that endpoint's id."""
    platform = platform_factory(clock=FakeClock())
    for a in range(3):
        account = make_account(platform, url=f"https://slow{a}-0.example.com/", events=["sms"])
        with platform.db.write() as conn:
            for e in range(1, 20):
                endpoint_store.create(
                    conn,
                    account.id,
                    url=f"https://slow{a}-{e}.example.com/",
                    subscribed_events=["sms"],
                    limit=20,
                    now=platform.clock.now(),
                    box=platform.box,
                    rng=platform.rng,
                )
        # Fanned out: 25 events x 20 endpoints of this account.
        platform.publisher.publish([_sms(account.id, a * 1000 + n) for n in range(BACKLOG)])
        platform.clock.advance(1)  # type: ignore[attr-defined]
    healthy = make_account(platform, url="https://healthy.example.com/", events=["sms"])
    platform.clock.advance(1)  # type: ignore[attr-defined]
    [published] = platform.publisher.publish([_sms(healthy.id, 9999)])
    assert published.delivery_id is not None
    with platform.db.read() as conn:
        primary = endpoint_store.primary(conn, healthy.id)
    assert primary is not None
    return platform, primary.id


def test_a_healthy_endpoints_event_is_in_the_first_claim_despite_60_backlogs(
    backlogged: tuple[Platform, str],
) -> None:
    platform, healthy = backlogged
    first = _claim(platform, 256)
    assert len(first) == 256
    assert healthy in {j.endpoint_id for j in first}
    per_endpoint = Counter(j.endpoint_id for j in first)
    assert len(per_endpoint) == SLOW_ENDPOINTS + 1
    # In turns: nobody gets a fifth before everybody (with work) has had a fourth.
    assert max(per_endpoint.values()) - min(per_endpoint.values()) <= 4
    assert sorted(set(per_endpoint.values())) in ([1, 4, 5], [1, 5], [1, 4])
    # Within an endpoint, oldest first; and the rest comes with later claims, none twice.
    rest: list[ClaimedJob] = []
    while batch := _claim(platform, 256):
        rest.extend(batch)
    ids = [j.delivery_id for j in first + rest]
    assert len(ids) == len(set(ids)) == SLOW_ENDPOINTS * BACKLOG + 1


def test_a_claim_smaller_than_the_endpoint_count_takes_each_ones_oldest_first(
    backlogged: tuple[Platform, str],
) -> None:
    platform, _ = backlogged
    jobs = _claim(platform, 61)
    assert len({j.endpoint_id for j in jobs}) == 61  # one each: the first turn


def test_excluded_endpoints_and_the_per_endpoint_bound_are_kept(
    backlogged: tuple[Platform, str],
) -> None:
    platform, healthy = backlogged
    jobs = _claim(platform, 10_000, exclude=(healthy,), per_endpoint=3)
    counts = Counter(j.endpoint_id for j in jobs)
    assert healthy not in counts
    assert set(counts.values()) == {3}
    assert len(counts) == SLOW_ENDPOINTS


def test_the_claim_reads_deliveries_through_indexes_only(tmp_path: Path) -> None:
    """SQLite's plan for the claim's selection (PostgreSQL's depends on its statistics; the
    SQL has the same shape)."""
    platform = make_platform(tmp_path)
    make_account(platform, url="https://a.example.com/")
    c = _claiming
    select_chosen = (
        f"WITH RECURSIVE {c._walk('sqlite')},{c._CANDIDATES['sqlite']},{c._CHOSEN}"
        " SELECT id FROM chosen"
    )
    statement = text("EXPLAIN QUERY PLAN " + select_chosen).bindparams(
        bindparam("excluded", expanding=True), bindparam("held", expanding=True)
    )
    with platform.db.read() as conn:
        plan = conn.execute(
            statement,
            {
                "now": "2026-01-01",
                "excluded": ["ep_x"],
                "held": ["ep_y"],
                "per_endpoint": 32,
                "limit": 256,
            },
        ).all()
    details = [row[3] for row in plan]
    assert not [d for d in details if d.startswith("SCAN d")], details
    # Every read of deliveries is a seek or range of the pending index or a primary-key look-up.
    reads = [d for d in details if d.startswith("SEARCH d")]
    assert reads, details
    assert all("ix_deliveries_pending_endpoint" in d or "(id=?)" in d for d in reads), details
    assert any("ix_deliveries_pending_endpoint" in d for d in details), details
