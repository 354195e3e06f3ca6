"""Integrations: an account's webhook setting (URL, enabled, retry policy, events, secrets)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, func, select, update

from callhook.core.ids import RandomBits, new_id
from callhook.core.retry import RETRY_POLICIES
from callhook.errors import IntegrationNotConfigured, InvalidRequest, UnknownEvent
from callhook.events.names import SUBSCRIBABLE_EVENTS
from callhook.signing import generate_secret
from callhook.store import dialect
from callhook.store.secretbox import SecretBox
from callhook.store.tables import accounts, integration_secrets, integrations, subscriptions

ROTATION_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Integration:
    account_id: str
    url: str | None
    enabled: bool
    retry_policy: str
    subscribed_events: tuple[str, ...]  # in catalog order
    created_at: datetime
    updated_at: datetime

    @property
    def configured(self) -> bool:
        return self.url is not None


@dataclass(frozen=True, slots=True)
class SigningSecret:
    id: str
    secret: str
    created_at: datetime
    expires_at: datetime | None


def _order(events: Iterable[str]) -> tuple[str, ...]:
    wanted = set(events)
    return tuple(e for e in SUBSCRIBABLE_EVENTS if e in wanted)


def check_subscribable(event: str) -> None:
    if event not in SUBSCRIBABLE_EVENTS:
        raise UnknownEvent(event)


def get(conn: Connection, account_id: str) -> Integration | None:
    row = conn.execute(select(integrations).where(integrations.c.account_id == account_id)).first()
    if row is None:
        return None
    events = conn.execute(
        select(subscriptions.c.event).where(subscriptions.c.account_id == account_id)
    ).scalars()
    return Integration(
        account_id=account_id,
        url=row.url,
        enabled=bool(row.enabled),
        retry_policy=row.retry_policy,
        subscribed_events=_order(events),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# One query for every account of a batch, built once: with an expanding IN list SQLAlchemy
# neither rebuilds nor re-keys it per call. The subscribed events come joined into one string
# per account (group_concat / string_agg; event names have no commas): a row per subscription,
# 14 per account, cost more to fetch than the query itself (profiled).
_PUBLISH_TARGETS = (
    select(
        accounts.c.id.label("known_account_id"),
        integrations,
        func.aggregate_strings(subscriptions.c.event, ",").label("subscribed"),
    )
    .select_from(
        accounts.outerjoin(integrations, integrations.c.account_id == accounts.c.id).outerjoin(
            subscriptions, subscriptions.c.account_id == integrations.c.account_id
        )
    )
    .where(accounts.c.id.in_(bindparam("account_ids", expanding=True)))
    # The integration's columns depend on its primary key (PostgreSQL accepts them so).
    .group_by(accounts.c.id, integrations.c.account_id)
)


def publish_targets(conn: Connection, account_ids: Iterable[str]) -> dict[str, Integration | None]:
    """Each existing account among ``account_ids`` → its integration (None without one).

    Accounts that do not exist are absent. The integrations are the same objects as
    :func:`get` returns, read in one query whatever the count (publishing asks for every
    account of a batch: an existence check plus one ``get`` each was 1 + 2n queries, profiled
    at a fifth of a 100-event publish with 10 accounts).
    """
    wanted = list(set(account_ids))
    if not wanted:
        return {}
    rows = conn.execute(_PUBLISH_TARGETS, {"account_ids": wanted}).all()
    return {
        row.known_account_id: None
        if row.account_id is None
        else Integration(
            account_id=row.account_id,
            url=row.url,
            enabled=bool(row.enabled),
            retry_policy=row.retry_policy,
            subscribed_events=_order(row.subscribed.split(",") if row.subscribed else ()),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    }


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
    existing = get(conn, account_id)
    if existing is not None:
        return existing
    conn.execute(
        integrations.insert().values(
            account_id=account_id,
            url=None,
            enabled=True,
            retry_policy="exponential",
            created_at=now,
            updated_at=now,
        )
    )
    _add_secret(conn, account_id, generate_secret(), now=now, box=box, rng=rng)
    result = get(conn, account_id)
    assert result is not None
    return result


def set_url(
    conn: Connection, account_id: str, url: str, *, now: datetime, box: SecretBox, rng: RandomBits
) -> Integration:
    """Set the webhook URL. The caller vets the URL first (``callhook.core.urlvet``)."""
    ensure(conn, account_id, now=now, box=box, rng=rng)
    conn.execute(
        update(integrations)
        .where(integrations.c.account_id == account_id)
        .values(url=url, updated_at=now)
    )
    return _must(conn, account_id)


def set_enabled(conn: Connection, account_id: str, enabled: bool, *, now: datetime) -> Integration:
    require_configured(conn, account_id)
    conn.execute(
        update(integrations)
        .where(integrations.c.account_id == account_id)
        .values(enabled=enabled, updated_at=now)
    )
    return _must(conn, account_id)


def set_retry_policy(
    conn: Connection, account_id: str, policy: str, *, now: datetime
) -> Integration:
    if policy not in RETRY_POLICIES:
        raise InvalidRequest(f"retry policy must be one of {', '.join(RETRY_POLICIES)}")
    require_configured(conn, account_id)
    conn.execute(
        update(integrations)
        .where(integrations.c.account_id == account_id)
        .values(retry_policy=policy, updated_at=now)
    )
    return _must(conn, account_id)


def _checked(conn: Connection, account_id: str, events: Iterable[str]) -> list[str]:
    """The distinct event names, all subscribable, for a configured integration — checked
    before anything is written."""
    names = list(dict.fromkeys(events))
    for name in names:
        check_subscribable(name)
    require_configured(conn, account_id)
    return names


def _add(conn: Connection, account_id: str, names: list[str], now: datetime) -> Integration:
    dialect.insert_ignore(
        conn,
        subscriptions,
        [{"account_id": account_id, "event": n, "created_at": now} for n in names],
    )
    _touch(conn, account_id, now)
    return _must(conn, account_id)


def subscribe(
    conn: Connection, account_id: str, events: Iterable[str], *, now: datetime
) -> Integration:
    """Subscribe events (idempotent). Unknown names raise ``UnknownEvent`` before any write."""
    return _add(conn, account_id, _checked(conn, account_id, events), now)


def unsubscribe(
    conn: Connection, account_id: str, events: Iterable[str], *, now: datetime
) -> Integration:
    """Unsubscribe events (idempotent)."""
    names = _checked(conn, account_id, events)
    conn.execute(
        delete(subscriptions).where(
            subscriptions.c.account_id == account_id, subscriptions.c.event.in_(names)
        )
    )
    _touch(conn, account_id, now)
    return _must(conn, account_id)


def set_subscriptions(
    conn: Connection, account_id: str, events: Iterable[str], *, now: datetime
) -> Integration:
    """Replace the subscription set (the dashboard's checkboxes)."""
    names = _checked(conn, account_id, events)
    conn.execute(delete(subscriptions).where(subscriptions.c.account_id == account_id))
    return _add(conn, account_id, names, now)


# --- Secrets -----------------------------------------------------------------------------------
def _add_secret(
    conn: Connection,
    account_id: str,
    secret: str,
    *,
    now: datetime,
    box: SecretBox,
    rng: RandomBits,
) -> SigningSecret:
    row = SigningSecret(id=new_id("sec", now, rng), secret=secret, created_at=now, expires_at=None)
    conn.execute(
        integration_secrets.insert().values(
            id=row.id,
            account_id=account_id,
            secret_encrypted=box.encrypt(secret),
            created_at=now,
            expires_at=None,
        )
    )
    return row


def active_secrets(
    conn: Connection, account_id: str, *, now: datetime, box: SecretBox
) -> list[SigningSecret]:
    """Secrets that sign deliveries now, newest first (more than one during a rotation)."""
    rows = conn.execute(
        select(integration_secrets)
        .where(
            integration_secrets.c.account_id == account_id,
            (integration_secrets.c.expires_at.is_(None)) | (integration_secrets.c.expires_at > now),
        )
        .order_by(integration_secrets.c.created_at.desc(), integration_secrets.c.id.desc())
    )
    return [
        SigningSecret(
            id=r.id,
            secret=box.decrypt(r.secret_encrypted),
            created_at=r.created_at,
            expires_at=r.expires_at,
        )
        for r in rows
    ]


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
    ensure(conn, account_id, now=now, box=box, rng=rng)
    conn.execute(
        update(integration_secrets)
        .where(
            integration_secrets.c.account_id == account_id,
            (integration_secrets.c.expires_at.is_(None))
            | (integration_secrets.c.expires_at > now + overlap),
        )
        .values(expires_at=now + overlap)
    )
    return _add_secret(conn, account_id, generate_secret(), now=now, box=box, rng=rng)


def _touch(conn: Connection, account_id: str, now: datetime) -> None:
    conn.execute(
        update(integrations).where(integrations.c.account_id == account_id).values(updated_at=now)
    )


def _must(conn: Connection, account_id: str) -> Integration:
    integration = get(conn, account_id)
    assert integration is not None
    return integration
