"""Deliveries: their history (listing, one delivery with its attempts) and redelivery.

The queue operations on the same table live in ``callhook.store.queue``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    union_all,
    update,
)

from callhook.core import ids, stored_body, stored_headers
from callhook.core.ordering import claim_key, group_of
from callhook.core.outcome import DeliveryStatus
from callhook.errors import EndpointNotFound, InvalidRequest, NotFound
from callhook.store import attempts as attempt_store
from callhook.store import ordering, tables
from callhook.store.tables import deliveries, events

#: Every status a delivery can have (filters in the API, CLI and dashboard): ``waiting`` is
#: behind an earlier event of its call, ``expired`` was too old to send (issue 14).
STATUSES = tuple(s.value for s in DeliveryStatus)
#: Filters people may use: the stored statuses, and ``retrying`` — ``pending`` with at least one
#: attempt made (the endpoint failed it; the next attempt is at ``next_attempt_at``).
#: In the order of a delivery's life: queued, retried, held behind its call, then how it ended.
FILTERS = (
    DeliveryStatus.PENDING.value,
    "retrying",
    DeliveryStatus.WAITING.value,
    DeliveryStatus.DELIVERED.value,
    DeliveryStatus.FAILED.value,
    DeliveryStatus.EXPIRED.value,
)
#: What a window redelivery may queue again (finished deliveries).
REDELIVERABLE = (
    DeliveryStatus.FAILED.value,
    DeliveryStatus.DELIVERED.value,
    DeliveryStatus.EXPIRED.value,
)
#: Not finished: a redelivery leaves these alone.
UNFINISHED = (DeliveryStatus.PENDING.value, DeliveryStatus.WAITING.value)


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    response_body: str | None
    error_class: str | None
    error_message: str | None
    request_headers: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event_id: str
    account_id: str
    endpoint_id: str
    event: str
    pbx_id: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error_class: str | None
    last_latency_ms: float | None
    delivered_at: datetime | None
    body: bytes | None = None
    attempt_log: list[Attempt] = field(default_factory=list)

    @property
    def shown_status(self) -> str:
        """The status people read: ``retrying`` for a pending delivery already attempted."""
        return shown_status(self.status, self.attempts)


def shown_status(status: str, attempts: int) -> str:
    """A delivery's status as people read it: ``retrying`` for a pending one already
    attempted, else its status."""
    if status == DeliveryStatus.PENDING.value and attempts > 0:
        return "retrying"
    return status


@dataclass(frozen=True, slots=True)
class EventDelivery:
    """One delivery of an event as reconciliation shows it: to which endpoint, and how it
    stands (``shown_status``: ``retrying`` for a pending delivery already attempted)."""

    id: str
    endpoint_id: str
    status: str
    attempts: int

    @property
    def shown_status(self) -> str:
        return shown_status(self.status, self.attempts)


# By event id alone, in the unique index's order: with the account in the condition too,
# SQLite read every delivery of the account through ``ix_deliveries_account_created`` once
# there were four ids or more (``EXPLAIN QUERY PLAN``; a call has about ten events). The
# account is checked on the rows instead.
_OF_EVENTS = (
    select(
        deliveries.c.event_id,
        deliveries.c.id,
        deliveries.c.endpoint_id,
        deliveries.c.status,
        deliveries.c.attempts,
        deliveries.c.account_id,
    )
    .where(deliveries.c.event_id.in_(bindparam("events", expanding=True)))
    .order_by(deliveries.c.event_id, deliveries.c.endpoint_id)
)
#: Event ids per statement: far under every driver's parameter limit (PostgreSQL's 65,535).
OF_EVENTS_CHUNK = 500


def of_events(
    conn: Connection, account_id: str, event_ids: Sequence[str]
) -> dict[str, list[EventDelivery]]:
    """The deliveries of these events of ``account_id`` as they stand now, by event id (an
    event without any is absent; a delivery to a deleted endpoint, or removed by retention, is
    gone). Range reads of ``uq_deliveries_event_endpoint`` (event id first), 500 ids at a
    time."""
    out: dict[str, list[EventDelivery]] = {}
    ids = list(event_ids)
    for start in range(0, len(ids), OF_EVENTS_CHUNK):
        chunk = ids[start : start + OF_EVENTS_CHUNK]
        for event_id, delivery_id, endpoint_id, status, attempts, owner in conn.execute(
            _OF_EVENTS, {"events": chunk}
        ):
            if owner == account_id:
                out.setdefault(event_id, []).append(
                    EventDelivery(delivery_id, endpoint_id, status, int(attempts))
                )
    return out


# --- Reading -----------------------------------------------------------------------------------
def _delivery_query() -> Any:
    return select(
        deliveries.c.id,
        deliveries.c.event_id,
        deliveries.c.account_id,
        deliveries.c.endpoint_id,
        deliveries.c.event,
        events.c.pbx_id,
        deliveries.c.status,
        deliveries.c.attempts,
        deliveries.c.created_at,
        deliveries.c.next_attempt_at,
        deliveries.c.last_attempt_at,
        deliveries.c.last_status_code,
        deliveries.c.last_error_class,
        deliveries.c.last_latency_ms,
        deliveries.c.delivered_at,
    ).join(events, events.c.id == deliveries.c.event_id)


def _to_delivery(r: Any) -> Delivery:
    return Delivery(
        id=r.id,
        event_id=r.event_id,
        account_id=r.account_id,
        endpoint_id=r.endpoint_id,
        event=r.event,
        pbx_id=r.pbx_id,
        status=r.status,
        attempts=r.attempts,
        created_at=r.created_at,
        next_attempt_at=r.next_attempt_at,
        last_attempt_at=r.last_attempt_at,
        last_status_code=r.last_status_code,
        last_error_class=r.last_error_class,
        last_latency_ms=r.last_latency_ms,
        delivered_at=r.delivered_at,
    )


def list_deliveries(
    conn: Connection,
    *,
    account_id: str | None = None,
    endpoint_id: str | None = None,
    status: str | None = None,
    event: str | None = None,
    pbx_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """Newest first: by ``created_at`` then id within one account or endpoint, by id (creation
    time to the millisecond) across all accounts (the CLI). ``before_id`` is the cursor: the last
    id of the previous page (one no longer stored, pruned since, continues from the millisecond
    its id holds; ``InvalidRequest`` for a value no id can have). ``endpoint_id`` keeps one
    endpoint's deliveries; the caller checks it is the account's. Rows of another account are
    never listed: found without a status filter, they raise ``EndpointNotFound``; with one, the
    account's own condition leaves them out.

    A page is a walk backwards from the cursor that stops when the page is full
    (``EXPLAIN QUERY PLAN``, pinned by tests/integration/store/test_delivery_listing.py): of
    the account's (or endpoint's) deliveries; for a status filter, of the account's deliveries
    with that status (``ix_deliveries_account_open`` and ``…_undelivered``, partial indexes);
    for a ``pbx_id`` filter, of the few deliveries of the pbx_id's events. Ordered by id, SQLite
    read and sorted every delivery of the account for each page (``python -m bench.listing``:
    280 ms against 3.3 ms for an account of 200,000). What the walk reads past without listing
    it: for ``event``, the other events; for ``retrying``, pending deliveries never attempted;
    for a status with ``endpoint_id``, the account's other endpoints; for ``delivered`` with
    ``endpoint_id``, the endpoint's other statuses.
    """
    query = _page_query(
        conn,
        account_id=account_id,
        endpoint_id=endpoint_id,
        status=status,
        event=event,
        pbx_id=pbx_id,
        since=since,
        until=until,
        before_id=before_id,
    )
    found = [_to_delivery(r) for r in conn.execute(query.limit(limit))]
    if account_id is not None and any(d.account_id != account_id for d in found):
        raise EndpointNotFound(str(endpoint_id))
    return found


def _page_query(
    conn: Connection,
    *,
    account_id: str | None,
    endpoint_id: str | None,
    status: str | None,
    event: str | None,
    pbx_id: str | None,
    since: datetime | None,
    until: datetime | None,
    before_id: str | None,
) -> Any:
    if status is not None and status not in FILTERS:
        raise InvalidRequest(f"status must be one of {', '.join(FILTERS)}")
    query = _delivery_query()
    if pbx_id is not None and account_id is not None:
        query = _of_pbx_id(query, account_id, pbx_id, endpoint_id, status)
    else:
        if endpoint_id is not None and _status_kind(status) is not None and account_id is not None:
            # The account's deliveries with this status (few) rather than all the endpoint's:
            # the endpoint as an expression, so SQLite's planner does not walk its index.
            query = query.where(
                deliveries.c.account_id == account_id,
                _unindexed(deliveries.c.endpoint_id) == endpoint_id,
            )
        elif endpoint_id is not None:
            query = query.where(deliveries.c.endpoint_id == endpoint_id)
        elif account_id is not None:
            query = query.where(deliveries.c.account_id == account_id)
        if pbx_id is not None:
            query = query.where(events.c.pbx_id == pbx_id)
        if status is not None:
            query = query.where(*_status_terms(status))
    if event is not None:
        query = query.where(deliveries.c.event == event)
    if since is not None:
        query = query.where(deliveries.c.created_at >= since)
    if until is not None:
        query = query.where(deliveries.c.created_at < until)
    if account_id is None and endpoint_id is None:
        # No created_at index across accounts; the id's own index is in creation order.
        if before_id is not None:
            _check_cursor(before_id)
            query = query.where(deliveries.c.id < before_id)
        return query.order_by(deliveries.c.id.desc())
    if before_id is not None:
        low, high = _cursor_time(conn, before_id, account_id)
        # After the cursor: created before its time, or at it with a smaller id.
        query = query.where(
            deliveries.c.created_at < high,
            or_(deliveries.c.created_at < low, deliveries.c.id < before_id),
        )
    return query.order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())


#: The statuses with a partial index of their own per account (migration 0008), so a filter on
#: one of them walks those deliveries alone: the open ones (the queue), and the undelivered.
_KINDS = (tables.OPEN_STATUSES, tables.UNDELIVERED_STATUSES)


def _status_kind(status: str | None) -> tuple[DeliveryStatus, ...] | None:
    stored = DeliveryStatus.PENDING.value if status == "retrying" else status
    return next((kind for kind in _KINDS if stored in kind), None)


def _status_terms(status: str) -> list[Any]:
    """The WHERE terms of a status filter. Statuses are written out, not bound, and the partial
    index's own condition is repeated: SQLite uses a partial index only when the query spells
    its condition, and a parameter's value is not known when the statement is planned."""
    stored = DeliveryStatus.PENDING if status == "retrying" else DeliveryStatus(status)
    terms = [deliveries.c.status == _literal(stored)]
    kind = _status_kind(status)
    if kind is not None:
        terms.append(deliveries.c.status.in_([_literal(s) for s in kind]))
    if status == "retrying":
        terms.append(deliveries.c.attempts > 0)
    return terms


