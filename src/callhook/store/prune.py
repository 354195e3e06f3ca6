"""Retention: delete what is past its use, so no table grows without bound with traffic.

What is pruned, ``older_than`` before ``now`` (when retention is on):
- deliveries with status ``delivered`` and ``delivered_at`` before the cut-off (partial index
  ``ix_deliveries_delivered_at``), with all their attempts (``ix_attempts_delivery_id``);
- deliveries with status ``failed`` whose last attempt (or, never attempted, creation) is before
  the cut-off, with their attempts: a failed delivery can be redelivered for the retention period
  after it gave up, not forever (an endpoint that is gone for good would otherwise keep every
  event and ~14 attempts each);
- the events of those deliveries once no delivery references them (``ix_deliveries_event_id``);
- events that never had a delivery (``skip_reason`` set) created before the cut-off (partial index
  ``ix_events_skipped``; event ids sort by creation time);
- the per-call sequence counters (``call_sequences``) of calls none of whose events is left;
- alerts that are done (sent, given up, skipped) created before the cut-off (``store.alerts``).

Always, whatever the retention: dashboard sessions past their lifetime and failed sign-ins older
than the throttling window (``web_sessions``).

Pending deliveries are kept whatever their age (they are still being retried).

Each batch is one short transaction of at most ``batch_size`` deliveries. On PostgreSQL the batch
locks its rows with ``FOR UPDATE SKIP LOCKED``, so two pruners never wait on each other and a
concurrent redelivery of the same row either wins (the row is then not delivered and is left
alone) or waits for one small batch. Delivered rows are never claimed, so pruning and delivery
touch disjoint rows. Before deciding whether an event has a delivery left, a batch locks the
event (``dialect.lock_rows``), as an endpoint's removal does: two transactions each taking one
of its last two deliveries would otherwise each see the other's and leave the event, which
nothing would then ever remove. Between batches the pruner pauses, so on SQLite the single
writer slot goes back to the workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, exists, func, or_, select, tuple_

from callhook.core.ids import sortable_id
from callhook.core.outcome import DeliveryStatus
from callhook.store import alerts as alert_store
from callhook.store import dialect
from callhook.store import web_sessions as session_store
from callhook.store.db import Database
from callhook.store.tables import attempts, call_sequences, deliveries, events

_DELIVERED = DeliveryStatus.DELIVERED.value
_FAILED = DeliveryStatus.FAILED.value


@dataclass
class PruneReport:
    """How many rows a prune removed."""

    deliveries: int = 0
    attempts: int = 0
    events: int = 0
    batches: int = 0
    call_sequences: int = 0
    sessions: int = 0
    login_failures: int = 0
    alerts: int = 0

    def add(self, other: PruneReport) -> None:
        self.deliveries += other.deliveries
        self.attempts += other.attempts
        self.events += other.events
        self.batches += other.batches
        self.call_sequences += other.call_sequences
        self.sessions += other.sessions
        self.login_failures += other.login_failures
        self.alerts += other.alerts


class _NoBits:
    def getrandbits(self, k: int, /) -> int:
        return 0


def first_id_at(prefix: str, when: datetime) -> str:
    """The smallest id of ``prefix`` made at ``when``: every id made earlier sorts below it."""
    return f"{prefix}_{sortable_id(when, _NoBits())}"


def _calls_of(conn: Connection, event_ids: list[str]) -> list[tuple[str, str]]:
    if not event_ids:
        return []
    rows = conn.execute(
        select(events.c.account_id, events.c.call_id)
        .where(events.c.id.in_(event_ids), events.c.call_id.is_not(None))
        .distinct()
    ).all()
    return [(r.account_id, r.call_id) for r in rows]


def _forget_calls(conn: Connection, calls: list[tuple[str, str]]) -> int:
    """Delete the sequence counters of these calls that have no event left."""
    if not calls:
        return 0
    key = tuple_(call_sequences.c.account_id, call_sequences.c.call_id)
    return int(
        conn.execute(
            delete(call_sequences).where(
                key.in_(calls),
                ~exists().where(
                    events.c.account_id == call_sequences.c.account_id,
                    events.c.call_id == call_sequences.c.call_id,
                ),
            )
        ).rowcount
    )


def prune_batch(conn: Connection, *, cutoff: datetime, limit: int) -> PruneReport:
    """Prune at most ``limit`` delivered and ``limit`` failed deliveries (and ``limit`` skipped
    events) in ``conn``'s transaction."""
    report = PruneReport(batches=1)
    delivered = conn.execute(
        dialect.skip_locked(
            conn,
            select(deliveries.c.id, deliveries.c.event_id)
            .where(deliveries.c.status == _DELIVERED, deliveries.c.delivered_at < cutoff)
            .order_by(deliveries.c.delivered_at)
            .limit(limit),
        )
    ).all()
    gave_up_at = func.coalesce(deliveries.c.last_attempt_at, deliveries.c.created_at)
    failed = conn.execute(
        dialect.skip_locked(
            conn,
            select(deliveries.c.id, deliveries.c.event_id)
            .where(deliveries.c.status == _FAILED, gave_up_at < cutoff)
            .limit(limit),
        )
    ).all()
    picked = [*delivered, *failed]
    if picked:
        ids = [r.id for r in picked]
        event_ids = sorted({r.event_id for r in picked})
        gone = and_(
            deliveries.c.id.in_(ids),
            # Re-checked under the lock: a redelivery that won the race keeps its row, and its
            # attempts.
            or_(
                and_(deliveries.c.status == _DELIVERED, deliveries.c.delivered_at < cutoff),
                and_(deliveries.c.status == _FAILED, gave_up_at < cutoff),
            ),
        )
        # Each delivery's latest attempt is on its row (``store/attempts.py``), the rest rows of
        # ``attempts``: both count.
        held = conn.execute(
            select(func.count()).where(gone, deliveries.c.holds_attempt.is_(True))
        ).scalar_one()
        earlier = conn.execute(
            delete(attempts).where(attempts.c.delivery_id.in_(select(deliveries.c.id).where(gone)))
        ).rowcount
        report.attempts = earlier + int(held)
        report.deliveries = conn.execute(delete(deliveries).where(gone)).rowcount
        calls = _calls_of(conn, event_ids)
        dialect.lock_rows(conn, events, event_ids)  # another batch may take their last delivery
        report.events = conn.execute(
            delete(events).where(
                events.c.id.in_(event_ids),
                ~exists().where(deliveries.c.event_id == events.c.id),
            )
        ).rowcount
        report.call_sequences += _forget_calls(conn, calls)
    skipped_ids = list(
        conn.execute(
            select(events.c.id)
            .where(events.c.skip_reason.is_not(None), events.c.id < first_id_at("evt", cutoff))
            .order_by(events.c.id)
            .limit(limit)
        ).scalars()
    )
    if skipped_ids:
        calls = _calls_of(conn, skipped_ids)
        report.events += conn.execute(
            delete(events).where(
                events.c.id.in_(skipped_ids),
                ~exists().where(deliveries.c.event_id == events.c.id),
            )
        ).rowcount
        report.call_sequences += _forget_calls(conn, calls)
    return report


