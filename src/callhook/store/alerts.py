"""The alert outbox: ``record_alert`` (called by the endpoint state machine, inside its own
transaction), and the claim/complete cycle of the alert sender (``callhook.alerts.outbox``).

At most one alert per endpoint and transition: the row's key is the id derived from the
dedupe key (``alerts.payload.dedupe_key``) plus the channel, inserted with ON CONFLICT DO
NOTHING, so a transition recorded twice — a retried transaction, two workers that both saw it —
adds nothing, and never aborts the caller's transaction.

Sending is at least once: a row is claimed under a lease (``claim_id`` fences the update that
records the outcome); a sender that dies mid-send leaves the row to be claimed again when the
lease runs out. The claim counts as a try (``attempts``), so a send that kills its process
cannot be retried forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from callhook.alerts.model import Alert, AlertKind, AlertStatus, Channel
from callhook.alerts.payload import alert_id, dedupe_key
from callhook.store.dialect import skip_locked
from callhook.store.tables import alerts

#: The longest error text kept per row.
ERROR_LIMIT = 500


def record_alert(
    conn: Connection,
    kind: AlertKind,
    account_id: str,
    endpoint_id: str,
    data: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Record an alert on every channel, due at once; True if it is new, False if this
    endpoint's transition was recorded already (nothing changes then).

    Runs in the caller's transaction (commit it with the transition it is about). ``data``
    must hold JSON values (datetimes are written as RFC 3339) and say which transition it is:
    ``data["transition_at"]``, or ``data["delivery_id"]`` for ``delivery.exhausted``
    (``ValueError`` otherwise; see ``alerts.payload.dedupe_key``). Put ``url`` in it to name
    the endpoint in the mail, and whatever else the templates show (``reason``,
    ``failing_since``, ``disable_at``, ``next_probe_at``, ``event``, ``event_id``).
    """
    kind = AlertKind(kind)
    key = dedupe_key(kind, endpoint_id, data)
    text = orjson.dumps(dict(data), option=orjson.OPT_SORT_KEYS).decode()
    rows = [
        {
            "id": alert_id(key),
            "channel": str(channel),
            "dedupe_key": key,
            "kind": str(kind),
            "account_id": account_id,
            "endpoint_id": endpoint_id,
            "data": text,
            "status": str(AlertStatus.PENDING),
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for channel in Channel
    ]
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT that skipped a conflict.
    inserted = conn.execute(
        ins(alerts).values(rows).on_conflict_do_nothing().returning(alerts.c.channel)
    ).all()
    return bool(inserted)


def _due(now: datetime) -> Any:
    free = or_(alerts.c.lease_until.is_(None), alerts.c.lease_until <= now)
    return and_(alerts.c.status == str(AlertStatus.PENDING), alerts.c.next_attempt_at <= now, free)


def any_due(conn: Connection, *, now: datetime) -> bool:
    """Whether some alert is due and not leased: a read, so an idle sender never takes the
    writer's turn (SQLite has one) only to find nothing."""
    return conn.execute(select(alerts.c.id).where(_due(now)).limit(1)).first() is not None


def claim_due(
    conn: Connection, *, claim_id: str, now: datetime, lease: timedelta, limit: int
) -> list[Alert]:
    """Claim up to ``limit`` pending alerts that are due and not leased (oldest due first),
    counting this try; each comes back with ``attempts`` = this try's number."""
    free = or_(alerts.c.lease_until.is_(None), alerts.c.lease_until <= now)
    due = and_(alerts.c.status == str(AlertStatus.PENDING), alerts.c.next_attempt_at <= now, free)
    candidates = skip_locked(
        conn,
        select(alerts.c.id, alerts.c.channel)
        .where(due)
        .order_by(alerts.c.next_attempt_at)
        .limit(limit),
    )
    keys = [tuple(row) for row in conn.execute(candidates)]
    if not keys:
        return []
    conn.execute(
        update(alerts)
        .where(tuple_(alerts.c.id, alerts.c.channel).in_(keys), due)
        .values(claim_id=claim_id, lease_until=now + lease, attempts=alerts.c.attempts + 1)
    )
    rows = conn.execute(
        select(alerts).where(alerts.c.claim_id == claim_id).order_by(alerts.c.next_attempt_at)
    ).all()
    return [
        Alert(
            id=row.id,
            channel=Channel(row.channel),
            kind=AlertKind(row.kind),
            account_id=row.account_id,
            endpoint_id=row.endpoint_id,
            data=orjson.loads(row.data),
            created_at=row.created_at,
            attempts=row.attempts,
            claim_id=row.claim_id,
        )
        for row in rows
    ]


def _fenced(alert: Alert) -> Any:
    return and_(
        alerts.c.id == alert.id,
        alerts.c.channel == str(alert.channel),
        alerts.c.claim_id == alert.claim_id,
    )


def finish(
    conn: Connection,
    alert: Alert,
    status: AlertStatus,
    *,
    now: datetime,
    error: str | None = None,
) -> bool:
    """Record the end of ``alert``'s sending: ``sent``, ``failed`` (gave up) or ``skipped``.
    False if this claim no longer holds the row (the lease ran out and another sender took
    it)."""
    values: dict[str, Any] = {
        "status": str(status),
        "claim_id": None,
        "lease_until": None,
        "next_attempt_at": None,
        "last_error": error[:ERROR_LIMIT] if error else None,
    }
    if status is AlertStatus.SENT:
        values["sent_at"] = now
    return conn.execute(update(alerts).where(_fenced(alert)).values(**values)).rowcount > 0


def retry_at(conn: Connection, alert: Alert, when: datetime, *, error: str) -> bool:
    """Leave ``alert`` pending until ``when``, with why this try failed. False if this claim no
    longer holds the row."""
    return (
        conn.execute(
            update(alerts)
            .where(_fenced(alert))
            .values(
                claim_id=None,
                lease_until=None,
                next_attempt_at=when,
                last_error=error[:ERROR_LIMIT],
            )
        ).rowcount
        > 0
    )


def pending_by_channel(conn: Connection) -> dict[str, int]:
    """How many alerts wait to be sent, per channel (every channel present, 0 if none)."""
    counts = dict.fromkeys((str(c) for c in Channel), 0)
    rows = conn.execute(
        select(alerts.c.channel, func.count())
        .where(alerts.c.status == str(AlertStatus.PENDING))
        .group_by(alerts.c.channel)
    )
    for channel, count in rows:
        counts[channel] = int(count)
    return counts


def for_endpoint(conn: Connection, endpoint_id: str) -> list[dict[str, Any]]:
    """Every outbox row of one endpoint, oldest first, as plain dicts (for tests and
    diagnostics; ``data`` decoded)."""
    rows = conn.execute(
        select(alerts)
        .where(alerts.c.endpoint_id == endpoint_id)
        .order_by(alerts.c.created_at, alerts.c.id, alerts.c.channel)
    ).all()
    return [{**row._asdict(), "data": orjson.loads(row.data)} for row in rows]


def prune_finished(conn: Connection, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` alerts that are done (sent, failed or skipped) and were created
    before ``before``; pending ones stay whatever their age. Returns how many."""
    done = [str(AlertStatus.SENT), str(AlertStatus.FAILED), str(AlertStatus.SKIPPED)]
    keys = [
        tuple(row)
        for row in conn.execute(
            select(alerts.c.id, alerts.c.channel)
            .where(alerts.c.status.in_(done), alerts.c.created_at < before)
            .limit(limit)
        )
    ]
    if not keys:
        return 0
    return int(
        conn.execute(delete(alerts).where(tuple_(alerts.c.id, alerts.c.channel).in_(keys))).rowcount
    )
