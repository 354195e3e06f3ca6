"""Retention: delete old delivered deliveries, their attempts, and events nothing references.

What is pruned, ``older_than`` before ``now``:
- deliveries with status ``delivered`` and ``delivered_at`` before the cut-off (partial index
  ``ix_deliveries_delivered_at``), with all their attempts (``ix_attempts_delivery_id``);
- the events of those deliveries once no delivery references them (``ix_deliveries_event_id``);
- events that never had a delivery (``skip_reason`` set) created before the cut-off (partial index
  ``ix_events_skipped``; event ids sort by creation time).

Pending and failed deliveries are kept whatever their age (failed ones can still be redelivered).

Each batch is one short transaction of at most ``batch_size`` deliveries. On PostgreSQL the batch
locks its rows with ``FOR UPDATE SKIP LOCKED``, so two pruners never wait on each other and a
concurrent redelivery of the same row either wins (the row is then not delivered and is left
alone) or waits for one small batch. Delivered rows are never claimed, so pruning and delivery
touch disjoint rows. Between batches the pruner pauses, so on SQLite the single writer slot goes
back to the workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, exists, select

from callhook.core.ids import sortable_id
from callhook.store import dialect
from callhook.store.db import Database
from callhook.store.tables import attempts, deliveries, events


@dataclass
class PruneReport:
    """How many rows a prune removed."""

    deliveries: int = 0
    attempts: int = 0
    events: int = 0
    batches: int = 0

    def add(self, other: PruneReport) -> None:
        self.deliveries += other.deliveries
        self.attempts += other.attempts
        self.events += other.events
        self.batches += other.batches


class _NoBits:
    def getrandbits(self, k: int, /) -> int:
        return 0


def first_id_at(prefix: str, when: datetime) -> str:
    """The smallest id of ``prefix`` made at ``when``: every id made earlier sorts below it."""
    return f"{prefix}_{sortable_id(when, _NoBits())}"


def prune_batch(conn: Connection, *, cutoff: datetime, limit: int) -> PruneReport:
    """Prune at most ``limit`` deliveries (and ``limit`` skipped events) in ``conn``'s
    transaction."""
    report = PruneReport(batches=1)
    picked = conn.execute(
        dialect.skip_locked(
            conn,
            select(deliveries.c.id, deliveries.c.event_id)
            .where(deliveries.c.status == "delivered", deliveries.c.delivered_at < cutoff)
            .order_by(deliveries.c.delivered_at)
            .limit(limit),
        )
    ).all()
    if picked:
        ids = [r.id for r in picked]
        event_ids = sorted({r.event_id for r in picked})
        report.attempts = conn.execute(
            delete(attempts).where(attempts.c.delivery_id.in_(ids))
        ).rowcount
        report.deliveries = conn.execute(
            delete(deliveries).where(
                deliveries.c.id.in_(ids),
                # Re-checked under the lock: a redelivery that won the race keeps its row.
                deliveries.c.status == "delivered",
            )
        ).rowcount
        report.events = conn.execute(
            delete(events).where(
                events.c.id.in_(event_ids),
                ~exists().where(deliveries.c.event_id == events.c.id),
            )
        ).rowcount
    skipped = (
        select(events.c.id)
        .where(events.c.skip_reason.is_not(None), events.c.id < first_id_at("evt", cutoff))
        .order_by(events.c.id)
        .limit(limit)
    )
    report.events += conn.execute(
        delete(events).where(
            events.c.id.in_(skipped.scalar_subquery()),
            ~exists().where(deliveries.c.event_id == events.c.id),
        )
    ).rowcount
    return report


def prune(
    db: Database,
    *,
    now: datetime,
    older_than: timedelta,
    batch_size: int = 500,
    pause: float = 0.01,
    should_stop: Callable[[], bool] | None = None,
    max_batches: int | None = None,
) -> PruneReport:
    """Prune in batches until nothing old is left (or ``should_stop()``/``max_batches``)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = now - older_than
    total = PruneReport()
    while should_stop is None or not should_stop():
        with db.write() as conn:
            report = prune_batch(conn, cutoff=cutoff, limit=batch_size)
        total.add(report)
        done = report.deliveries < batch_size and report.events < batch_size
        if done or (max_batches is not None and total.batches >= max_batches):
            break
        if pause > 0:
            time.sleep(pause)
    return total
