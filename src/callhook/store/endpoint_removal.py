"""Removing an endpoint without holding the database's writer for the whole of its history.

An endpoint's finished deliveries (``delivered``, ``failed``, ``expired``) with their attempts
are deleted first, in batches of ``batch_size``, each its own short transaction; the endpoint
itself — its open deliveries, secrets, subscriptions, health — goes last, in one transaction
(:func:`callhook.store.endpoints.delete_endpoint`). Until then it keeps working: the batches
take only history no worker touches, so a removal interrupted at any point (the process killed,
the database gone) leaves a whole endpoint with less history, and running it again finishes it.

Why: in one transaction, SQLite's only writer was held for the whole removal, about 2 s per
100,000 deliveries, and every publish and every worker's claim and completion of every account
waited behind it. In batches of 500 a writer beside it waits 7 ms at p50 and ~60 ms at p99 (the
write-ahead log's resets included), and the removal takes ~60 % longer: ``python -m
bench.endpoint_removal``, docs/performance.md ("Removing an endpoint").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

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
#: The pause between two batches (seconds), so other writers of this process get their turn.
PAUSE = 0.002
_FINISHED = tuple(
    s.value for s in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED)
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
    between: Callable[[], None] = lambda: time.sleep(PAUSE),
) -> Removal:
    """Delete the non-primary endpoint ``endpoint_id`` of ``account_id`` with its deliveries,
    their attempts, its secrets and subscriptions, as ``delete_endpoint`` does, its finished
    deliveries first in batches of ``batch_size`` (``between()`` runs after each full batch).

    Raises ``EndpointNotFound`` and ``PrimaryEndpointDelete`` before anything is deleted;
    ``StoreUnavailable`` from any transaction (what earlier batches deleted stays deleted, the
    endpoint stays whole: call it again)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with db.read() as conn:
        if get(conn, account_id, endpoint_id).primary:
            raise PrimaryEndpointDelete()
    removed = transactions = 0
    while True:
        with db.write() as conn:
            n = purge_batch(conn, account_id, endpoint_id, limit=batch_size)
        removed += n
        transactions += 1
        if n < batch_size:
            break
        between()
    with db.write() as conn:
        removed += delete_endpoint(conn, account_id, endpoint_id)
    return Removal(deliveries=removed, transactions=transactions + 1)


def purge_batch(conn: Connection, account_id: str, endpoint_id: str, *, limit: int) -> int:
    """Delete at most ``limit`` finished deliveries of the endpoint with their attempts in
    ``conn``'s transaction; an event left with no delivery gets the skip reason
    ``endpoint_deleted``, as ``delete_endpoint`` gives it. Returns how many were deleted."""
    ours = select(endpoints.c.id).where(
        endpoints.c.id == endpoint_id, endpoints.c.account_id == account_id
    )
    if conn.execute(ours).first() is None:
        return 0
    # By endpoint alone, so the plan walks ``ix_deliveries_endpoint_created``, not every
    # delivery of the account.
    picked = conn.execute(
        dialect.skip_locked(
            conn,
            select(deliveries.c.id, deliveries.c.event_id)
            .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.status.in_(_FINISHED))
            .limit(limit),
        )
    ).all()
    if not picked:
        return 0
    # The rows are ours until the commit (SQLite's one writer; ``FOR UPDATE`` on PostgreSQL, where
    # a row a redelivery holds is skipped and left to the endpoint's own last transaction).
    ids = [r.id for r in picked]
    conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(ids)))
    conn.execute(delete(deliveries).where(deliveries.c.id.in_(ids)))
    conn.execute(
        sql_update(events)
        .where(
            events.c.id.in_(sorted({r.event_id for r in picked})),
            events.c.skip_reason.is_(None),
            ~exists().where(deliveries.c.event_id == events.c.id),
        )
        .values(skip_reason=SkipReason.ENDPOINT_DELETED.value)
    )
    return len(ids)
