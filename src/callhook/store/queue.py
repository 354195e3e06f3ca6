"""The durable queue: claiming due deliveries under a lease, completing them, giving them back.

Claiming: a worker takes up to ``limit`` due rows (``pending``, ``next_attempt_at`` passed, no
live lease) in one statement, stamping them with a fresh ``claim_id`` and ``lease_until``.
Completing matches on ``claim_id``: once a lease has run out and another worker has claimed the
row, the first worker's result is refused (``complete`` reports it as stale) — a killed or stalled
worker can delay a delivery by one lease, never lose it or overwrite the new owner.

This module is the queue's public face; the claim's statements and the read of what sending
needs live in ``callhook.store._claiming`` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    and_,
    bindparam,
    case,
    func,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
    update,
)

from callhook.core import ordering as ordering_rules
from callhook.core.outcome import DeliveryStatus
from callhook.store import attempts as attempt_store
from callhook.store import dialect, ordering
from callhook.store._claiming import ClaimedJob, ClaimedRow, claim, claim_rows, load_claimed
from callhook.store.tables import deliveries
from callhook.store.types import UTCDateTime, time_encoder

__all__ = [
    "AttemptResult",
    "ClaimedJob",
    "ClaimedRow",
    "claim",
    "claim_rows",
    "complete",
    "load_claimed",
    "queue_stats",
    "release",
    "release_ids",
    "renew_lease",
]


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What happened to one claimed job; ``next_attempt_at`` None with not delivered = failed."""

    job: ClaimedJob
    started_at: datetime
    duration_ms: float
    delivered: bool
    status_code: int | None
    response_body: str | None
    error_class: str | None
    error_message: str | None
    next_attempt_at: datetime | None
    #: As stored: ``callhook.core.stored_headers.pack``.
    request_headers: bytes | None = None
    #: A 429/503's ``Retry-After`` in seconds (understood and honoured): the whole endpoint
    #: waits that long, not only this delivery.
    retry_after: float | None = None


_COMPLETE = dialect.FastStatement(
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"), deliveries.c.claim_id == bindparam("b_claim"))
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_next"),
        claim_key=bindparam("b_key"),
        claim_id=null(),
        claimed_by=null(),
        lease_until=null(),
        last_attempt_at=bindparam("b_started"),
        last_status_code=bindparam("b_code"),
        last_error_class=bindparam("b_error"),
        last_latency_ms=bindparam("b_ms"),
        delivered_at=bindparam("b_delivered"),
        # A finished delivery lets its call's line go (issue 14); a retried one keeps it. The
        # row's own value, not the job's: a sweep may have bypassed it since the claim.
        holds_line=and_(deliveries.c.holds_line, not_(bindparam("b_finished", type_=Boolean))),
        # The head-of-line bound counts from the holder's first attempt on its line (the first
        # since ``line_since``; the right-hand side reads the row as it was): a holder that
        # waited unattempted — its endpoint paused, failing, throttled or backlogged — has not
        # held its call back by failing, and the sweep leaves it (``ordering.sweep``).
        line_since=case(
            (bindparam("b_finished", type_=Boolean), null()),
            (
                and_(
                    deliveries.c.holds_line,
                    or_(
                        deliveries.c.last_attempt_at.is_(None),
                        deliveries.c.last_attempt_at < deliveries.c.line_since,
                    ),
                ),
                bindparam("b_started"),
            ),
            else_=deliveries.c.line_since,
        ),
        # The attempt itself, on the row (``store/attempts.py``; the earlier one was shifted).
        holds_attempt=true(),
        attempt_error_class=bindparam("b_error"),
        attempt_error_message=bindparam("b_message"),
        attempt_response_body=bindparam("b_response"),
        attempt_request_headers=bindparam("b_headers"),
    )
)


_OWNED = select(deliveries.c.id, deliveries.c.claim_id).where(
    deliveries.c.id.in_(bindparam("ids", expanding=True))
)
_OWNED_FOR_UPDATE = _OWNED.with_for_update()


