"""Removing an endpoint without holding the database's writer for the whole of its history.

An endpoint's deliveries with their attempts are deleted in batches of ``batch_size``, each its
own short transaction, least useful first: ``delivered``, then ``expired``, then ``failed`` (a
customer could still redeliver those), then what is still queued (``waiting`` before
``pending``: an event goes before the earlier one of its call it waits for; one published
during the removal behind a deleted one is released by its endpoint's head-of-line bound, or
goes with the endpoint). The
endpoint itself — secrets, subscriptions, health, whatever arrived meanwhile — goes last, in
one transaction (:func:`callhook.store.endpoints.delete_endpoint`). Until then it keeps
working: a removal interrupted at any point (the process killed, the database gone) leaves the
endpoint there, subscribed and delivering, with part of its deliveries gone, and running it
again finishes it. A worker sending a delivery that is deleted meanwhile records nothing, as
with the one-transaction delete.

Why: in one transaction, SQLite's only writer was held for the whole removal, about 2 s per
100,000 deliveries, and every publish and every worker's claim and completion of every account
waited behind it. After each batch of 500 the removal pauses as long as the batch took, so it
takes at most half of the writer's time: a writer beside it waits 0.3–0.5 ms at p50 and ~30 ms
at p99, and the removal takes about 6 s per 100,000 deliveries (``python -m
bench.endpoint_removal``, docs/performance.md, "Removing an endpoint").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, exists, select
from sqlalchemy import update as sql_update

from callhook.core.outcome import DeliveryStatus, SkipReason
from callhook.errors import PrimaryEndpointDelete
from callhook.store import dialect
from callhook.store.db import Database
from callhook.store.endpoint_reads import get
from callhook.store.endpoints import delete_endpoint
from callhook.store.tables import attempts, deliveries, endpoints, events

#: Deliveries removed per transaction (see the module doc for what a batch costs).
BATCH_SIZE = 500
#: The order in which the batches take an endpoint's deliveries (see the module doc).
PHASES: tuple[tuple[DeliveryStatus, ...], ...] = (
    (DeliveryStatus.DELIVERED,),
    (DeliveryStatus.EXPIRED,),
    (DeliveryStatus.FAILED,),
    (DeliveryStatus.WAITING,),
    (DeliveryStatus.PENDING,),
)


@dataclass(frozen=True)
class Removal:
    """What :func:`remove_endpoint` removed: the endpoint's deliveries (all of them) and the
    transactions it took."""

    deliveries: int
    transactions: int


def remove_endpoint(
    db: Database,
    account_id: str,
    endpoint_id: str,
    *,
    batch_size: int = BATCH_SIZE,
    pace: Callable[[float], None] = time.sleep,
) -> Removal:
    """Delete the non-primary endpoint ``endpoint_id`` of ``account_id`` with its deliveries,
    their attempts, its secrets and subscriptions, as ``delete_endpoint`` does, its deliveries
    first in batches of ``batch_size`` (see the module doc). After each full batch,
    ``pace(seconds the batch took)``.

    Raises ``EndpointNotFound`` and ``PrimaryEndpointDelete`` before anything is deleted;
    ``StoreUnavailable`` from any transaction (what earlier batches deleted stays deleted, the
    endpoint stays: call it again)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with db.read() as conn:
        if get(conn, account_id, endpoint_id).primary:
            raise PrimaryEndpointDelete()
    removed = transactions = 0
    for statuses in PHASES:
        after: datetime | None = None
        while True:
            start = time.perf_counter()
            with db.write() as conn:
                n, after = purge_batch(
                    conn, account_id, endpoint_id, statuses, limit=batch_size, after=after
                )
            removed += n
            transactions += 1
            if n < batch_size:
                break
            pace(time.perf_counter() - start)
    with db.write() as conn:
        removed += delete_endpoint(conn, account_id, endpoint_id)
    return Removal(deliveries=removed, transactions=transactions + 1)


def purge_batch(
    conn: Connection,
    account_id: str,
    endpoint_id: str,
    statuses: tuple[DeliveryStatus, ...],
    *,
    limit: int,
    after: datetime | None = None,
) -> tuple[int, datetime | None]:
    """Delete at most ``limit`` deliveries with one of ``statuses`` of the account's non-primary
    endpoint, the oldest first from those created at ``after`` or later, with their attempts,
    in ``conn``'s transaction; an event left with no delivery gets the skip reason
    ``endpoint_deleted``, as ``delete_endpoint`` gives it. Returns how many were deleted (0 for
    an endpoint that is not the account's or is its primary one) and the creation time to pass
    as ``after`` next (so a batch never walks again past what earlier ones deleted: PostgreSQL
    keeps dead index entries until a vacuum)."""
    ours = select(endpoints.c.id).where(
        endpoints.c.id == endpoint_id,
        endpoints.c.account_id == account_id,
        endpoints.c.is_primary.is_(False),
    )
    if conn.execute(ours).first() is None:
        return 0, after
    # By endpoint alone, so the plan walks ``ix_deliveries_endpoint_created``, not every
    # delivery of the account.
    query = (
        select(deliveries.c.id, deliveries.c.event_id, deliveries.c.created_at)
        .where(
            deliveries.c.endpoint_id == endpoint_id,
            deliveries.c.status.in_([s.value for s in statuses]),
        )
        .order_by(deliveries.c.created_at)
        .limit(limit)
    )
    if after is not None:
        query = query.where(deliveries.c.created_at >= after)
    picked = conn.execute(dialect.skip_locked(conn, query)).all()
    if not picked:
        return 0, after
    # The rows are ours until the commit (SQLite's one writer; ``FOR UPDATE`` on PostgreSQL, where
    # a row another transaction holds is skipped and left to the endpoint's last transaction).
    ids = [r.id for r in picked]
    event_ids = sorted({r.event_id for r in picked})
    conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(ids)))
    conn.execute(delete(deliveries).where(deliveries.c.id.in_(ids)))
    dialect.lock_rows(conn, events, event_ids)  # a prune may take their last other delivery
    conn.execute(
        sql_update(events)
        .where(
            events.c.id.in_(event_ids),
            events.c.skip_reason.is_(None),
            ~exists().where(deliveries.c.event_id == events.c.id),
        )
        .values(skip_reason=SkipReason.ENDPOINT_DELETED.value)
    )
    return len(ids), picked[-1].created_at
