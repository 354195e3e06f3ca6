"""The nouns of alerting: what an alert is about (``AlertKind``), where it goes (``Channel``),
how far its sending got (``AlertStatus``), and the ``Alert`` itself. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class AlertKind(StrEnum):
    """What happened. The names are the ``event`` of an operational webhook (issue 15)."""

    ENDPOINT_FAILING = "endpoint.failing"
    ENDPOINT_DISABLE_WARNING = "endpoint.disable_warning"
    ENDPOINT_DISABLED = "endpoint.disabled"
    ENDPOINT_RECOVERED = "endpoint.recovered"
    DELIVERY_EXHAUSTED = "delivery.exhausted"


class Channel(StrEnum):
    """Where an alert is sent. Every alert is recorded once per channel, each with its own
    retries, so an SMTP server that is down does not hold back the operational webhook."""

    WEBHOOK = "webhook"
    EMAIL = "email"


class AlertStatus(StrEnum):
    """``pending`` (waiting for its next try) → ``sent``; or ``failed`` (gave up after
    ``CALLHOOK_ALERT_RETRY_HOURS``); or ``skipped`` (the channel is not configured, or the
    account has no dashboard user to mail)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert on one channel, as the outbox holds it.

    ``id`` is the same on every channel and on every try (receivers dedupe on it: it is the
    webhook's ``webhook-id`` and part of the mail's ``Message-ID``). ``data`` is what the
    state machine recorded (JSON values); ``attempts`` counts the tries made before this one.
    """

    id: str
    channel: Channel
    kind: AlertKind
    account_id: str
    endpoint_id: str
    data: dict[str, Any]
    created_at: datetime
    attempts: int = 0
    claim_id: str | None = None