def _of_pbx_id(
    query: Any, account_id: str, pbx_id: str, endpoint_id: str | None, status: str | None
) -> Any:
    """``query`` kept to the deliveries of the account's events with this pbx_id: from those
    events (two index lookups, a few rows), not a walk of the account. The endpoint and the
    status are compared as expressions, so SQLite's planner does not walk their indexes
    instead."""
    query = query.where(deliveries.c.event_id.in_(_events_with_pbx_id(account_id, pbx_id)))
    if endpoint_id is not None:
        query = query.where(_unindexed(deliveries.c.endpoint_id) == endpoint_id)
    if status is not None:
        stored = DeliveryStatus.PENDING if status == "retrying" else DeliveryStatus(status)
        query = query.where(_unindexed(deliveries.c.status) == stored.value)
        if status == "retrying":
            query = query.where(deliveries.c.attempts > 0)
    return query


def _unindexed(column: Any) -> Any:
    # The same value, but an expression: no index of the column matches it (both backends).
    return func.coalesce(column, "")


def _literal(status: DeliveryStatus) -> Any:
    return literal_column(f"'{status.value}'")


def _events_with_pbx_id(account_id: str, pbx_id: str) -> Any:
    """The account's events whose ``pbx_id`` is this, as ``events.for_pbx_id`` finds them:
    through ``ix_events_account_pbx`` (partial, ``PBX_OWN``) and ``ix_events_account_call``."""
    return union_all(
        select(events.c.id).where(
            events.c.account_id == account_id,
            events.c.pbx_id == pbx_id,
            or_(events.c.call_id.is_(None), events.c.pbx_id != events.c.call_id),  # PBX_OWN
        ),
        select(events.c.id).where(
            events.c.account_id == account_id,
            events.c.call_id == pbx_id,
            events.c.pbx_id == pbx_id,
        ),
    )


