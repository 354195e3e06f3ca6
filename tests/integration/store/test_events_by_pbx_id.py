"""``events.for_pbx_id`` (``GET /api/v2/webhooks/events/{pbx_id}``) on both backends: a call's
events by its id, a record's by its own id, each once and in order; two index lookups, not a
read of the account's events; migration 0007 makes ``ix_events_account_pbx`` partial and back."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from sqlalchemy import text

from callhook.core.clock import FakeClock
from callhook.events import call_scenario, sample_publish_request
from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.store import events as event_store
from callhook.store.migrate import downgrade, upgrade
from tests.factories import make_account, make_platform


def _publish(
    platform: Platform, account_id: str, event: str, pbx_id: str, data: dict[str, Any]
) -> None:
    platform.publisher.publish([PublishRequest(event, pbx_id, account_id, data)])


def _calls(
    platform: Platform, account_id: str, count: int, seed: int
) -> list[list[tuple[str, str]]]:
    """Publish ``count`` answered calls; each call's (event, pbx_id) in publishing order."""
    rng = random.Random(seed)
    calls = []
    for _ in range(count):
        call = call_scenario("answered", rng, start=platform.clock.now())
        for item in call:
            _publish(platform, account_id, item.event, item.pbx_id, item.data)
        calls.append([(item.event, item.pbx_id) for item in call])
    return calls


def test_a_calls_events_and_a_records_own_each_once_in_order(tmp_path: Path, backend: str) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    other = make_account(platform, url="https://other.example/hook")
    calls = _calls(platform, account.id, 3, seed=4)
    _calls(platform, other.id, 2, seed=4)  # the same ids in another account: never found
    rng = random.Random(9)
    sms = sample_publish_request("sms", rng, now=platform.clock.now(), account_id=account.id)
    _publish(platform, account.id, "sms", sms["pbx_id"], sms["data"])
    with platform.db.read() as conn:
        for call in calls:
            call_id = call[0][1]  # the call start's pbx_id is the call's id
            found = event_store.for_pbx_id(conn, account.id, call_id)
            assert [(e.event, e.pbx_id) for e in found] == call
            assert [e.sequence for e in found] == list(range(1, len(call) + 1))
            assert {e.account_id for e in found} == {account.id}
            # A record of the call (a chain member's leg, …) by its own id: its events alone.
            for pbx_id in {p for _, p in call} - {call_id}:
                own = event_store.for_pbx_id(conn, account.id, pbx_id)
                assert [(e.event, e.pbx_id) for e in own] == [c for c in call if c[1] == pbx_id]
        found = event_store.for_pbx_id(conn, account.id, sms["pbx_id"])
        assert [(e.event, e.call_id) for e in found] == [("sms", None)]
        assert event_store.for_pbx_id(conn, account.id, "no-such-id") == []


def test_two_index_lookups_not_a_read_of_the_accounts_events(tmp_path: Path) -> None:
    platform = make_platform(tmp_path)
    with platform.db.read() as conn:
        compiled = event_store._FOR_PBX_ID.compile(conn)
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled.string}",
            tuple({"account_id": "acc_x", "pbx_id": "p"}[n] for n in compiled.positiontup or ()),
        ).all()
    details = [row[-1] for row in plan]
    assert any(
        "USING INDEX ix_events_account_pbx (account_id=? AND pbx_id=?)" in d for d in details
    ), details
    assert any(
        "USING INDEX ix_events_account_call (account_id=? AND call_id=?)" in d for d in details
    ), details
    assert not any("ix_events_account_created" in d or "SCAN events" in d for d in details), details


def _pbx_index_is_partial(platform: Platform) -> bool:
    with platform.db.read() as conn:
        if conn.dialect.name == "sqlite":
            sql = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_events_account_pbx'")
            ).scalar_one()
        else:
            sql = conn.execute(
                text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_events_account_pbx' "
                    "AND schemaname = current_schema()"
                )
            ).scalar_one()
    return "WHERE" in sql.upper()


def test_migration_0007_down_and_up(tmp_path: Path, backend: str) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    calls = _calls(platform, account.id, 2, seed=5)
    assert _pbx_index_is_partial(platform)
    downgrade(platform.db, "0006_ordering")
    assert not _pbx_index_is_partial(platform)
    upgrade(platform.db)
    assert _pbx_index_is_partial(platform)
    with platform.db.read() as conn:
        for call in calls:
            found = event_store.for_pbx_id(conn, account.id, call[0][1])
            assert [(e.event, e.pbx_id) for e in found] == call
