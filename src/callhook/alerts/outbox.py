"""The alert sender: drains the alert outbox (``store.alerts``) on every channel, with retries.

Run as a watched side task of each worker (``delivery.sidetasks``), on the worker's event loop
but apart from delivery: it has its own HTTP session, claims its own rows, and does its
database work in threads, so an SMTP server that hangs or an alert receiver that is down only
delays alerts. Alerts due are claimed in small batches under a lease and sent concurrently,
each bounded by ``SEND_LIMIT``; a failed try is retried after ``payload.RETRY_DELAYS`` until
the alert is ``CALLHOOK_ALERT_RETRY_HOURS`` old, then given up (``failed``, counted, logged).
Several workers may run it against one database: the claim makes each try happen once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Self

from callhook.alerts import email, render, webhook
from callhook.alerts.config import AlertConfig, alert_config
from callhook.alerts.model import Alert, AlertStatus, Channel
from callhook.alerts.payload import dashboard_link, next_try_at
from callhook.core.clock import Clock
from callhook.core.ids import Randomness, new_id
from callhook.delivery.sender import Sender
from callhook.metrics import Metrics
from callhook.platform import Platform
from callhook.settings import Settings
from callhook.store import alerts as outbox
from callhook.store import users
from callhook.store.db import Database

log = logging.getLogger("callhook.alerts")

#: Alerts claimed at once (each claim is one short write transaction).
BATCH = 20
#: The longest one send may take, whatever the channel's own timeouts allow (seconds).
SEND_LIMIT = 120.0
#: How long a claim holds its alerts: past every send's limit, so no other sender takes an
#: alert still being sent.
LEASE = timedelta(seconds=3 * SEND_LIMIT)


class AlertSender:
    """Sends what ``record_alert`` recorded. ``run(stop)`` until stopped; ``drain_once`` for
    one pass (tests drive it with a fake clock)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock,
        rng: Randomness,
        metrics: Metrics | None = None,
        config: AlertConfig | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._rng = rng
        self._metrics = metrics
        self.config = config or alert_config(settings)
        self._tls: ssl.SSLContext | None = None
        self._http: Sender | None = None

    @classmethod
    def for_platform(cls, platform: Platform) -> Self:
        return cls(
            platform.db,
            platform.settings,
            clock=platform.clock,
            rng=platform.rng,
            metrics=platform.metrics,
        )

    async def __aenter__(self) -> Self:
        self._tls = email.tls_context(self._settings)
        self._http = await Sender(self._settings, clock=self._clock).__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.__aexit__(*exc_info)
            self._http = None

    async def run(self, stop: asyncio.Event) -> None:
        """Send alerts as they fall due until ``stop``; a pass that fails is logged and the
        next one follows after ``CALLHOOK_ALERT_POLL_INTERVAL``."""
        async with self:
            while not stop.is_set():
                try:
                    claimed = await self.drain_once()
                except Exception:
                    log.exception("alert pass failed; trying again")
                    claimed = 0
                if claimed < BATCH:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self.config.poll_interval)

    async def drain_once(self) -> int:
        """Claim the alerts due now and send each once; return how many were claimed."""
        assert self._http is not None, "use `async with AlertSender(...)`"
        now = self._clock.now()
        claim_id = new_id("clm", now, self._rng)
        claimed = await asyncio.to_thread(self._claim, claim_id, now)
        if claimed:
            await asyncio.gather(*(self._send_one(alert) for alert in claimed))
        return len(claimed)

    def _claim(self, claim_id: str, now: datetime) -> list[Alert]:
        with self._db.read() as conn:
            if not outbox.any_due(conn, now=now):
                return []
        with self._db.write() as conn:
            return outbox.claim_due(conn, claim_id=claim_id, now=now, lease=LEASE, limit=BATCH)

    async def _send_one(self, alert: Alert) -> None:
        try:
            try:
                result = await asyncio.wait_for(self._send(alert), timeout=SEND_LIMIT)
            except TimeoutError:
                result = f"not sent within {SEND_LIMIT:g} s"
            if isinstance(result, Skipped):
                await asyncio.to_thread(self._finish, alert, AlertStatus.SKIPPED, result.reason)
            else:
                await asyncio.to_thread(self._record, alert, result)
        except Exception:
            # Our own failure: the lease runs out and the alert is tried again then.
            log.exception("sending an alert failed", extra=_ids(alert))

    async def _send(self, alert: Alert) -> str | Skipped | None:
        """One try on the alert's channel: None when sent, ``Skipped`` when it cannot go out
        on this channel at all, else why this try failed."""
        link = dashboard_link(self.config.dashboard_url, alert)
        if alert.channel is Channel.WEBHOOK:
            if self.config.webhook is None:
                return Skipped("no CALLHOOK_OPERATIONAL_WEBHOOK_URL")
            assert self._http is not None
            return await webhook.send(
                self._http, self.config.webhook, alert, link=link, now=self._clock.now()
            )
        if self.config.smtp is None:
            return Skipped("no CALLHOOK_SMTP_HOST")
        recipients = await asyncio.to_thread(self._recipients, alert.account_id)
        if not recipients:
            return Skipped("the account has no dashboard users")
        msg = render.message(
            alert, sender=self.config.smtp.sender, recipients=recipients, link=link
        )
        assert self._tls is not None
        return await email.send(self.config.smtp, msg, tls=self._tls)

    def _recipients(self, account_id: str) -> list[str]:
        with self._db.read() as conn:
            return users.emails(conn, account_id)

    def _record(self, alert: Alert, error: str | None) -> None:
        """Write the try's outcome: sent, retried later, or given up; count and log it."""
        if error is None:
            self._finish(alert, AlertStatus.SENT, None)
            return
        now = self._clock.now()
        when = next_try_at(
            attempts=alert.attempts,
            created_at=alert.created_at,
            now=now,
            horizon=self.config.retry_horizon,
        )
        if when is None:
            self._finish(alert, AlertStatus.FAILED, error)
            return
        with self._db.write() as conn:
            held = outbox.retry_at(conn, alert, when, error=error)
        self._count("alert_failures", alert)
        if held:
            log.warning(
                "alert not sent; will retry",
                extra={**_ids(alert), "error": error, "next_attempt_at": when.isoformat()},
            )

    def _finish(self, alert: Alert, status: AlertStatus, error: str | None) -> None:
        with self._db.write() as conn:
            held = outbox.finish(conn, alert, status, now=self._clock.now(), error=error)
        if not held:
            log.warning("alert lease lost to another sender", extra=_ids(alert))
            return
        if status is AlertStatus.SENT:
            self._count("alerts_sent", alert)
            log.info("alert sent", extra=_ids(alert))
        elif status is AlertStatus.FAILED:
            self._count("alert_failures", alert)
            self._count("alerts_abandoned", alert)
            log.error("alert given up", extra={**_ids(alert), "error": error})
        else:
            log.info("alert skipped", extra={**_ids(alert), "reason": error})

    def _count(self, name: str, alert: Alert) -> None:
        if self._metrics is not None:
            getattr(self._metrics, name).labels(str(alert.channel), str(alert.kind)).inc()


@dataclass(frozen=True, slots=True)
class Skipped:
    """The alert cannot go out on this channel at all (not a failure to retry)."""

    reason: str


def _ids(alert: Alert) -> dict[str, object]:
    return {
        "alert_id": alert.id,
        "channel": str(alert.channel),
        "kind": str(alert.kind),
        "account_id": alert.account_id,
        "endpoint_id": alert.endpoint_id,
        "attempt": alert.attempts,
    }
