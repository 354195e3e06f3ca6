"""Where a delivery's attempts are kept: the latest on the delivery's own row, every earlier
one as a row of ``attempts`` (issue 16; docs/decisions.md, "The latest attempt on its delivery
row").

Most deliveries are attempted once. That attempt as a row of its own took ~175 bytes of the
~1,060 a delivered event took on SQLite (its row, its rowid and its ``ix_attempts_delivery_id``
entry), while the delivery's row already held its time, duration, status and number. Now the
row holds the rest too (``holds_attempt`` and four ``attempt_*`` columns, ``tables.deliveries``);
a next attempt first moves the latest into ``attempts`` (``shift``), in the same transaction
as the update that records the new one (``queue.complete``). Everything that reads attempts
reads both places: ``log`` (a delivery's detail) and ``every_attempt`` (the dashboard's
statistics, ``store.stats``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Subquery, bindparam, literal, select, union_all

from callhook.store import dialect
from callhook.store.tables import attempts, deliveries

#: The latest attempt's fields on a delivery row, by the ``attempts`` column each stands for.
LATEST: dict[str, ColumnElement[Any]] = {
    "delivery_id": deliveries.c.id,
    "number": deliveries.c.attempts,
    "started_at": deliveries.c.last_attempt_at,
    "duration_ms": deliveries.c.last_latency_ms,
    "status_code": deliveries.c.last_status_code,
    "response_body": deliveries.c.attempt_response_body,
    "error_class": deliveries.c.attempt_error_class,
    "error_message": deliveries.c.attempt_error_message,
    "request_headers": deliveries.c.attempt_request_headers,
}

_SHIFT = dialect.FastStatement(
    attempts.insert().from_select(
        list(LATEST),
        select(*LATEST.values()).where(
            deliveries.c.id == bindparam("s_id"), deliveries.c.holds_attempt.is_(True)
        ),
    )
)


def shift(conn: Connection, delivery_ids: Iterable[str]) -> int:
    """Move the latest attempt of each of these deliveries that holds one into ``attempts``
    (one indexed ``INSERT … SELECT`` each, one ``executemany``); the caller then writes the new
    latest over it, in the same transaction. Returns the rows moved."""
    rows = [{"s_id": delivery_id} for delivery_id in delivery_ids]
    return _SHIFT.executemany(conn, rows)


def log_rows(conn: Connection, delivery_id: str) -> list[Any]:
    """Every attempt of the delivery as rows with ``attempts``' column names, in order (number,
    then the order they were recorded in)."""
    earlier = select(*(attempts.c[name] for name in LATEST), attempts.c.id.label("recorded")).where(
        attempts.c.delivery_id == delivery_id
    )
    latest = select(
        *(column.label(name) for name, column in LATEST.items()),
        # After every earlier one: attempts' ids are positive.
        literal(0).label("recorded"),
    ).where(deliveries.c.id == delivery_id, deliveries.c.holds_attempt.is_(True))
    both = union_all(earlier, latest).subquery()
    query = select(both).order_by(both.c.number, both.c.recorded == 0, both.c.recorded)
    return list(conn.execute(query))


def every_attempt(where: ColumnElement[bool]) -> Subquery:
    """Every attempt of the deliveries matching ``where`` (a condition on ``deliveries``), from
    both places: columns ``started_at``, ``duration_ms``, ``status_code``, ``error_class``,
    ``error_message`` and ``number``. ``where`` is applied in each half, so each half can use the
    delivery indexes it names."""
    names = ("started_at", "duration_ms", "status_code", "error_class", "error_message", "number")
    earlier = (
        select(*(attempts.c[name] for name in names))
        .select_from(attempts.join(deliveries, deliveries.c.id == attempts.c.delivery_id))
        .where(where)
    )
    latest = select(*(LATEST[name].label(name) for name in names)).where(
        where, deliveries.c.holds_attempt.is_(True)
    )
    return union_all(earlier, latest).subquery("every_attempt")
