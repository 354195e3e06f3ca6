"""Delivery health of one account, for the dashboard: portable SQL (SQLite and PostgreSQL).

Contracts
---------
* :func:`health` looks at the 24 hours before ``now``:

  - ``hourly``: 24 buckets aligned to UTC hours, the last one holding ``now``; each counts the
    deliveries *created* in that hour as ``delivered``, ``failed`` (given up, or still retrying
    after a failed attempt: from the customer's side the endpoint is failing them) and
    ``pending`` (not attempted yet).
  - ``success_rate``: delivered / (delivered + failed) of deliveries created in the last 24 h;
    ``None`` when there is nothing to judge.
  - ``p95_ms``: the nearest-rank 95th percentile of the duration of attempts started in the last
    24 h that reached the network (``core.outcome.NOT_THE_ENDPOINT`` attempts, such as
  ``integration_disabled``, are not timed); ``None``
    without attempts. Computed with one ``ORDER BY … OFFSET`` query, not by loading them all.

* :func:`failure_streak` describes the attempts since the account's last successful one (an
  attempt without ``error_class``): when they started failing, how many, and the last error.
  ``None`` when the latest attempt succeeded or there are no failures. Attempts that are not the
  endpoint's fault (``NOT_THE_ENDPOINT``: integration disabled, no signing secret, window
  expired, Callhook's own error) are left out.

Both read only the attempts of deliveries created in the ``LOOK_BACK`` before ``now`` (48 h and
5 min), so a page view costs the account's last two days, not its whole history (before: every
attempt the account ever had). A delivery is attempted within its retry window of 24 h from its
creation (``core.retry.WINDOW`` and ``LATE_GRACE``), so that holds every attempt of the last
24 h except those of a delivery whose window started again more than a day after it was created:
redelivered, replayed after a recovery, or held while its endpoint was paused. A failure streak
is reported from at most ``LOOK_BACK`` ago.

Hour buckets are filtered with plain range comparisons on the stored timestamps (one ``CASE``
sum per bucket), so no dialect-specific date functions are needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from callhook.core import retry
from callhook.core.outcome import NOT_THE_ENDPOINT, DeliveryStatus
from callhook.store import attempts as attempt_store
from callhook.store.tables import deliveries
from callhook.store.types import decode_time

_DELIVERED = DeliveryStatus.DELIVERED.value
_FAILED = DeliveryStatus.FAILED.value
_PENDING = DeliveryStatus.PENDING.value

WINDOW = timedelta(hours=24)
#: How far back the attempts read here go, by their delivery's creation (see module doc).
LOOK_BACK = WINDOW + retry.WINDOW + retry.LATE_GRACE
#: Attempts that say nothing about the endpoint (nothing sent, or Callhook's own failure).
_NOT_THE_ENDPOINT = sorted(NOT_THE_ENDPOINT)


@dataclass(frozen=True, slots=True)
class HourBucket:
    start: datetime
    delivered: int
    failed: int
    pending: int


@dataclass(frozen=True, slots=True)
class Health:
    since: datetime
    delivered: int
    failed: int
    pending: int
    success_rate: float | None
    p95_ms: float | None
    attempts: int
    hourly: tuple[HourBucket, ...]


@dataclass(frozen=True, slots=True)
class FailureStreak:
    since: datetime
    consecutive: int
    last_error: str
    last_message: str | None
    last_status_code: int | None


def _failing(status: Any) -> Any:
    """A delivery that has failed, or is retrying after a failed attempt."""
    return (status == _FAILED) | ((status == _PENDING) & (deliveries.c.attempts > 0))


def hour_starts(now: datetime) -> list[datetime]:
    """The starts of the 24 UTC hours ending with the one that holds ``now``, oldest first."""
    current = now.replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=23 - i) for i in range(24)]


def health(conn: Connection, account_id: str, *, now: datetime) -> Health:
    """The account's delivery health over the 24 hours before ``now`` (see module doc)."""
    starts = hour_starts(now)
    ends = [*starts[1:], starts[-1] + timedelta(hours=1)]
    status = deliveries.c.status
    created = deliveries.c.created_at
    since = now - WINDOW
    columns: list[Any] = []
    for start, end in zip(starts, ends, strict=True):
        in_hour = and_(created >= start, created < end)
        columns.append(func.sum(case((and_(in_hour, status == _DELIVERED), 1), else_=0)))
        columns.append(func.sum(case((and_(in_hour, _failing(status)), 1), else_=0)))
        columns.append(
            func.sum(
                case((and_(in_hour, status == _PENDING, deliveries.c.attempts == 0), 1), else_=0)
            )
        )
    in_window = created >= since
    columns.append(func.sum(case((and_(in_window, status == _DELIVERED), 1), else_=0)))
    columns.append(func.sum(case((and_(in_window, _failing(status)), 1), else_=0)))
    columns.append(
        func.sum(
            case((and_(in_window, status == _PENDING, deliveries.c.attempts == 0), 1), else_=0)
        )
    )
    row = conn.execute(
        select(*columns).where(
            deliveries.c.account_id == account_id, created >= min(starts[0], since)
        )
    ).one()
    values = [int(v or 0) for v in row]
    hourly = tuple(
        HourBucket(
            start=s, delivered=values[3 * i], failed=values[3 * i + 1], pending=values[3 * i + 2]
        )
        for i, s in enumerate(starts)
    )
    delivered, failed, pending = values[-3], values[-2], values[-1]
    judged = delivered + failed
    p95, count = _p95(conn, account_id, since=since, now=now)
    return Health(
        since=since,
        delivered=delivered,
        failed=failed,
        pending=pending,
        success_rate=(delivered / judged) if judged else None,
        p95_ms=p95,
        attempts=count,
        hourly=hourly,
    )


