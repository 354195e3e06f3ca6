"""Migration 0004_compact on both backends, with data: rows written in the old forms (ISO text
times on SQLite, whole JSON request headers, ``attempts.event_id``, whole bodies) read back
exactly as before; new rows are stored compact; downgrade writes everything back in the old
forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select, text

from callhook.core import stored_body, stored_headers
from callhook.core.clock import FakeClock, rfc3339
from callhook.delivery.sender import request_headers
from callhook.platform import Platform
from callhook.publish import PublishRequest, delivery_body
from callhook.store import deliveries as delivery_store
from callhook.store import events as event_store
from callhook.store.migrate import downgrade, upgrade
from callhook.store.queue import ClaimedJob
from callhook.store.tables import deliveries, events
from tests import factories

T0 = datetime(2026, 1, 15, 10, 30, 0, 123_456, tzinfo=UTC)
T1 = T0 + timedelta(seconds=2, microseconds=7)
EVENT_ID = "evt_01KF0K8Y2000000000000000AA"
SECRET = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="


def _old_time(platform: Platform, when: datetime) -> Any:
    """A time as the code before 0004_compact stored it."""
    if platform.db.engine.dialect.name == "sqlite":
        return when.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return when


@pytest.fixture
def old(backend: str, tmp_path: Path) -> tuple[Platform, str, bytes, str]:
    """A platform at revision 0003 holding one delivered event in the old forms; with the
    account id, the body and the request headers' JSON as they were stored."""
    platform = Platform.create(factories.make_settings(tmp_path), clock=FakeClock(T0))
    factories._created.append(platform)
    # The account is made by today's code, then the schema goes back to 0003 around it.
    upgrade(platform.db)
    account = factories.make_account(platform, url="https://a.example.com/h")
    downgrade(platform.db, "0003")
    with platform.db.read() as conn:
        endpoint_id = conn.execute(
            text("SELECT id FROM endpoints WHERE account_id = :a"), {"a": account.id}
        ).scalar_one()
    body = delivery_body(
        event_id=EVENT_ID,
        req=PublishRequest("sms", "sms_1", account.id, {"text": "hé", "n": 1}),
        account_id=account.id,
        created_at=rfc3339(T0),
        call_id=None,
        sequence=None,
    )
    headers = orjson.dumps(
        request_headers(
            body=body, event_id=EVENT_ID, event="sms", attempt=1, timestamp=1, secrets=(SECRET,)
        )
    ).decode()
    t0, t1 = _old_time(platform, T0), _old_time(platform, T1)
    with platform.db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO events (id, account_id, event, pbx_id, idempotency_key, created_at,"
                " body) VALUES (:id, :a, 'sms', 'sms_1', 'key-1', :t, :b)"
            ),
            {"id": EVENT_ID, "a": account.id, "t": t0, "b": body},
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (id, event_id, account_id, endpoint_id, event, status,"
                " attempts, created_at, window_start, last_attempt_at, last_status_code,"
                " last_latency_ms, delivered_at)"
                " VALUES ('dlv_1', :e, :a, :ep, 'sms', 'delivered', 1, :t0, :t0, :t1, 200, 3.5,"
                " :t1)"
            ),
            {"e": EVENT_ID, "a": account.id, "ep": endpoint_id, "t0": t0, "t1": t1},
        )
        conn.execute(
            text(
                "INSERT INTO attempts (delivery_id, event_id, number, started_at, duration_ms,"
                " status_code, response_body, request_headers)"
                " VALUES ('dlv_1', :e, 1, :t1, 3.5, 200, 'ok', :h)"
            ),
            {"e": EVENT_ID, "t1": t1, "h": headers},
        )
    return platform, account.id, body, headers


def _detail(platform: Platform) -> delivery_store.Delivery:
    with platform.db.read() as conn:
        return delivery_store.get(conn, "dlv_1")


def test_old_rows_read_as_before_and_new_rows_are_compact(
    old: tuple[Platform, str, bytes, str],
) -> None:
    platform, account_id, body, headers = old
    upgrade(platform.db)
    d = _detail(platform)
    assert (d.created_at, d.last_attempt_at, d.delivered_at) == (T0, T1, T1)
    assert d.body == body
    [attempt] = d.attempt_log
    assert (attempt.started_at, attempt.request_headers) == (T1, headers)
    with platform.db.read() as conn:
        stored = event_store.get(conn, EVENT_ID)
    assert stored is not None
    assert (stored.created_at, stored.body) == (T0, body)
    if platform.db.engine.dialect.name == "sqlite":
        with platform.db.read() as conn:
            kinds = conn.execute(
                text(
                    "SELECT typeof(e.created_at), typeof(d.delivered_at), typeof(d.last_attempt_at)"
                    " FROM events e, deliveries d"
                )
            ).one()
        assert tuple(kinds) == ("integer", "integer", "integer")

    # The idempotency key still finds the event published before the migration.
    again = factories.publish_sample(platform, account_id, "sms", idempotency_key="key-1")
    assert again.id == EVENT_ID
    # A new event is stored packed and delivered with packed headers.
    fresh = factories.publish_sample(platform, account_id, "sms", idempotency_key="key-2")
    assert fresh.delivery_id is not None
    now = platform.clock.now()

    def signed(job: ClaimedJob) -> dict[str, str]:
        return request_headers(
            body=job.body,
            event_id=job.event_id,
            event=job.event,
            attempt=1,
            timestamp=int(now.timestamp()),
            secrets=job.secrets,
        )

    [job] = factories.attempt_due(
        platform,
        response_body=lambda _: "ok",
        request_headers=lambda job: stored_headers.pack(
            signed(job), event_id=job.event_id, event=job.event, attempt=1
        ),
    )
    sent = signed(job)
    with platform.db.read() as conn:
        raw_body = conn.execute(select(events.c.body).where(events.c.id == fresh.id)).scalar_one()
        raw_headers = conn.execute(
            select(deliveries.c.attempt_request_headers).where(deliveries.c.id == fresh.delivery_id)
        ).scalar_one()
    assert bytes(raw_body)[0] in (stored_body.ZSTD_V2, stored_body.RAW_DATA)
    assert raw_headers is not None
    assert bytes(raw_headers)[0] == stored_headers.PACKED_V1
    with platform.db.read() as conn:
        new = delivery_store.get(conn, fresh.delivery_id)
    assert new.body == job.body
    assert orjson.loads(new.attempt_log[0].request_headers or "") == sent

    # Down again: the old code's forms, the same values.
    downgrade(platform.db, "0003")
    with platform.db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT e.id, e.body, e.created_at, a.request_headers, a.event_id"
                " FROM events e JOIN deliveries d ON d.event_id = e.id"
                " JOIN attempts a ON a.delivery_id = d.id ORDER BY e.id"
            )
        ).all()
    by_id = {r.id: r for r in rows}
    assert bytes(by_id[EVENT_ID].body) == body
    assert by_id[EVENT_ID].request_headers == headers
    assert bytes(by_id[fresh.id].body) == job.body
    assert orjson.loads(by_id[fresh.id].request_headers) == sent
    assert {r.event_id for r in rows} == {EVENT_ID, fresh.id}
    if platform.db.engine.dialect.name == "sqlite":
        assert by_id[EVENT_ID].created_at == _old_time(platform, T0)
    else:
        assert by_id[EVENT_ID].created_at == T0
    upgrade(platform.db)  # and up again
    assert _detail(platform).body == body
