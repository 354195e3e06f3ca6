"""The alert outbox end to end: recorded in the state machine's transaction, sent once per
channel to a real local SMTP server (aiosmtpd, STARTTLS with a trustme certificate, AUTH) and
a real local HTTPS receiver that verifies the signature; retried while a channel is down."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from callhook.alerts import AlertKind, AlertStatus
from callhook.alerts.outbox import AlertSender
from callhook.alerts.payload import RETRY_DELAYS
from callhook.core.clock import FakeClock, rfc3339_seconds
from callhook.platform import Platform
from callhook.signing import (
    WebhookVerificationError,
    generate_secret,
    verify_callhook,
    verify_standard,
)
from callhook.store import alerts as outbox
from tests.factories import make_account, make_platform, make_user
from tests.support.receiver import Receiver, Tls, free_port
from tests.support.smtp import smtp_server

OPS_SECRET = generate_secret()
LOGIN = ("callhook", "smtp-password-1")
FAILING_AT = "2026-01-15T10:30:00Z"


def _failing(platform: Platform, endpoint_id: str, account_id: str, **data: Any) -> bool:
    with platform.db.write() as conn:
        return outbox.record_alert(
            conn,
            AlertKind.ENDPOINT_FAILING,
            account_id,
            endpoint_id,
            {"transition_at": FAILING_AT, "url": "https://pbx.example.com/hook", **data},
            platform.clock.now(),
        )


def _rows(platform: Platform, endpoint_id: str) -> list[dict[str, Any]]:
    with platform.db.read() as conn:
        return outbox.for_endpoint(conn, endpoint_id)


def _by_channel(platform: Platform, endpoint_id: str) -> dict[str, dict[str, Any]]:
    return {row["channel"]: row for row in _rows(platform, endpoint_id)}


def _count(platform: Platform, name: str, **labels: str) -> float:
    value = platform.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def _alerting_platform(tmp_path: Path, tls: Tls, clock: FakeClock, **overrides: Any) -> Platform:
    settings: dict[str, Any] = {
        "ca_bundle": tls.ca_path,
        "public_url": "https://callhook.example",
        "smtp_host": "127.0.0.1",
        "smtp_from": "Callhook <alerts@callhook.example>",
        "smtp_username": LOGIN[0],
        "smtp_password": LOGIN[1],
        "smtp_timeout": 5.0,
    }
    settings.update(overrides)
    return make_platform(tmp_path, clock=clock, **settings)


# --- recording ---------------------------------------------------------------------------------
def test_a_transition_is_recorded_once_per_channel(
    platform_factory: Callable[..., Platform],
) -> None:
    platform = platform_factory(clock=FakeClock())
    account = make_account(platform)
    assert _failing(platform, "ep_1", account.id) is True
    # The same transition again (a retried transaction, another worker): nothing new.
    assert _failing(platform, "ep_1", account.id, reason="seen twice") is False
    rows = _rows(platform, "ep_1")
    assert sorted(r["channel"] for r in rows) == ["email", "webhook"]
    assert {r["status"] for r in rows} == {"pending"}
    assert len({r["id"] for r in rows}) == 1
    assert "reason" not in rows[0]["data"]
    # A later failing spell is another transition, so another alert.
    platform.clock.advance(86400)  # type: ignore[attr-defined]
    with platform.db.write() as conn:
        assert outbox.record_alert(
            conn,
            AlertKind.ENDPOINT_FAILING,
            account.id,
            "ep_1",
            {"transition_at": "2026-01-16T10:30:00Z"},
            platform.clock.now(),
        )
    assert len(_rows(platform, "ep_1")) == 4


def test_a_repeat_does_not_spoil_the_callers_transaction(
    platform_factory: Callable[..., Platform],
) -> None:
    """The state machine records in its own transaction: a repeat must not abort it (no
    IntegrityError, which PostgreSQL would follow with 'current transaction is aborted')."""
    platform = platform_factory(clock=FakeClock())
    account = make_account(platform)
    now = platform.clock.now()
    with platform.db.write() as conn:
        data = {"transition_at": FAILING_AT}
        assert outbox.record_alert(conn, AlertKind.ENDPOINT_FAILING, account.id, "ep_1", data, now)
        assert not outbox.record_alert(
            conn, AlertKind.ENDPOINT_FAILING, account.id, "ep_1", data, now
        )
        assert outbox.record_alert(
            conn, AlertKind.DELIVERY_EXHAUSTED, account.id, "ep_1", {"delivery_id": "dlv_1"}, now
        )
    assert len(_rows(platform, "ep_1")) == 4


def test_an_alert_rolls_back_with_its_transition(
    platform_factory: Callable[..., Platform],
) -> None:
    platform = platform_factory(clock=FakeClock())
    account = make_account(platform)

    def transition_that_fails() -> None:
        with platform.db.write() as conn:
            outbox.record_alert(
                conn,
                AlertKind.ENDPOINT_DISABLED,
                account.id,
                "ep_1",
                {"transition_at": FAILING_AT},
                platform.clock.now(),
            )
            raise RuntimeError("the transition failed")

    with pytest.raises(RuntimeError):
        transition_that_fails()
    assert _rows(platform, "ep_1") == []


def test_a_claim_holds_its_alerts_until_the_lease_ends(
    platform_factory: Callable[..., Platform],
) -> None:
    from callhook.alerts.model import AlertStatus as Status
    from callhook.alerts.outbox import LEASE

    platform = platform_factory(clock=FakeClock())
    account = make_account(platform)
    _failing(platform, "ep_1", account.id)
    clock: FakeClock = platform.clock  # type: ignore[assignment]
    with platform.db.write() as conn:
        first = outbox.claim_due(conn, claim_id="clm_a", now=clock.now(), lease=LEASE, limit=10)
        again = outbox.claim_due(conn, claim_id="clm_b", now=clock.now(), lease=LEASE, limit=10)
    assert len(first) == 2
    assert again == []
    assert {a.attempts for a in first} == {1}
    clock.advance(LEASE.total_seconds() + 1)
    with platform.db.write() as conn:
        taken = outbox.claim_due(conn, claim_id="clm_c", now=clock.now(), lease=LEASE, limit=10)
        # The first claim's outcome is refused: another sender holds the alert now.
        assert not outbox.finish(conn, first[0], Status.SENT, now=clock.now())
        assert all(outbox.finish(conn, a, Status.SENT, now=clock.now()) for a in taken)
    assert {a.attempts for a in taken} == {2}
    assert {r["status"] for r in _rows(platform, "ep_1")} == {"sent"}


# --- sending -----------------------------------------------------------------------------------
async def test_each_channel_sends_once_signed_with_the_dashboard_link(
    tmp_path: Path, tls: Tls
) -> None:
    clock = FakeClock()
    receiver = await Receiver(tls.server_context()).start()
    try:
        with smtp_server(tls=tls, login=LOGIN) as (mailbox, port):
            platform = _alerting_platform(
                tmp_path,
                tls,
                clock,
                smtp_port=port,
                operational_webhook_url=receiver.url,
                operational_webhook_secret=OPS_SECRET,
            )
            account = make_account(platform)
            make_user(platform, account.id, "ana@pbx.example.com")
            make_user(platform, account.id, "bo@pbx.example.com")
            assert _failing(platform, "ep_1", account.id, reason="HTTP 503")
            assert _failing(platform, "ep_1", account.id) is False
            async with AlertSender.for_platform(platform) as sender:
                assert await sender.drain_once() == 2
                clock.advance(3600)
                assert await sender.drain_once() == 0
    finally:
        await receiver.stop()

    [mail] = mailbox.mails
    assert mailbox.logins == ["callhook"]
    assert sorted(mail.rcpt_tos) == ["ana@pbx.example.com", "bo@pbx.example.com"]
    assert mail.message["Subject"] == "[Callhook] Endpoint https://pbx.example.com/hook is failing"
    text = mail.message.get_content()
    assert "https://callhook.example/dashboard/endpoints/ep_1" in text
    assert "HTTP 503" in text

    [hook] = receiver.received
    sent_at = clock.now().timestamp() - 3600
    # Signed like every delivery, in both schemes, with the operational secret.
    verify_callhook(hook.headers, hook.body, [OPS_SECRET], now=sent_at)
    verify_standard(hook.headers, hook.body, [OPS_SECRET], now=sent_at)
    with pytest.raises(WebhookVerificationError):
        verify_callhook(hook.headers, hook.body, [generate_secret()], now=sent_at)
    lowered = {k.lower(): v for k, v in hook.headers.items()}
    body = orjson.loads(hook.body)
    assert hook.headers["X-Webhook-Event"] == "endpoint.failing"
    assert lowered["webhook-id"] == body["id"]
    assert body["event"] == "endpoint.failing"
    assert body["endpoint_id"] == "ep_1"
    assert body["account_id"] == account.id
    assert body["dashboard_url"] == "https://callhook.example/dashboard/endpoints/ep_1"
    assert body["data"]["reason"] == "HTTP 503"

    rows = _by_channel(platform, "ep_1")
    assert rows["email"]["status"] == rows["webhook"]["status"] == "sent"
    for channel in ("email", "webhook"):
        assert (
            _count(platform, "callhook_alerts_sent_total", channel=channel, kind="endpoint.failing")
            == 1
        )


async def test_mail_waits_while_the_smtp_server_is_down_and_goes_once_it_is_up(
    tmp_path: Path, tls: Tls
) -> None:
    clock = FakeClock()
    port = free_port()
    receiver = await Receiver(tls.server_context()).start()
    try:
        platform = _alerting_platform(
            tmp_path,
            tls,
            clock,
            smtp_port=port,
            operational_webhook_url=receiver.url,
            operational_webhook_secret=OPS_SECRET,
        )
        account = make_account(platform)
        make_user(platform, account.id, "ana@pbx.example.com")
        _failing(platform, "ep_1", account.id)
        async with AlertSender.for_platform(platform) as sender:
            # Nothing listens on the SMTP port: the mail waits, the webhook does not.
            assert await sender.drain_once() == 2
            rows = _by_channel(platform, "ep_1")
            assert rows["webhook"]["status"] == "sent"
            assert rows["email"]["status"] == "pending"
            assert (
                "ConnectionRefused" in rows["email"]["last_error"]
                or "onnect" in (rows["email"]["last_error"])
            )
            assert (
                _count(
                    platform,
                    "callhook_alert_send_failures_total",
                    channel="email",
                    kind="endpoint.failing",
                )
                == 1
            )
            with smtp_server(port=port, tls=tls, login=LOGIN) as (mailbox, _):
                # Not due yet: nothing is tried before the back-off ends.
                clock.advance(RETRY_DELAYS[0] - 1)
                assert await sender.drain_once() == 0
                clock.advance(1)
                assert await sender.drain_once() == 1
                clock.advance(7 * 86400)
                assert await sender.drain_once() == 0
    finally:
        await receiver.stop()
    assert len(mailbox.mails) == 1
    assert len(receiver.received) == 1
    rows = _by_channel(platform, "ep_1")
    assert rows["email"]["status"] == "sent"
    assert rows["email"]["attempts"] == 2


async def test_an_alert_is_given_up_after_the_retry_horizon(tmp_path: Path, tls: Tls) -> None:
    clock = FakeClock()
    platform = _alerting_platform(tmp_path, tls, clock, smtp_port=free_port(), alert_retry_hours=1)
    account = make_account(platform)
    make_user(platform, account.id, "ana@pbx.example.com")
    _failing(platform, "ep_1", account.id)
    tries = 0
    async with AlertSender.for_platform(platform) as sender:
        for _ in range(2 * 3600 // 30):
            tries += await sender.drain_once()
            clock.advance(30)
    rows = _by_channel(platform, "ep_1")
    assert rows["email"]["status"] == "failed"
    # Tries at 0 s, 30 s, 1.5, 3.5, 8.5, 18.5 and 48.5 min; the next would be past the hour.
    assert rows["email"]["attempts"] == 7
    assert rows["webhook"]["status"] == "skipped"
    assert rows["webhook"]["last_error"] == "no CALLHOOK_OPERATIONAL_WEBHOOK_URL"
    assert tries == 1 + 7
    labels = {"channel": "email", "kind": "endpoint.failing"}
    assert _count(platform, "callhook_alerts_abandoned_total", **labels) == 1
    assert _count(platform, "callhook_alert_send_failures_total", **labels) == 7


async def test_an_account_without_dashboard_users_gets_no_mail(tmp_path: Path, tls: Tls) -> None:
    clock = FakeClock()
    with smtp_server(tls=tls, login=LOGIN) as (mailbox, port):
        platform = _alerting_platform(tmp_path, tls, clock, smtp_port=port)
        account = make_account(platform)
        _failing(platform, "ep_1", account.id)
        async with AlertSender.for_platform(platform) as sender:
            await sender.drain_once()
    assert mailbox.mails == []
    rows = _by_channel(platform, "ep_1")
    assert rows["email"]["status"] == "skipped"
    assert rows["email"]["last_error"] == "the account has no dashboard users"


async def test_a_refusing_alert_receiver_gets_the_same_alert_again(
    tmp_path: Path, tls: Tls
) -> None:
    answers = [503, 200]

    async def flaky(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=answers.pop(0))

    clock = FakeClock()
    receiver = await Receiver(tls.server_context(), behaviour=flaky).start()
    try:
        platform = make_platform(
            tmp_path,
            clock=clock,
            ca_bundle=tls.ca_path,
            operational_webhook_url=receiver.url,
            operational_webhook_secret=OPS_SECRET,
        )
        account = make_account(platform)
        _failing(platform, "ep_1", account.id)
        async with AlertSender.for_platform(platform) as sender:
            await sender.drain_once()
            assert _by_channel(platform, "ep_1")["webhook"]["last_error"] == (
                "HTTP 503 from the operational webhook URL"
            )
            clock.advance(RETRY_DELAYS[0])
            await sender.drain_once()
    finally:
        await receiver.stop()
    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert (first.headers["X-Webhook-Attempt"], second.headers["X-Webhook-Attempt"]) == ("1", "2")
    assert _by_channel(platform, "ep_1")["webhook"]["status"] == AlertStatus.SENT


def test_retention_prunes_finished_alerts_and_keeps_pending_ones(
    platform_factory: Callable[..., Platform],
) -> None:
    from callhook.store.prune import prune

    platform = platform_factory(clock=FakeClock())
    clock: FakeClock = platform.clock  # type: ignore[assignment]
    account = make_account(platform)
    _failing(platform, "ep_1", account.id)
    with platform.db.write() as conn:
        for alert in outbox.claim_due(
            conn, claim_id="clm_a", now=clock.now(), lease=timedelta(minutes=1), limit=10
        ):
            if alert.channel == "email":
                outbox.finish(conn, alert, AlertStatus.SENT, now=clock.now())
    clock.advance(31 * 86400)
    report = prune(platform.db, now=clock.now(), older_than=timedelta(days=30))
    assert report.alerts == 1
    assert [r["channel"] for r in _rows(platform, "ep_1")] == ["webhook"]


async def test_failing_warnings_disabled_recovered_each_sent_once_on_each_channel(
    tmp_path: Path, tls: Tls
) -> None:
    """What the state machine will do, hour by hour with a fake clock: record each transition
    once its time has come — and again on every later tick, the worst case of re-evaluation;
    each alert goes out once per channel, in order."""
    clock = FakeClock()
    start = clock.now()

    def at(hours: int) -> str:
        return rfc3339_seconds(start + timedelta(hours=hours))

    disable_at = at(120)
    timeline = [
        (0, AlertKind.ENDPOINT_FAILING),
        (96, AlertKind.ENDPOINT_DISABLE_WARNING),  # 24 h before disabling
        (119, AlertKind.ENDPOINT_DISABLE_WARNING),  # 1 h before
        (120, AlertKind.ENDPOINT_DISABLED),
        (130, AlertKind.ENDPOINT_RECOVERED),
    ]
    receiver = await Receiver(tls.server_context()).start()
    try:
        with smtp_server(tls=tls, login=LOGIN) as (mailbox, port):
            platform = _alerting_platform(
                tmp_path,
                tls,
                clock,
                smtp_port=port,
                operational_webhook_url=receiver.url,
                operational_webhook_secret=OPS_SECRET,
            )
            account = make_account(platform)
            make_user(platform, account.id, "ana@pbx.example.com")
            new = 0
            async with AlertSender.for_platform(platform) as sender:
                for hour in range(140):
                    clock.set(start + timedelta(hours=hour))
                    with platform.db.write() as conn:
                        for since, kind in timeline:
                            if since > hour:
                                continue
                            data = {
                                "transition_at": at(since),
                                "url": "https://pbx.example.com/hook",
                                "disable_at": disable_at,
                            }
                            new += outbox.record_alert(
                                conn, kind, account.id, "ep_1", data, clock.now()
                            )
                    await sender.drain_once()
    finally:
        await receiver.stop()

    assert new == len(timeline)
    kinds = [str(kind) for _, kind in timeline]
    assert [orjson.loads(r.body)["event"] for r in receiver.received] == kinds
    assert [m.message["X-Callhook-Alert"] for m in mailbox.mails] == kinds
    subjects = [m.message["Subject"] for m in mailbox.mails]
    assert (
        subjects[1]
        == subjects[2]
        == (
            "[Callhook] Endpoint https://pbx.example.com/hook will be disabled on "
            f"{disable_at} unless it recovers"
        )
    )
