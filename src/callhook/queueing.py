"""Every state change that queues deliveries, each one function doing the store write *and* the
wake, so no caller can forget to wake idle workers.

* publishing: :meth:`callhook.publish.Publisher.publish` (and ``publish_one``);
* a test event: :func:`callhook.publish.send_test_event` (a publish);
* redelivering one delivery: :func:`redeliver_one`;
* redelivering a time window: :func:`redeliver_window`.

The wake is :meth:`~callhook.publish.Publisher.notify`: in-process workers, and workers of
other processes on the same SQLite file (the wake directory); on PostgreSQL the ``deliveries``
trigger's NOTIFY covers inserts, and ``notify`` covers the redeliveries (updates).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from callhook.core import times
from callhook.core.outcome import DeliveryStatus
from callhook.errors import PayloadInvalid
from callhook.publish import Publisher
from callhook.store import deliveries as delivery_store
from callhook.store.deliveries import Delivery

#: A check run first, in the same transaction (``conn`` → None or an error raised), e.g. spec
#: 002's "integration not configured".
Check = Callable[[Any], None]


def redeliver_one(
    publisher: Publisher,
    delivery_id: str,
    *,
    now: datetime,
    account_id: str | None = None,
    check: Check | None = None,
) -> Delivery:
    """Queue a finished delivery again (same body and event id, signed afresh), then wake the
    workers. ``account_id`` scopes it (``NotFound`` for another account's); a delivery still
    pending is left as it is. Returns the delivery as it now is."""
    with publisher.db.write() as conn:
        if check is not None:
            check(conn)
        delivery = delivery_store.redeliver(conn, delivery_id, now=now, account_id=account_id)
    publisher.notify()
    return delivery


def redeliver_window(
    publisher: Publisher,
    *,
    now: datetime,
    account_id: str | None,
    since: datetime,
    until: datetime | None = None,
    status: DeliveryStatus | str = DeliveryStatus.FAILED,
    endpoint_id: str | None = None,
    check: Check | None = None,
) -> int:
    """Queue again every ``status`` delivery (of ``account_id``, or of every account: None;
    to ``endpoint_id`` only, when given) created in [since, until), each with a fresh 24 h
    retry window; wake the workers when any was queued. Returns how many.

    ``PayloadInvalid`` naming the field, before anything is read, for a window that holds no
    instant: ``until`` not later than ``since``, or (``until`` left out, so now) ``since`` not
    earlier than ``now`` (the API, the dashboard and the CLI all ask through here)."""
    times.check_span(since, until)
    if until is None and now <= since:
        raise PayloadInvalid(
            "since: must be earlier than now when until is left out.", field="since"
        )
    with publisher.db.write() as conn:
        if check is not None:
            check(conn)
        count = delivery_store.redeliver_window(
            conn,
            now=now,
            account_id=account_id,
            since=since,
            # Left out: up to now, and what was created in this very instant (a fixed clock).
            until=until,
            status=str(status),
            endpoint_id=endpoint_id,
        )
    if count:
        publisher.notify()
    return count
