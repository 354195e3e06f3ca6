"""``deliveries.of_events`` (the reconciliation read of ``GET /api/v2/webhooks/events/{pbx_id}``)
on both backends: each event's deliveries to the account's endpoints, none of another account's,
and on SQLite a range read of the event id index however many events a call has."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from tests.factories import make_account, make_endpoint, make_platform, publish_sample


def test_each_event_lists_its_deliveries_of_this_account_alone(
    platform_factory: Callable[..., Platform],
) -> None:
    platform = platform_factory()
    mine = make_account(platform, url="https://a.example.com/")
    theirs = make_account(platform, url="https://b.example.com/", name="Other")
    second = make_endpoint(platform, mine.id, "https://a2.example.com/")
    published = [publish_sample(platform, mine.id, "sms", seed=n) for n in range(12)]
    foreign = publish_sample(platform, theirs.id, "sms", seed=1)
    with platform.db.read() as conn:
        ids = [p.id for p in published]
        found = delivery_store.of_events(conn, mine.id, [*ids, foreign.id])
        assert delivery_store.of_events(conn, theirs.id, ids) == {}
    assert set(found) == set(ids)  # the other account's event: not this account's to see
    for deliveries in found.values():
        assert len(deliveries) == 2  # the primary endpoint and the second one
        assert second in {d.endpoint_id for d in deliveries}
        assert {d.shown_status for d in deliveries} == {"pending"}


def test_a_range_read_of_the_event_index_for_a_long_call(tmp_path: Path) -> None:
    platform = make_platform(tmp_path)
    with platform.db.read() as conn:
        compiled = delivery_store._OF_EVENTS.compile(conn)
        expanded = compiled.construct_expanded_state({"events": [f"evt_{n}" for n in range(20)]})
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {expanded.statement}",
            tuple(expanded.parameters[n] for n in expanded.positiontup or ()),
        ).all()
    details = " | ".join(row[-1] for row in plan)
    # The unique (event_id, endpoint_id) constraint's index (SQLite names it itself).
    assert "USING INDEX" in details, details
    assert "(event_id=?)" in details, details
    assert "account" not in details, details
    assert "TEMP B-TREE" not in details, details