_CURSOR_ERROR = "Invalid cursor: pass next_cursor from the previous page."


def _check_cursor(value: str) -> datetime:
    try:
        return ids.created_at(value)
    except ValueError as exc:
        raise InvalidRequest(_CURSOR_ERROR) from exc


def _cursor_time(
    conn: Connection, delivery_id: str, account_id: str | None
) -> tuple[datetime, datetime]:
    """[low, high): when the cursor's delivery (of this account) was created, to the
    microsecond; for one not stored (pruned since, or another account's), the millisecond its
    id was made in (``core.ids``), where rows created in that millisecond may repeat or be
    left out. ``InvalidRequest`` for a value no id can have."""
    made = _check_cursor(delivery_id)
    query = select(deliveries.c.created_at).where(deliveries.c.id == delivery_id)
    if account_id is not None:
        query = query.where(deliveries.c.account_id == account_id)
    at: datetime | None = conn.execute(query).scalar_one_or_none()
    if at is not None:
        return at, at + _MICROSECOND
    return made, made + _MILLISECOND


_MICROSECOND = timedelta(microseconds=1)
_MILLISECOND = timedelta(milliseconds=1)


def count_for_endpoint(conn: Connection, endpoint_id: str) -> int:
    """How many deliveries go (or went) to this endpoint (the caller checks it is the
    account's)."""
    query = select(func.count()).select_from(deliveries)
    return int(conn.execute(query.where(deliveries.c.endpoint_id == endpoint_id)).scalar_one())