def _recent(account_id: str, now: datetime) -> Any:
    """The account's deliveries within ``LOOK_BACK`` (a condition on ``deliveries``)."""
    return and_(deliveries.c.account_id == account_id, deliveries.c.created_at >= now - LOOK_BACK)


def _judged(tried: Any) -> Any:
    """Attempts whose outcome says something about the endpoint."""
    return tried.c.error_class.is_(None) | tried.c.error_class.not_in(_NOT_THE_ENDPOINT)


def _p95(
    conn: Connection, account_id: str, *, since: datetime, now: datetime
) -> tuple[float | None, int]:
    tried = attempt_store.every_attempt(_recent(account_id, now))
    where = and_(tried.c.started_at >= since, _judged(tried))
    count = int(conn.execute(select(func.count()).select_from(tried).where(where)).scalar_one())
    if count == 0:
        return None, 0
    rank = math.ceil(0.95 * count)  # nearest-rank: the smallest value with 95 % at or below it
    value = conn.execute(
        select(tried.c.duration_ms)
        .where(where)
        .order_by(tried.c.duration_ms)
        .offset(rank - 1)
        .limit(1)
    ).scalar_one()
    return float(value), count


def failure_streak(conn: Connection, account_id: str, *, now: datetime) -> FailureStreak | None:
    """The run of failed attempts since the last successful one, or None (see module doc)."""
    tried = attempt_store.every_attempt(_recent(account_id, now))
    last_ok = conn.execute(
        select(func.max(tried.c.started_at)).where(tried.c.error_class.is_(None))
    ).scalar_one()
    failing = and_(tried.c.error_class.is_not(None), tried.c.error_class.not_in(_NOT_THE_ENDPOINT))
    if last_ok is not None:
        failing = and_(failing, tried.c.started_at > _as_datetime(last_ok))
    count, first = conn.execute(
        select(func.count(), func.min(tried.c.started_at)).where(failing)
    ).one()
    if not count:
        return None
    last = conn.execute(
        select(tried.c.error_class, tried.c.error_message, tried.c.status_code)
        .where(failing)
        .order_by(tried.c.started_at.desc(), tried.c.number.desc())
        .limit(1)
    ).one()
    return FailureStreak(
        since=_as_datetime(first),
        consecutive=int(count),
        last_error=str(last.error_class),
        last_message=last.error_message,
        last_status_code=last.status_code,
    )


def _as_datetime(value: Any) -> datetime:
    """An aggregate of a timestamp column as an aware UTC datetime (SQLite may hand back its
    stored integer)."""
    when = decode_time(value)
    assert when is not None
    return when


@dataclass(frozen=True, slots=True)
class EndpointGlance:
    """One endpoint's health at a glance over the 24 hours before ``now``: its deliveries
    created then (``failed`` as in :func:`health`), and the outcome of the newest of them that
    was attempted (``last_ok`` None: none was; attempts that are not the endpoint's fault,
    ``NOT_THE_ENDPOINT``, are left out)."""

    delivered: int
    failed: int
    pending: int
    last_attempt_at: datetime | None
    last_ok: bool | None
    last_error: str | None
    last_status_code: int | None


def endpoint_glances(
    conn: Connection, account_id: str, endpoint_ids: list[str], *, now: datetime
) -> dict[str, EndpointGlance]:
    """:class:`EndpointGlance` of each of ``endpoint_ids`` (the account's: the caller lists
    them). One grouped count, then one indexed ``LIMIT 1`` per endpoint (at most
    ``max_endpoints_per_account`` of them, on ``ix_deliveries_endpoint_created``)."""
    since = now - WINDOW
    status = deliveries.c.status
    counts = {
        row.endpoint_id: row
        for row in conn.execute(
            select(
                deliveries.c.endpoint_id,
                func.sum(case((status == _DELIVERED, 1), else_=0)).label("n_delivered"),
                func.sum(case((_failing(status), 1), else_=0)).label("n_failed"),
                func.sum(
                    case(((status == _PENDING) & (deliveries.c.attempts == 0), 1), else_=0)
                ).label("n_pending"),
            )
            .where(deliveries.c.account_id == account_id, deliveries.c.created_at >= since)
            .group_by(deliveries.c.endpoint_id)
        )
    }
    out: dict[str, EndpointGlance] = {}
    for endpoint_id in endpoint_ids:
        last = conn.execute(
            select(
                deliveries.c.last_attempt_at,
                deliveries.c.last_error_class,
                deliveries.c.last_status_code,
            )
            .where(
                deliveries.c.endpoint_id == endpoint_id,
                deliveries.c.created_at >= since,
                deliveries.c.last_attempt_at.is_not(None),
                deliveries.c.last_error_class.is_(None)
                | deliveries.c.last_error_class.not_in(_NOT_THE_ENDPOINT),
            )
            .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
            .limit(1)
        ).first()
        found = counts.get(endpoint_id)
        out[endpoint_id] = EndpointGlance(
            delivered=int(found.n_delivered or 0) if found else 0,
            failed=int(found.n_failed or 0) if found else 0,
            pending=int(found.n_pending or 0) if found else 0,
            last_attempt_at=None if last is None else _as_datetime(last.last_attempt_at),
            last_ok=None if last is None else last.last_error_class is None,
            last_error=None if last is None else last.last_error_class,
            last_status_code=None if last is None else last.last_status_code,
        )
    return out
