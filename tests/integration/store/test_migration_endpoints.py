"""Migration 0003 on both backends, with data: each account's integration becomes its primary
endpoint (URL, enabled, retry policy, subscriptions, secrets) and its deliveries and attempts
hang off it; afterwards the store reads and writes it as usual, and downgrade gives it back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store import integrations as integration_store
from callhook.store.migrate import downgrade, upgrade
from tests import factories

T0 = FakeClock().now()
ACC_A = "acc_01KF0K8Y2000000000000000AA"
ACC_B = "acc_01KF0K8Y2000000000000000BB"
ACC_C = "acc_01KF0K8Y2000000000000000CC"  # an integration without URL, no deliveries


@pytest.fixture
def old_platform(backend: str, tmp_path: Path) -> Platform:
    """A platform whose database is at revision 0002, holding the old shape's data."""
    platform = Platform.create(factories.make_settings(tmp_path), clock=FakeClock())
    factories._created.append(platform)
    upgrade(platform.db, "0002")
    box = platform.box
    later = T0 + timedelta(hours=1)
    with platform.db.write() as conn:
        for acc in (ACC_A, ACC_B, ACC_C):
            conn.execute(
                text("INSERT INTO accounts (id, name, created_at) VALUES (:id, 'n', :at)"),
                {"id": acc, "at": T0},
            )
        conn.execute(
            text(
                "INSERT INTO integrations (account_id, url, enabled, retry_policy, created_at,"
                " updated_at) VALUES (:a, :url, :en, :rp, :t0, :t1)"
            ),
            [
                {**row, "t0": T0, "t1": later}
                for row in (
                    {"a": ACC_A, "url": "https://a.example.com/h", "en": True, "rp": "exponential"},
                    {"a": ACC_B, "url": "https://b.example.com/h", "en": False, "rp": "none"},
                    {"a": ACC_C, "url": None, "en": True, "rp": "exponential"},
                )
            ],
        )
        conn.execute(
            text("INSERT INTO subscriptions (account_id, event, created_at) VALUES (:a, :e, :t)"),
            [
                {"a": ACC_A, "e": "incoming_call_start", "t": T0},
                {"a": ACC_A, "e": "voicemail", "t": T0},
                {"a": ACC_B, "e": "sms", "t": T0},
            ],
        )
        conn.execute(
            text(
                "INSERT INTO integration_secrets (id, account_id, secret_encrypted, created_at,"
                " expires_at) VALUES (:id, :a, :s, :t, :x)"
            ),
            [
                {"id": "sec_a1", "a": ACC_A, "s": box.encrypt("whsec_old_a"), "t": T0, "x": later},
                {
                    "id": "sec_a2",
                    "a": ACC_A,
                    "s": box.encrypt("whsec_new_a"),
                    "t": T0 + timedelta(seconds=1),
                    "x": None,
                },
                {"id": "sec_b1", "a": ACC_B, "s": box.encrypt("whsec_b"), "t": T0, "x": None},
            ],
        )
        for n, acc in enumerate((ACC_A, ACC_A, ACC_B)):
            conn.execute(
                text(
                    "INSERT INTO events (id, account_id, event, pbx_id, created_at, body)"
                    " VALUES (:id, :a, 'sms', :p, :t, :b)"
                ),
                {"id": f"evt_{n}", "a": acc, "p": f"p{n}", "t": T0, "b": b"{}"},
            )
            conn.execute(
                text(
                    "INSERT INTO deliveries (id, event_id, account_id, event, status, attempts,"
                    " created_at, window_start, next_attempt_at, delivered_at)"
                    " VALUES (:id, :e, :a, 'sms', :s, :n, :t, :t, :nx, :d)"
                ),
                {
                    "id": f"dlv_{n}",
                    "e": f"evt_{n}",
                    "a": acc,
                    "s": "delivered" if n == 0 else "pending",
                    "n": 1 if n == 0 else 0,
                    "t": T0,
                    "nx": None if n == 0 else T0,
                    "d": T0 if n == 0 else None,
                },
            )
        conn.execute(
            text(
                "INSERT INTO attempts (delivery_id, event_id, number, started_at, duration_ms,"
                " status_code) VALUES ('dlv_0', 'evt_0', 1, :t, 12.5, 200)"
            ),
            {"t": T0},
        )
    return platform