def get(conn: Connection, delivery_id: str, *, account_id: str | None = None) -> Delivery:
    """One delivery with its body and every attempt; ``NotFound`` also for other accounts'."""
    query = (
        _delivery_query()
        .add_columns(
            events.c.body,
            events.c.account_id.label("event_account_id"),
            events.c.event.label("event_name"),
            events.c.created_at.label("event_created_at"),
            events.c.call_id,
            events.c.sequence,
        )
        .where(deliveries.c.id == delivery_id)
    )
    if account_id is not None:
        query = query.where(deliveries.c.account_id == account_id)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"Delivery '{delivery_id}' not found.")
    delivery = _to_delivery(row)
    log = [
        Attempt(
            number=a.number,
            started_at=a.started_at,
            duration_ms=a.duration_ms,
            status_code=a.status_code,
            response_body=a.response_body,
            error_class=a.error_class,
            error_message=a.error_message,
            request_headers=stored_headers.as_json(
                a.request_headers,
                event_id=delivery.event_id,
                event=delivery.event,
                attempt=a.number,
            ),
        )
        for a in attempt_store.log_rows(conn, delivery_id)
    ]
    body = stored_body.unpack(
        bytes(row.body),
        id=row.event_id,
        event=row.event_name,
        pbx_id=row.pbx_id,
        account_id=row.event_account_id,
        created_at=row.event_created_at,
        call_id=row.call_id,
        sequence=row.sequence,
    )
    return Delivery(**{**_asdict(delivery), "body": body, "attempt_log": log})


def _asdict(d: Delivery) -> dict[str, Any]:
    return {f: getattr(d, f) for f in Delivery.__dataclass_fields__}


# --- Redelivery --------------------------------------------------------------------------------
def redeliver(
    conn: Connection, delivery_id: str, *, now: datetime, account_id: str | None = None
) -> Delivery:
    """Queue a finished delivery again: same body and event id, a fresh signature at send time.

    A delivery that is still pending, or waiting behind an earlier event of its call, is left
    as it is (it will be attempted anyway). A redelivery is outside its call's order: it is
    claimable at once, and receivers see it as a duplicate of an earlier event.
    """
    current = get(conn, delivery_id, account_id=account_id)
    if current.status not in UNFINISHED:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id, deliveries.c.status.not_in(UNFINISHED))
            .values(
                status=DeliveryStatus.PENDING.value,
                next_attempt_at=now,
                claim_key=claim_key(group_of(current.event), now),
                window_start=now,
                delivered_at=None,
            )
        )
    return get(conn, delivery_id, account_id=account_id)


def redeliver_window(
    conn: Connection,
    *,
    now: datetime,
    account_id: str | None,
    since: datetime,
    until: datetime | None = None,
    status: str = DeliveryStatus.FAILED,
    endpoint_id: str | None = None,
) -> int:
    """Queue again every ``status`` delivery created in [since, until) (to ``endpoint_id``
    only, when given); return how many.

    Each gets a new 24 h retry window (``window_start``) for the new round of attempts. A
    call's events to an endpoint that orders per call go out in order again
    (``ordering.requeue``: the lowest sequence first, the others waiting behind it).
    """
    if status not in REDELIVERABLE:
        raise InvalidRequest("status must be failed, delivered or expired")
    which = [deliveries.c.status == status, deliveries.c.created_at >= since]
    if until is not None:
        which.append(deliveries.c.created_at < until)
    if account_id is not None:
        which.append(deliveries.c.account_id == account_id)
    if endpoint_id is not None:
        which.append(deliveries.c.endpoint_id == endpoint_id)
    return ordering.requeue(conn, and_(*which), now=now, due=lambda _: now)