def prune_accounts_state(conn: Connection, *, now: datetime, limit: int) -> PruneReport:
    """Expired dashboard sessions and failed sign-ins past the throttling window (at most
    ``limit`` of each)."""
    return PruneReport(
        sessions=session_store.prune_sessions(conn, now=now, limit=limit),
        login_failures=session_store.prune_failures(
            conn, before=now - session_store.THROTTLE_WINDOW, limit=limit
        ),
    )


def prune(
    db: Database,
    *,
    now: datetime,
    older_than: timedelta | None,
    batch_size: int = 500,
    pause: float = 0.01,
    should_stop: Callable[[], bool] | None = None,
    max_batches: int | None = None,
) -> PruneReport:
    """Prune in batches until nothing old is left (or ``should_stop()``/``max_batches``).
    ``older_than`` None keeps deliveries and events (retention off) and prunes the rest."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    total = PruneReport()
    while should_stop is None or not should_stop():
        with db.write() as conn:
            report = prune_accounts_state(conn, now=now, limit=batch_size)
            if older_than is not None:
                report.add(prune_batch(conn, cutoff=now - older_than, limit=batch_size))
                report.alerts = alert_store.prune_finished(
                    conn, before=now - older_than, limit=batch_size
                )
        report.batches = 1
        total.add(report)
        done = all(
            n < batch_size
            for n in (
                report.deliveries,
                report.events,
                report.sessions,
                report.login_failures,
                report.alerts,
            )
        )
        if done or (max_batches is not None and total.batches >= max_batches):
            break
        if pause > 0:
            time.sleep(pause)
    return total
