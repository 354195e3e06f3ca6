"""Migration 0005 (issue 14) with data on both backends: down to 0004_alerts and up again, the
queued deliveries keep their state, gain their call and sequence, and are claimable unordered."""

from __future__ import annotations

import random
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import select

from callhook.core.clock import FakeClock
from callhook.events import call_scenario
from callhook.publish import PublishRequest
from callhook.store.migrate import alembic_config, current, downgrade, upgrade
from callhook.store.tables import deliveries
from tests.factories import make_account, make_platform


def test_down_and_up_with_queued_deliveries(tmp_path: Path) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    call = call_scenario("answered", random.Random(2), start=platform.clock.now())
    for item in call:
        platform.publisher.publish([PublishRequest(item.event, item.pbx_id, account.id, item.data)])
    downgrade(platform.db, "0005_endpoint_health")
    assert current(platform.db) == "0005_endpoint_health"
    upgrade(platform.db)
    assert current(platform.db) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    with platform.db.read() as conn:
        rows = conn.execute(
            select(
                deliveries.c.status,
                deliveries.c.call_id,
                deliveries.c.sequence,
                deliveries.c.holds_line,
                deliveries.c.claim_key,
                deliveries.c.next_attempt_at,
            ).order_by(deliveries.c.sequence)
        ).all()
    assert [r.sequence for r in rows] == list(range(1, len(call) + 1))
    assert {r.call_id for r in rows} == {call[0].data["call_id"]}
    # Rows queued before the migration are delivered as they were queued: unordered, claimable.
    assert {r.status for r in rows} == {"pending"}
    assert not any(r.holds_line for r in rows)
    assert all(r.claim_key == r.next_attempt_at for r in rows)