def _primary(platform: Platform, account_id: str) -> endpoint_store.Endpoint:
    with platform.db.read() as conn:
        endpoint = endpoint_store.primary(conn, account_id)
    assert endpoint is not None
    return endpoint


def test_integrations_become_primary_endpoints_with_their_data(old_platform: Platform) -> None:
    platform = old_platform
    upgrade(platform.db)  # through 0003 and every later migration: the data stays
    a, b, c = (_primary(platform, acc) for acc in (ACC_A, ACC_B, ACC_C))
    assert (a.id, a.url, a.enabled, a.retry_policy) == (
        "ep_01KF0K8Y2000000000000000AA",
        "https://a.example.com/h",
        True,
        "exponential",
    )
    assert a.subscribed_events == ("incoming_call_start", "voicemail")
    assert a.created_at == T0
    assert a.updated_at == T0 + timedelta(hours=1)
    assert (b.url, b.enabled, b.retry_policy, b.subscribed_events) == (
        "https://b.example.com/h",
        False,
        "none",
        ("sms",),
    )
    assert (c.url, c.subscribed_events) == (None, ())
    assert all(e.primary and e.state == "active" for e in (a, b, c))
    with platform.db.read() as conn:
        secrets_a = endpoint_store.active_secrets(conn, ACC_A, a.id, now=T0, box=platform.box)
        secrets_b = integration_store.active_secrets(conn, ACC_B, now=T0, box=platform.box)
        spec = integration_store.require_configured(conn, ACC_A)
        for n, endpoint in enumerate((a, a, b)):
            delivery = delivery_store.get(conn, f"dlv_{n}")
            assert delivery.endpoint_id == endpoint.id
        first = delivery_store.get(conn, "dlv_0")
    assert [s.secret for s in secrets_a] == ["whsec_new_a", "whsec_old_a"]
    assert [s.secret for s in secrets_b] == ["whsec_b"]
    assert spec.url == "https://a.example.com/h"
    assert spec.endpoint_id == a.id
    assert first.status == "delivered"
    assert [x.status_code for x in first.attempt_log] == [200]

    # The migrated data works as new data does: another endpoint, a publish fanning out.
    with platform.db.write() as conn:
        extra = endpoint_store.create(
            conn,
            ACC_A,
            url="https://crm.example.com/",
            subscribed_events=["incoming_call_start"],
            limit=20,
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
        )
    published = factories.publish_sample(platform, ACC_A, "incoming_call_start")
    with platform.db.read() as conn:
        targets = {delivery_store.get(conn, d).endpoint_id for d in published.delivery_ids}
    assert targets == {a.id, extra.id}


def test_downgrade_gives_the_primary_endpoints_back_as_integrations(
    old_platform: Platform,
) -> None:
    platform = old_platform
    upgrade(platform.db)
    with platform.db.write() as conn:
        endpoint_store.create(
            conn,
            ACC_A,
            url="https://crm.example.com/",
            subscribed_events=None,
            limit=20,
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
        )
    factories.publish_sample(platform, ACC_A, "voicemail")  # one delivery each
    downgrade(platform.db, "0002")
    with platform.db.read() as conn:
        rows = conn.execute(
            text("SELECT account_id, url, enabled, retry_policy FROM integrations ORDER BY 1")
        ).all()
        subs = conn.execute(
            text("SELECT event FROM subscriptions WHERE account_id = :a ORDER BY 1"), {"a": ACC_A}
        ).scalars()
        secrets = conn.execute(
            text("SELECT id FROM integration_secrets WHERE account_id = :a ORDER BY 1"),
            {"a": ACC_A},
        ).scalars()
        per_account = conn.execute(
            text("SELECT account_id, count(*) FROM deliveries GROUP BY account_id ORDER BY 1")
        ).all()
    assert [tuple(r) for r in rows] == [
        (ACC_A, "https://a.example.com/h", True, "exponential"),
        (ACC_B, "https://b.example.com/h", False, "none"),
        (ACC_C, None, True, "exponential"),
    ]
    assert list(subs) == ["incoming_call_start", "voicemail"]
    assert list(secrets) == ["sec_a1", "sec_a2"]
    assert [tuple(r) for r in per_account] == [(ACC_A, 3), (ACC_B, 1)]  # the CRM's is gone
    upgrade(platform.db)  # and up again
    assert _primary(platform, ACC_A).url == "https://a.example.com/h"
