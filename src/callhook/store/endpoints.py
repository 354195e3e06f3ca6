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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, select
from sqlalchemy import update as sql_update

from callhook.core import ordering as ordering_rules
from callhook.core.health import Cause
from callhook.core.health import EndpointState as _HealthState
from callhook.core.ids import RandomBits, has_id_shape, new_id
from callhook.core.ordering import Ordering
from callhook.core.outcome import SkipReason
from callhook.core.retry import RetryPolicy
from callhook.core.urlvet import parse_webhook_url
from callhook.errors import (
    DuplicateEndpointUrl,
    EndpointLimitReached,
    EndpointNotFound,
    InvalidRequest,
    PayloadInvalid,
    PrimaryEndpointDelete,
    PrimaryEndpointUrl,
    UnknownEvent,
)
from callhook.events.names import SUBSCRIBABLE_EVENTS
from callhook.signing import generate_secret
from callhook.store import dialect
from callhook.store import endpoint_health as health_store
from callhook.store import endpoint_secrets as secret_store
from callhook.store.endpoint_secrets import ROTATION_OVERLAP, SigningSecret
from callhook.store.secretbox import SecretBox
from callhook.store.tables import (
    accounts,
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

#: Longest description, in characters.
MAX_DESCRIPTION = 500
#: Endpoint ids: ``ep_`` + 26 characters (``callhook.core.ids``).
PREFIX = "ep"


# The one state machine's states (``callhook.core.health``), re-exported for readers here.
EndpointState = _HealthState


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint as read from the store.

    ``url`` is None only for a primary endpoint not configured yet. ``subscribed_events`` is
    the subscribed event names in catalog order, or None for "every event, present and
    future". Times are aware UTC.
    """

    id: str
    account_id: str
    url: str | None
    description: str
    enabled: bool
    subscribed_events: tuple[str, ...] | None
    retry_policy: RetryPolicy
    state: EndpointState
    primary: bool
    created_at: datetime
    updated_at: datetime
    # Ordered delivery per call (issue 14): see ``callhook.core.ordering``.
    ordering: Ordering = Ordering.PER_CALL
    ordering_bound_seconds: int = 300
    max_age_call_control_seconds: int | None = None
    max_age_bulk_seconds: int | None = None

    def subscribes(self, event: str) -> bool:
        """Whether this endpoint is subscribed to ``event``."""
        return self.subscribed_events is None or event in self.subscribed_events


def catalog_order(events: Iterable[str]) -> tuple[str, ...]:
    """``events`` without duplicates, in the catalog's order (unknown names dropped)."""
    wanted = set(events)
    return tuple(e for e in SUBSCRIBABLE_EVENTS if e in wanted)


def checked_events(events: Iterable[str], *, field: str = "subscribed_events") -> list[str]:
    """The distinct names of ``events``, all subscribable; else ``UnknownEvent`` (400) naming
    ``field`` and the first unknown name. Checked before anything is written."""
    names = list(dict.fromkeys(events))
    for name in names:
        if name not in SUBSCRIBABLE_EVENTS:
            error = UnknownEvent(name)
            error.message = f"{field}: {error.message}"
            raise error
    return names


def _policy(value: str) -> RetryPolicy:
    try:
        return RetryPolicy(value)
    except ValueError:
        raise InvalidRequest(
            f"retry_policy: must be one of {', '.join(p.value for p in RetryPolicy)}"
        ) from None


def _description(value: str) -> str:
    if len(value) > MAX_DESCRIPTION:
        raise PayloadInvalid(
            f"description: at most {MAX_DESCRIPTION} characters", field="description"
        )
    return value


# --- Reading ---------------------------------------------------------------------------------
_SUBSCRIBED = func.aggregate_strings(endpoint_subscriptions.c.event, ",").label("subscribed")
_WITH_EVENTS = (
    select(endpoints, _SUBSCRIBED)
    .select_from(
        endpoints.outerjoin(
            endpoint_subscriptions, endpoint_subscriptions.c.endpoint_id == endpoints.c.id
        )
    )
    # The endpoint's columns depend on its primary key (PostgreSQL accepts them so).
    .group_by(endpoints.c.id)
)


def from_row(row: Row[Any]) -> Endpoint:
    """An :class:`Endpoint` from a row of ``endpoints`` plus ``subscribed`` (the subscribed
    events joined with commas, or NULL). For the store's own queries."""
    subscribed = row.subscribed.split(",") if row.subscribed else ()
    return Endpoint(
        id=row.id,
        account_id=row.account_id,
        url=row.url,
        description=row.description,
        enabled=bool(row.enabled),
        subscribed_events=None if row.all_events else catalog_order(subscribed),
        retry_policy=RetryPolicy(row.retry_policy),
        state=EndpointState(row.state),
        primary=bool(row.is_primary),
        created_at=row.created_at,
        updated_at=row.updated_at,
        ordering=Ordering(row.ordering),
        ordering_bound_seconds=row.ordering_bound_seconds,
        max_age_call_control_seconds=row.max_age_call_control_seconds,
        max_age_bulk_seconds=row.max_age_bulk_seconds,
    )


def list_for_account(conn: Connection, account_id: str) -> list[Endpoint]:
    """The account's endpoints: the primary one first, then oldest first."""
    rows = conn.execute(
        _WITH_EVENTS.where(endpoints.c.account_id == account_id).order_by(
            endpoints.c.is_primary.desc(), endpoints.c.created_at, endpoints.c.id
        )
    )
    return [from_row(r) for r in rows]


def for_accounts(conn: Connection, account_ids: Iterable[str]) -> dict[str, list[Endpoint]]:
    """Every endpoint of each of ``account_ids`` (one query), primary first then oldest first;
    accounts without endpoints are absent."""
    wanted = list(set(account_ids))
    out: dict[str, list[Endpoint]] = {}
    if not wanted:
        return out
    rows = conn.execute(
        _WITH_EVENTS.where(endpoints.c.account_id.in_(wanted)).order_by(
            endpoints.c.account_id,
            endpoints.c.is_primary.desc(),
            endpoints.c.created_at,
            endpoints.c.id,
        )
    )
    for row in rows:
        out.setdefault(row.account_id, []).append(from_row(row))
    return out


# One query for every account of a publish batch, built once (an expanding IN list is neither
# rebuilt nor re-keyed per call); subscriptions come joined into one string per endpoint: a row
# per subscription cost more to fetch than the query itself (profiled).
_PUBLISH_TARGETS = (
    select(accounts.c.id.label("known_account_id"), endpoints, _SUBSCRIBED)
    .select_from(
        accounts.outerjoin(endpoints, endpoints.c.account_id == accounts.c.id).outerjoin(
            endpoint_subscriptions, endpoint_subscriptions.c.endpoint_id == endpoints.c.id
        )
    )
    .where(accounts.c.id.in_(bindparam("account_ids", expanding=True)))
    .group_by(accounts.c.id, endpoints.c.id)
    .order_by(accounts.c.id, endpoints.c.is_primary.desc(), endpoints.c.created_at, endpoints.c.id)
)


def publish_targets(conn: Connection, account_ids: Iterable[str]) -> dict[str, list[Endpoint]]:
    """Each existing account among ``account_ids`` → its endpoints (primary first, then oldest
    first; an empty list without any). Accounts that do not exist are absent. One query
    whatever the count (publishing asks for every account of a batch)."""
    wanted = list(set(account_ids))
    out: dict[str, list[Endpoint]] = {}
    if not wanted:
        return out
    for row in conn.execute(_PUBLISH_TARGETS, {"account_ids": wanted}):
        found = out.setdefault(row.known_account_id, [])
        if row.id is not None:
            found.append(from_row(row))
    return out


def get(conn: Connection, account_id: str, endpoint_id: str) -> Endpoint:
    """The account's endpoint ``endpoint_id``; ``EndpointNotFound`` when there is none (an id of
    another account included; an id that cannot exist is refused without a query)."""
    if not has_id_shape(PREFIX, endpoint_id):
        raise EndpointNotFound(endpoint_id)
    row = conn.execute(
        _WITH_EVENTS.where(endpoints.c.id == endpoint_id, endpoints.c.account_id == account_id)
    ).first()
    if row is None:
        raise EndpointNotFound(endpoint_id)
    return from_row(row)


def primary(conn: Connection, account_id: str) -> Endpoint | None:
    """The account's primary endpoint, or None when it has none yet."""
    row = conn.execute(
        _WITH_EVENTS.where(endpoints.c.account_id == account_id, endpoints.c.is_primary)
    ).first()
    return None if row is None else from_row(row)


# --- Writing ---------------------------------------------------------------------------------
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
    policy = _policy(retry_policy)
    text = _description(description)
    # ``ordering``, ``ordering_bound_seconds``, ``max_age_*_seconds`` (issue 14): checked here.
    ordered = ordering_values(**ordering_fields)
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


_UNSET: Any = object()


def update(
    conn: Connection,
    account_id: str,
    endpoint_id: str,
    *,
    url: str | None = _UNSET,
    description: str | None = _UNSET,
    enabled: bool | None = _UNSET,
    subscribed_events: Iterable[str] | None = _UNSET,
    retry_policy: str | None = _UNSET,
    ordering: object = _UNSET,
    ordering_bound_seconds: object = _UNSET,
    max_age_call_control_seconds: object = _UNSET,
    max_age_bulk_seconds: object = _UNSET,
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
    if url is not _UNSET:
        if current.primary:
            raise PrimaryEndpointUrl()
        if url is None:
            raise PayloadInvalid("url: must not be null", field="url")
        values["url"] = parse_webhook_url(url, allow_unsafe=allow_unsafe).url
    if description is not _UNSET:
        values["description"] = _description(description or "")
    if enabled is not _UNSET:
        if enabled is None:
            raise PayloadInvalid("enabled: must be true or false", field="enabled")
        values["enabled"] = enabled
    if retry_policy is not _UNSET:
        values["retry_policy"] = _policy(retry_policy or "").value
    values.update(
        ordering_values(
            ordering=ordering,
            ordering_bound_seconds=ordering_bound_seconds,
            max_age_call_control_seconds=max_age_call_control_seconds,
            max_age_bulk_seconds=max_age_bulk_seconds,
        )
    )
    names: list[str] | None = None
    if subscribed_events is not _UNSET:
        names = None if subscribed_events is None else checked_events(subscribed_events)
        values["all_events"] = names is None
    if "url" in values:
        _check_url_free(conn, account_id, values["url"], besides=endpoint_id)
    conn.execute(update_statement(endpoint_id).values(updated_at=now, **values))
    _follow(conn, current, values, now=now, rules=rules or _RULES, by=by)
    if subscribed_events is not _UNSET:
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


#: The endpoint fields of ordered delivery (issue 14), as the API and CLI name them.
ORDERING_FIELDS = (
    "ordering",
    "ordering_bound_seconds",
    "max_age_call_control_seconds",
    "max_age_bulk_seconds",
)


def ordering_values(**given: object) -> dict[str, Any]:
    """The ordering columns among ``given`` (``_UNSET`` ones left out), checked: ``ordering``
    ``per_call``/``none``; ``ordering_bound_seconds`` whole seconds in [1, 86400];
    ``max_age_*_seconds`` the same or None. ``PayloadInvalid`` names the field otherwise."""
    values: dict[str, Any] = {}
    for name, value in given.items():
        if value is _UNSET:
            continue
        if name not in ORDERING_FIELDS:
            raise TypeError(f"unexpected endpoint field {name!r}")
        if name == "ordering":
            values[name] = ordering_rules.parse_ordering(value).value
        else:
            values[name] = ordering_rules.parse_seconds(
                value, field_name=name, optional=name.startswith("max_age_")
            )
    return values


def update_statement(endpoint_id: str) -> Any:
    """``UPDATE endpoints … WHERE id = endpoint_id`` (for this package's modules)."""
    return sql_update(endpoints).where(endpoints.c.id == endpoint_id)


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


def delete_endpoint(conn: Connection, account_id: str, endpoint_id: str) -> None:
    """Delete a non-primary endpoint with everything that hangs off it: secrets,
    subscriptions, deliveries and their attempts (a delivery is one event *to this endpoint*;
    the events stay, with their other endpoints' deliveries; one left with none gets the skip
    reason ``endpoint_deleted``). A worker still sending one of
    them finds its claim gone and records nothing. ``PrimaryEndpointDelete`` for the primary
    endpoint (spec 002's setting: disable it instead); ``EndpointNotFound``."""
    if get(conn, account_id, endpoint_id).primary:
        raise PrimaryEndpointDelete()
    # Events left with no delivery at all say why (and retention finds them, as skipped ones).
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
    conn.execute(delete(deliveries).where(deliveries.c.endpoint_id == endpoint_id))
    health_store.forget(conn, endpoint_id)
    conn.execute(delete(endpoint_secrets).where(endpoint_secrets.c.endpoint_id == endpoint_id))
    conn.execute(
        delete(endpoint_subscriptions).where(endpoint_subscriptions.c.endpoint_id == endpoint_id)
    )
    conn.execute(delete(endpoints).where(endpoints.c.id == endpoint_id))


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
