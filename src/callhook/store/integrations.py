"""Integrations: spec 002's webhook setting, which is the account's *primary* endpoint.

The ``GET/POST/DELETE /api/v2/webhooks…`` routes, the dashboard's Webhook page and
``callhook integration …`` read and change the setting through these functions, word for word
as before endpoints existed; they work on :func:`callhook.store.endpoints.primary`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from callhook.core.ids import RandomBits
from callhook.core.retry import RetryPolicy
from callhook.errors import IntegrationNotConfigured, InvalidRequest, UnknownEvent
from callhook.events.names import SUBSCRIBABLE_EVENTS
from callhook.store import endpoints as endpoint_store
from callhook.store.endpoints import ROTATION_OVERLAP, Endpoint, SigningSecret
from callhook.store.secretbox import SecretBox

__all__ = [
    "ROTATION_OVERLAP",
    "Integration",
    "SigningSecret",
    "active_secrets",
    "check_subscribable",
    "ensure",
    "get",
    "require_configured",
    "rotate_secret",
    "set_enabled",
    "set_retry_policy",
    "set_subscriptions",
    "set_url",
    "subscribe",
    "unsubscribe",
]


@dataclass(frozen=True, slots=True)
class Integration:
    """Spec 002's webhook setting: the primary endpoint seen as the one setting of the account.

    ``subscribed_events`` is in catalog order (every event when the endpoint takes all)."""

    account_id: str
    endpoint_id: str
    url: str | None
    enabled: bool
    retry_policy: RetryPolicy
    subscribed_events: tuple[str, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def configured(self) -> bool:
        return self.url is not None


def _of(endpoint: Endpoint) -> Integration:
    return Integration(
        account_id=endpoint.account_id,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        enabled=endpoint.enabled,
        retry_policy=endpoint.retry_policy,
        subscribed_events=SUBSCRIBABLE_EVENTS
        if endpoint.subscribed_events is None
        else endpoint.subscribed_events,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def check_subscribable(event: str) -> None:
    """``UnknownEvent`` unless ``event`` is in the catalog's subscribable events."""
    if event not in SUBSCRIBABLE_EVENTS:
        raise UnknownEvent(event)


def get(conn: Connection, account_id: str) -> Integration | None:
    """The account's webhook setting, or None when it has no primary endpoint yet."""
    endpoint = endpoint_store.primary(conn, account_id)
    return None if endpoint is None else _of(endpoint)


def require_configured(conn: Connection, account_id: str) -> Integration:
    """The integration, or spec 002's 404 when it has no webhook URL yet."""
    integration = get(conn, account_id)
    if integration is None or integration.url is None:
        raise IntegrationNotConfigured()
    return integration


def ensure(
    conn: Connection, account_id: str, *, now: datetime, box: SecretBox, rng: RandomBits
) -> Integration:
    """The account's integration, created (without URL, with a fresh secret) if missing."""
    return _of(endpoint_store.create_primary(conn, account_id, now=now, box=box, rng=rng))


def set_url(
    conn: Connection, account_id: str, url: str, *, now: datetime, box: SecretBox, rng: RandomBits
) -> Integration:
    """Set the webhook URL. The caller vets the URL first (``callhook.core.urlvet``)."""
    return _of(endpoint_store.set_primary_url(conn, account_id, url, now=now, box=box, rng=rng))


def set_enabled(conn: Connection, account_id: str, enabled: bool, *, now: datetime) -> Integration:
    """Enable or disable delivery; spec 002's 404 while not configured."""
    current = require_configured(conn, account_id)
    return _of(
        endpoint_store.update(conn, account_id, current.endpoint_id, enabled=enabled, now=now)
    )


def set_retry_policy(
    conn: Connection, account_id: str, policy: str, *, now: datetime
) -> Integration:
    """Set the retry policy (``InvalidRequest`` for an unknown one, checked first)."""
    try:
        RetryPolicy(policy)
    except ValueError:
        names = ", ".join(p.value for p in RetryPolicy)
        raise InvalidRequest(f"retry policy must be one of {names}") from None
    current = require_configured(conn, account_id)
    return _of(
        endpoint_store.update(conn, account_id, current.endpoint_id, retry_policy=policy, now=now)
    )


def _checked(conn: Connection, account_id: str, events: Iterable[str]) -> tuple[list[str], str]:
    """The distinct event names, all subscribable, and the configured primary endpoint's id —
    checked before anything is written."""
    names = list(dict.fromkeys(events))
    for name in names:
        check_subscribable(name)
    return names, require_configured(conn, account_id).endpoint_id


def subscribe(
    conn: Connection, account_id: str, events: Iterable[str], *, now: datetime
) -> Integration:
    """Subscribe events (idempotent). Unknown names raise ``UnknownEvent`` before any write."""
    names, endpoint_id = _checked(conn, account_id, events)
    return _of(endpoint_store.subscribe(conn, account_id, endpoint_id, names, now=now))


def unsubscribe(
    conn: Connection, account_id: str, events: Iterable[str], *, now: datetime
) -> Integration:
    """Unsubscribe events (idempotent)."""
    names, endpoint_id = _checked(conn, account_id, events)
    return _of(endpoint_store.unsubscribe(conn, account_id, endpoint_id, names, now=now))


def set_subscriptions(
    conn: Connection, account_id: str, events: Iterable[str], *, now: datetime
) -> Integration:
    """Replace the subscription set (the dashboard's checkboxes)."""
    names, endpoint_id = _checked(conn, account_id, events)
    return _of(
        endpoint_store.update(conn, account_id, endpoint_id, subscribed_events=names, now=now)
    )


def active_secrets(
    conn: Connection, account_id: str, *, now: datetime, box: SecretBox
) -> list[SigningSecret]:
    """Secrets that sign deliveries now, newest first (more than one during a rotation)."""
    endpoint = endpoint_store.primary(conn, account_id)
    if endpoint is None:
        return []
    return endpoint_store.active_secrets(conn, account_id, endpoint.id, now=now, box=box)


def rotate_secret(
    conn: Connection,
    account_id: str,
    *,
    now: datetime,
    box: SecretBox,
    rng: RandomBits,
    overlap: timedelta = ROTATION_OVERLAP,
) -> SigningSecret:
    """Make a new current secret; the previous ones keep signing for ``overlap``."""
    endpoint = endpoint_store.create_primary(conn, account_id, now=now, box=box, rng=rng)
    return endpoint_store.rotate_secret(
        conn, account_id, endpoint.id, now=now, box=box, rng=rng, overlap=overlap
    )
