"""The pure part of alerting: which alerts are the same one (the dedupe key), the alert's id,
the operational webhook's body, the dashboard link, and when a failed send is tried again.

No I/O and no clock: times are passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from callhook.alerts.model import Alert, AlertKind
from callhook.core.clock import rfc3339_seconds

#: The ``data`` field that says which transition an endpoint alert is about: the time the
#: transition happened (for ``endpoint.disable_warning``, the time the warning fell due), as
#: RFC 3339 text. The same transition recorded twice (a retried transaction, two workers that
#: both saw it) carries the same value, so it is one alert; a later failing spell has another.
TRANSITION_AT = "transition_at"
#: The ``data`` field that names the delivery a ``delivery.exhausted`` alert is about.
DELIVERY_ID = "delivery_id"
#: Longest dedupe key stored (the outbox column's width).
MAX_KEY_LENGTH = 200

#: The dashboard page an endpoint alert links to, and the one a delivery alert links to.
ENDPOINT_PAGE = "/dashboard/endpoints/{endpoint_id}"
DELIVERY_PAGE = "/dashboard/deliveries/{delivery_id}"

#: Waits between the tries of one alert on one channel, in seconds; the last repeats until
#: the alert is older than the retry horizon (``CALLHOOK_ALERT_RETRY_HOURS``).
RETRY_DELAYS: tuple[float, ...] = (30, 60, 120, 300, 600, 1800, 3600)


def dedupe_key(kind: AlertKind, endpoint_id: str, data: Mapping[str, Any]) -> str:
    """The key that makes an alert happen at most once: endpoint + transition.

    Endpoint kinds use ``data["transition_at"]``; ``delivery.exhausted`` uses
    ``data["delivery_id"]`` (one alert per delivery that failed for good). Raises
    ``ValueError`` when that field is missing or not text, or the key would be longer than
    ``MAX_KEY_LENGTH``: a caller bug, which would otherwise send the alert on every call.
    """
    field = DELIVERY_ID if kind is AlertKind.DELIVERY_EXHAUSTED else TRANSITION_AT
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"a {kind} alert needs data[{field!r}] as text, to tell repeats apart")
    key = f"{endpoint_id}|{kind}|{value}"
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"alert dedupe key longer than {MAX_KEY_LENGTH} characters")
    return key


def alert_id(key: str) -> str:
    """The alert's id, derived from its dedupe key (so a repeat gets the same id):
    ``alt_`` + 32 hex characters of SHA-256."""
    return "alt_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def dashboard_link(base_url: str, alert: Alert) -> str:
    """The dashboard page about ``alert``: the delivery for ``delivery.exhausted``, else the
    endpoint. ``base_url`` is ``CALLHOOK_PUBLIC_URL`` (no trailing slash needed)."""
    delivery_id = alert.data.get(DELIVERY_ID)
    if alert.kind is AlertKind.DELIVERY_EXHAUSTED and isinstance(delivery_id, str):
        path = DELIVERY_PAGE.format(delivery_id=delivery_id)
    else:
        path = ENDPOINT_PAGE.format(endpoint_id=alert.endpoint_id)
    return base_url.rstrip("/") + path


def webhook_body(alert: Alert, *, link: str) -> bytes:
    """The operational webhook's JSON body (the same on every try, so a receiver may dedupe
    on ``id``)::

        {"id": "alt_…", "event": "endpoint.failing", "timestamp": "2026-01-15T10:30:00Z",
         "account_id": "acc_…", "endpoint_id": "ep_…", "dashboard_url": "https://…",
         "data": {…what the state machine recorded…}}
    """
    return orjson.dumps(
        {
            "id": alert.id,
            "event": str(alert.kind),
            "timestamp": rfc3339_seconds(alert.created_at),
            "account_id": alert.account_id,
            "endpoint_id": alert.endpoint_id,
            "dashboard_url": link,
            "data": alert.data,
        }
    )


def next_try_at(
    *, attempts: int, created_at: datetime, now: datetime, horizon: timedelta
) -> datetime | None:
    """When to try again after the ``attempts``-th failed try (1 for the first), or None to
    give up: the next try would fall after ``created_at + horizon``."""
    delay = RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1]
    when = now + timedelta(seconds=delay)
    if when > created_at + horizon:
        return None
    return when