def complete(
    conn: Connection, results: Sequence[AttemptResult], *, now: datetime | None = None
) -> list[AttemptResult]:
    """Record results of claimed jobs; return those refused because the claim was lost.

    One query finds which (delivery, claim) pairs this worker still owns (locking them on
    PostgreSQL so no one can claim them before the update), then one batched update records
    the rest, each attempt on its delivery's row (a retry's earlier attempt moved to
    ``attempts`` first: ``store.attempts.shift``). Deliveries that finished (delivered,
    failed, expired) and held their call's line hand it to the next waiting event of the call
    (``store.ordering``; its line locks are taken first, before any delivery row). ``now``
    stamps the promotion (default: the latest attempt's start).
    """
    if not results:
        return []
    ordering.lock_lines(
        conn,
        [
            (r.job.endpoint_id, r.job.call_id)
            for r in results
            if r.job.holds_line and r.job.call_id is not None
        ],
    )
    # Look up by primary key and compare claim ids here: SQLite plans a row-value
    # ``(id, claim_id) IN (...)`` as a full table scan (measured: the worker's main cost).
    owned_query = _OWNED_FOR_UPDATE if conn.dialect.name == "postgresql" else _OWNED
    ids = [r.job.delivery_id for r in results]
    owned = {(r[0], r[1]) for r in conn.execute(owned_query, {"ids": ids})}
    stale: list[AttemptResult] = []
    handed_on: dict[ordering.Line, int | None] = {}  # lines whose holder finished
    changes: list[dict[str, Any]] = []
    earlier: list[str] = []  # deliveries whose latest attempt moves to ``attempts`` first
    db_time = time_encoder(conn.dialect.name)
    for res in results:
        job = res.job
        if (job.delivery_id, job.claim_id) not in owned:
            stale.append(res)
            continue
        started = db_time(res.started_at)
        if res.delivered:
            status, next_at = DeliveryStatus.DELIVERED.value, None
        elif res.error_class == "expired":
            status, next_at = DeliveryStatus.EXPIRED.value, None
        elif res.next_attempt_at is not None:
            status, next_at = DeliveryStatus.PENDING.value, db_time(res.next_attempt_at)
        else:
            status, next_at = DeliveryStatus.FAILED.value, None
        finished = status != DeliveryStatus.PENDING
        if finished and job.holds_line and job.call_id is not None:
            handed_on[(job.endpoint_id, job.call_id)] = None
        changes.append(
            {
                "b_id": job.delivery_id,
                "b_claim": job.claim_id,
                "b_status": status,
                "b_attempts": job.attempt_number,
                "b_next": next_at,
                "b_key": None
                if res.next_attempt_at is None or next_at is None
                else db_time(
                    ordering_rules.claim_key(
                        ordering_rules.group_of(job.event), res.next_attempt_at
                    )
                ),
                "b_started": started,
                "b_code": res.status_code,
                "b_error": res.error_class,
                "b_ms": res.duration_ms,
                "b_delivered": started if res.delivered else None,
                "b_finished": finished,
                "b_message": res.error_message,
                "b_response": res.response_body,
                "b_headers": res.request_headers,
            }
        )
        if job.attempt_number > 1:  # a first attempt has no earlier one on its row
            earlier.append(job.delivery_id)
    attempt_store.shift(conn, earlier)
    _COMPLETE.executemany(conn, changes)
    if handed_on:
        ordering.promote(conn, handed_on, now=now or max(r.started_at for r in results))
    return stale


def renew_lease(
    conn: Connection, jobs: Iterable[ClaimedJob], *, now: datetime, lease: timedelta
) -> set[str]:
    """Extend the lease of jobs this worker still holds; return the delivery ids renewed.

    Fenced like ``complete``: a row is renewed only while its ``claim_id`` is still one of ours,
    so a worker whose lease ran out and was re-claimed elsewhere renews nothing.
    """
    held = list(jobs)
    if not held:
        return set()
    renewed = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id.in_([j.delivery_id for j in held]),
            deliveries.c.claim_id.in_({j.claim_id for j in held}),
        )
        .values(lease_until=now + lease)
        .returning(deliveries.c.id)
    )
    return set(renewed.scalars())


def release(conn: Connection, jobs: Iterable[ClaimedJob]) -> int:
    """Give unstarted claimed jobs back at once (graceful shutdown), without an attempt.

    One statement, fenced on the claim ids like ``renew_lease``; returns how many were released.
    """
    held = list(jobs)
    if not held:
        return 0
    return _release(conn, [j.delivery_id for j in held], {j.claim_id for j in held})


def release_ids(conn: Connection, ids: Sequence[str], *, claim_id: str) -> int:
    """``release`` for deliveries known by id, claimed under ``claim_id``."""
    return _release(conn, ids, {claim_id}) if ids else 0


def _release(conn: Connection, ids: Sequence[str], claim_ids: set[str]) -> int:
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(list(ids)), deliveries.c.claim_id.in_(claim_ids))
        .values(claim_id=None, claimed_by=None, lease_until=None)
    )
    return int(result.rowcount)


def queue_stats(conn: Connection, *, now: datetime) -> tuple[int, int, float]:
    """(pending, due now, age in seconds of the oldest due job)."""
    pending = conn.execute(
        select(func.count())
        .select_from(deliveries)
        .where(deliveries.c.status == DeliveryStatus.PENDING)
    ).scalar_one()
    due_count, oldest = conn.execute(
        select(
            func.count(), type_coerce(func.min(deliveries.c.next_attempt_at), UTCDateTime)
        ).where(deliveries.c.status == DeliveryStatus.PENDING, deliveries.c.next_attempt_at <= now)
    ).one()
    age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
    return int(pending), int(due_count), age
