"""Endpoints: where an account's events go. Each has its URL, events, retry policy, secrets, state.

An account has up to ``Settings.max_endpoints_per_account`` endpoints (20 by default). One of
them is *primary*: spec 002's webhook setting (``GET/POST/DELETE /api/v2/webhooks…`` and
``callhook.store.integrations`` work on it). Its URL may be unset ("not configured", spec 002's
404) and is changed only by the dashboard or the operator's CLI (``set_primary_url``), never by
the API (``update`` refuses it). Every other endpoint always has a URL.

Every read and write is scoped by account: an endpoint id of another account is
:class:`~callhook.errors.EndpointNotFound`, exactly like an unknown id.

URLs: :func:`create` and :func:`update` parse, normalize and vet the URL without I/O
(:func:`callhook.core.urlvet.parse_webhook_url`: HTTPS, no private addresses, …). Resolving the
host name (DNS) is I/O and is the caller's: :func:`callhook.delivery.resolver.check_url`
before the write, as for the primary endpoint's URL.

This module is the endpoints' public face: the writes are here; the ``Endpoint`` value and the
reads live in :mod:`callhook.store.endpoint_reads`, the checks of what a customer may set in
:mod:`callhook.store.endpoint_fields` (both re-exported here where callers need them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy import update as sql_update

from callhook.core.health import Cause
from callhook.core.ids import RandomBits, new_id
from callhook.core.ordering import Ordering
from callhook.core.outcome import SkipReason
from callhook.core.retry import RetryPolicy
from callhook.core.urlvet import parse_webhook_url
from callhook.errors import (
    DuplicateEndpointUrl,
    EndpointLimitReached,
    PayloadInvalid,
    PrimaryEndpointDelete,
    PrimaryEndpointUrl,
)
from callhook.events.names import SUBSCRIBABLE_EVENTS
from callhook.signing import generate_secret
from callhook.store import dialect
from callhook.store import endpoint_fields as fields
from callhook.store import endpoint_health as health_store
from callhook.store import endpoint_secrets as secret_store
from callhook.store import ordering as ordering_store
from callhook.store.endpoint_fields import MAX_DESCRIPTION, UNSET, checked_events
from callhook.store.endpoint_reads import (
    PREFIX,
    Endpoint,
    EndpointState,
    for_accounts,
    get,
    list_for_account,
    primary,
    publish_targets,
    update_statement,
)
from callhook.store.endpoint_secrets import ROTATION_OVERLAP, SigningSecret
from callhook.store.secretbox import SecretBox
from callhook.store.tables import (
    attempts,
    deliveries,
    endpoint_secrets,
    endpoint_subscriptions,
    endpoints,
    events,
)

__all__ = [
    "MAX_DESCRIPTION",
    "ROTATION_OVERLAP",
    "Endpoint",
    "EndpointState",
    "SigningSecret",
    "active_secrets",
    "create",
    "create_primary",
    "delete_endpoint",
    "for_accounts",
    "get",
    "list_for_account",
    "primary",
    "publish_targets",
    "rotate_secret",
    "set_primary_url",
    "subscribe",
    "unsubscribe",
    "update",
]


def _check_url_free(
    conn: Connection, account_id: str, url: str, *, besides: str | None = None
) -> None:
    query = select(endpoints.c.id).where(
        endpoints.c.account_id == account_id, endpoints.c.url == url
    )
    if besides is not None:
        query = query.where(endpoints.c.id != besides)
    if conn.execute(query.limit(1)).first() is not None:
        raise DuplicateEndpointUrl(url)


def _insert(
    conn: Connection,
    *,
    account_id: str,
    url: str | None,
    description: str,
    enabled: bool,
    events: Sequence[str] | None,
    retry_policy: RetryPolicy,
    is_primary: bool,
    now: datetime,
    box: SecretBox,
    rng: RandomBits,
) -> str:
    endpoint_id = new_id(PREFIX, now, rng)
    conn.execute(
        endpoints.insert().values(
            id=endpoint_id,
            account_id=account_id,
            url=url,
            description=description,
            enabled=enabled,
            all_events=events is None,
            retry_policy=retry_policy.value,
            is_primary=is_primary,
            state=EndpointState.ACTIVE.value,
            created_at=now,
            updated_at=now,
        )
    )
    if events:
        _subscribe_rows(conn, endpoint_id, events, now)
    secret_store.add(conn, endpoint_id, generate_secret(), now=now, box=box, rng=rng)
    return endpoint_id


def create(
    conn: Connection,
    account_id: str,
    *,
    url: str,
    subscribed_events: Iterable[str] | None,
    description: str = "",
    retry_policy: str = RetryPolicy.EXPONENTIAL,
    enabled: bool = True,
    limit: int,
    allow_unsafe: bool = False,
    now: datetime,
    box: SecretBox,
    rng: RandomBits,
    rules: health_store.Rules | None = None,
    **ordering_fields: object,
) -> Endpoint:
    """Add a (non-primary) endpoint with a fresh signing secret; return it.

    ``subscribed_events`` None subscribes to every event. ``limit`` is
    ``Settings.max_endpoints_per_account``. Raises, before anything is written: ``UnsafeURL``
    (the URL's syntax or address is refused), ``UnknownEvent``, ``InvalidRequest`` (retry
    policy), ``PayloadInvalid`` (description), ``EndpointLimitReached`` (the account has
    ``limit`` endpoints, the primary one counted), ``DuplicateEndpointUrl``. The count and the
    URL check hold a per-account lock (PostgreSQL), so concurrent creates cannot pass ``limit``.
    The caller checks that the account exists.
    """
    vetted = parse_webhook_url(url, allow_unsafe=allow_unsafe).url
    names = None if subscribed_events is None else checked_events(subscribed_events)
    policy = fields.policy(retry_policy)
    text = fields.description(description)
    # ``ordering``, ``ordering_bound_seconds``, ``max_age_*_seconds`` (issue 14): checked here.
    ordered = fields.ordering_values(**ordering_fields)
    dialect.lock_keys(conn, "endpoints", [account_id])
    count = conn.execute(
        select(func.count()).select_from(endpoints).where(endpoints.c.account_id == account_id)
    ).scalar_one()
    if count >= limit:
        raise EndpointLimitReached(limit)
    _check_url_free(conn, account_id, vetted)
    endpoint_id = _insert(
        conn,
        account_id=account_id,
        url=vetted,
        description=text,
        enabled=enabled,
        events=names,
        retry_policy=policy,
        is_primary=False,
        now=now,
        box=box,
        rng=rng,
    )
    if not enabled:  # disabled by hand from the start: the state says so too
        health_store.set_enabled(
            conn, endpoint_id, account_id, False, by="customer", now=now, rules=rules or _RULES
        )
    if ordered:
        conn.execute(update_statement(endpoint_id).values(**ordered))
    return get(conn, account_id, endpoint_id)


def create_primary(
    conn: Connection, account_id: str, *, now: datetime, box: SecretBox, rng: RandomBits
) -> Endpoint:
    """The account's primary endpoint, created (no URL, no events, enabled, a fresh secret)
    when it has none. Idempotent."""
    existing = primary(conn, account_id)
    if existing is not None:
        return existing
    dialect.lock_keys(conn, "endpoints", [account_id])
    existing = primary(conn, account_id)
    if existing is not None:
        return existing
    endpoint_id = _insert(
        conn,
        account_id=account_id,
        url=None,
        description="",
        enabled=True,
        events=(),
        retry_policy=RetryPolicy.EXPONENTIAL,
        is_primary=True,
        now=now,
        box=box,
        rng=rng,
    )
    return get(conn, account_id, endpoint_id)


def update(
    conn: Connection,
    account_id: str,
    endpoint_id: str,
    *,
    url: str | None = UNSET,
    description: str | None = UNSET,
    enabled: bool | None = UNSET,
    subscribed_events: Iterable[str] | None = UNSET,
    retry_policy: str | None = UNSET,
    ordering: object = UNSET,
    ordering_bound_seconds: object = UNSET,
    max_age_call_control_seconds: object = UNSET,
    max_age_bulk_seconds: object = UNSET,
    allow_unsafe: bool = False,
    now: datetime,
    rules: health_store.Rules | None = None,
    by: str = "customer",
) -> Endpoint:
    """Change the given fields of the account's endpoint (others stay); return it.

    ``subscribed_events`` replaces the set (None: every event). A primary endpoint's ``url``
    is refused (``PrimaryEndpointUrl``: spec 002 has it set in the dashboard; see
    :func:`set_primary_url`). Raises as :func:`create` does, and ``EndpointNotFound``; all checks
    come before any write.

    The health machine follows (``callhook.store.endpoint_health``, with the operator's
    ``rules``, the defaults if None): a new URL resets it (a failing endpoint is active again at
    once, its outage replayed); ``enabled`` false disables it by hand (``by``), true resumes a
    disabled one.
    """
    current = get(conn, account_id, endpoint_id)
    values: dict[str, Any] = {}
    if url is not UNSET:
        if current.primary:
            raise PrimaryEndpointUrl()
        if url is None:
            raise PayloadInvalid("url: must not be null", field="url")
        values["url"] = parse_webhook_url(url, allow_unsafe=allow_unsafe).url
    if description is not UNSET:
        values["description"] = fields.description(description or "")
    if enabled is not UNSET:
        if enabled is None:
            raise PayloadInvalid("enabled: must be true or false", field="enabled")
        values["enabled"] = enabled
    if retry_policy is not UNSET:
        values["retry_policy"] = fields.policy(retry_policy or "").value
    values.update(
        fields.ordering_values(
            ordering=ordering,
            ordering_bound_seconds=ordering_bound_seconds,
            max_age_call_control_seconds=max_age_call_control_seconds,
            max_age_bulk_seconds=max_age_bulk_seconds,
        )
    )
    names: list[str] | None = None
    if subscribed_events is not UNSET:
        names = None if subscribed_events is None else checked_events(subscribed_events)
        values["all_events"] = names is None
    if "url" in values:
        _check_url_free(conn, account_id, values["url"], besides=endpoint_id)
    if values.get("ordering") == Ordering.NONE and current.ordering is not Ordering.NONE:
        # First: it takes line locks, which completions take before this endpoint's rows.
        ordering_store.free_lines(conn, endpoint_id)
    conn.execute(update_statement(endpoint_id).values(updated_at=now, **values))
    _follow(conn, current, values, now=now, rules=rules or _RULES, by=by)
    if subscribed_events is not UNSET:
        conn.execute(
            delete(endpoint_subscriptions).where(
                endpoint_subscriptions.c.endpoint_id == endpoint_id
            )
        )
        if names:
            _subscribe_rows(conn, endpoint_id, names, now)
    return get(conn, account_id, endpoint_id)


_RULES = health_store.Rules()


def _follow(
    conn: Connection,
    current: Endpoint,
    values: dict[str, Any],
    *,
    now: datetime,
    rules: health_store.Rules,
    by: str,
) -> None:
    """Feed the health machine what a change of URL or of ``enabled`` means."""
    if "url" in values and values["url"] != current.url:
        health_store.reset(
            conn, current.id, current.account_id, Cause.URL_CHANGED, now=now, rules=rules
        )
    if "enabled" in values:
        health_store.set_enabled(
            conn, current.id, current.account_id, values["enabled"], by=by, now=now, rules=rules
        )


def set_primary_url(
    conn: Connection,
    account_id: str,
    url: str,
    *,
    now: datetime,
    box: SecretBox,
    rng: RandomBits,
    rules: health_store.Rules | None = None,
) -> Endpoint:
    """Set the primary endpoint's URL (dashboard, operator CLI), creating the primary endpoint
    when missing. ``url`` comes vetted and normalized by the caller, as spec 002's webhook URL
    always has (``parse_webhook_url`` then ``check_url``). ``DuplicateEndpointUrl`` when
    another endpoint of the account has it. A new URL resets the health machine, as
    :func:`update`."""
    endpoint = create_primary(conn, account_id, now=now, box=box, rng=rng)
    _check_url_free(conn, account_id, url, besides=endpoint.id)
    conn.execute(update_statement(endpoint.id).values(url=url, updated_at=now))
    _follow(conn, endpoint, {"url": url}, now=now, rules=rules or _RULES, by="customer")
    return get(conn, account_id, endpoint.id)


def delete_endpoint(conn: Connection, account_id: str, endpoint_id: str) -> int:
    """Delete a non-primary endpoint with everything that hangs off it, in one transaction:
    secrets, subscriptions, deliveries and their attempts; returns how many deliveries. (A
    delivery is one event *to this endpoint*: the events stay, with their other endpoints'
    deliveries; one left with none gets the skip reason ``endpoint_deleted``.) A worker still
    sending one of them finds its claim gone and records nothing. Callers with a history to
    delete use :func:`callhook.store.endpoint_removal.remove_endpoint`, which takes the
    deliveries in batches first and this last. ``PrimaryEndpointDelete`` for the primary
    endpoint (spec 002's setting: disable it instead); ``EndpointNotFound``."""
    if get(conn, account_id, endpoint_id).primary:
        raise PrimaryEndpointDelete()
    # Events left with no delivery at all say why (and retention finds them, as skipped ones);
    # locked first, as a prune may be taking their other deliveries (``dialect.lock_rows``).
    dialect.lock_rows(
        conn, events, select(deliveries.c.event_id).where(deliveries.c.endpoint_id == endpoint_id)
    )
    others = (
        select(deliveries.c.id)
        .where(deliveries.c.event_id == events.c.id, deliveries.c.endpoint_id != endpoint_id)
        .exists()
    )
    conn.execute(
        sql_update(events)
        .where(
            events.c.skip_reason.is_(None),
            events.c.id.in_(
                select(deliveries.c.event_id).where(deliveries.c.endpoint_id == endpoint_id)
            ),
            ~others,
        )
        .values(skip_reason=SkipReason.ENDPOINT_DELETED.value)
    )
    conn.execute(
        delete(attempts).where(
            attempts.c.delivery_id.in_(
                select(deliveries.c.id).where(deliveries.c.endpoint_id == endpoint_id)
            )
        )
    )
    removed = conn.execute(
        delete(deliveries).where(deliveries.c.endpoint_id == endpoint_id)
    ).rowcount
    health_store.forget(conn, endpoint_id)
    conn.execute(delete(endpoint_secrets).where(endpoint_secrets.c.endpoint_id == endpoint_id))
    conn.execute(
        delete(endpoint_subscriptions).where(endpoint_subscriptions.c.endpoint_id == endpoint_id)
    )
    conn.execute(delete(endpoints).where(endpoints.c.id == endpoint_id))
    return int(removed)


def subscribe(
    conn: Connection, account_id: str, endpoint_id: str, events: Iterable[str], *, now: datetime
) -> Endpoint:
    """Add events to the endpoint's subscriptions (idempotent; ``UnknownEvent`` before any
    write). On an all-events endpoint nothing changes."""
    names = checked_events(events, field="event")
    current = get(conn, account_id, endpoint_id)
    if current.subscribed_events is not None:
        _subscribe_rows(conn, endpoint_id, names, now)
    conn.execute(update_statement(endpoint_id).values(updated_at=now))
    return get(conn, account_id, endpoint_id)


def unsubscribe(
    conn: Connection, account_id: str, endpoint_id: str, events: Iterable[str], *, now: datetime
) -> Endpoint:
    """Remove events from the endpoint's subscriptions (idempotent). On an all-events endpoint
    the subscription becomes the explicit list of every other event."""
    names = checked_events(events, field="event")
    current = get(conn, account_id, endpoint_id)
    if current.subscribed_events is None:
        keep = [e for e in SUBSCRIBABLE_EVENTS if e not in set(names)]
        conn.execute(update_statement(endpoint_id).values(all_events=False))
        _subscribe_rows(conn, endpoint_id, keep, now)
    else:
        conn.execute(
            delete(endpoint_subscriptions).where(
                endpoint_subscriptions.c.endpoint_id == endpoint_id,
                endpoint_subscriptions.c.event.in_(names),
            )
        )
    conn.execute(update_statement(endpoint_id).values(updated_at=now))
    return get(conn, account_id, endpoint_id)


def _subscribe_rows(
    conn: Connection, endpoint_id: str, names: Iterable[str], now: datetime
) -> None:
    dialect.insert_ignore(
        conn,
        endpoint_subscriptions,
        [{"endpoint_id": endpoint_id, "event": n, "created_at": now} for n in names],
    )


# --- Secrets (scoped by account; the rows are ``endpoint_secrets``'s) ---------------------------
def active_secrets(
    conn: Connection, account_id: str, endpoint_id: str, *, now: datetime, box: SecretBox
) -> list[SigningSecret]:
    """The secrets that sign the endpoint's deliveries now, current first (more than one
    during a rotation). ``EndpointNotFound`` for an endpoint not of this account."""
    get(conn, account_id, endpoint_id)
    return secret_store.active(conn, endpoint_id, now=now, box=box)


def rotate_secret(
    conn: Connection,
    account_id: str,
    endpoint_id: str,
    *,
    now: datetime,
    box: SecretBox,
    rng: RandomBits,
    overlap: timedelta = ROTATION_OVERLAP,
) -> SigningSecret:
    """Make a new current secret for the endpoint; the previous ones keep signing for
    ``overlap`` (24 h). ``EndpointNotFound`` for an endpoint not of this account."""
    get(conn, account_id, endpoint_id)
    return secret_store.rotate(conn, endpoint_id, now=now, box=box, rng=rng, overlap=overlap)
