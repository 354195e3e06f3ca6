"""Endpoints as read from the store: the ``Endpoint`` value and the queries that build it.

Every read is scoped by account (an endpoint id of another account is ``EndpointNotFound``,
exactly like an unknown id), except ``publish_targets``, which reads every account of a publish
batch at once. ``callhook.store.endpoints`` re-exports all of it beside the writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select
from sqlalchemy import update as sql_update

from callhook.core.health import EndpointState as _HealthState
from callhook.core.ids import has_id_shape
from callhook.core.ordering import Ordering
from callhook.core.retry import RetryPolicy
from callhook.errors import EndpointNotFound
from callhook.store import endpoint_fields as fields
from callhook.store.tables import accounts, endpoint_subscriptions, endpoints

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
        subscribed_events=None if row.all_events else fields.catalog_order(subscribed),
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


def update_statement(endpoint_id: str) -> Any:
    """``UPDATE endpoints … WHERE id = endpoint_id`` (for this package's modules)."""
    return sql_update(endpoints).where(endpoints.c.id == endpoint_id)
