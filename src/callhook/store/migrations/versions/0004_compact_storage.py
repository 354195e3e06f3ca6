"""compact storage: integer times on SQLite, packed request headers, fewer indexes

Revision ID: 0004_compact
Revises: 0004_alerts
Create Date: 2026-11-29 18:00:00.000000

Issue 16, "store less per delivery" (docs/decisions.md, "Storing a delivery in under 1 KB"):

- SQLite times become integer microseconds since 1970 (``store.types.UTCDateTime``; 8 bytes
  instead of 26 characters of text, in rows and in every index that holds a time). The columns
  were declared ``DATETIME`` (numeric affinity), which keeps integers as integers, so only the
  values change: every ``DATETIME`` column of every table. PostgreSQL keeps ``timestamptz``.
- ``attempts.request_headers`` holds the packed form (``core.stored_headers``: about 80 bytes
  instead of 430 of JSON): ``bytea`` on PostgreSQL; SQLite stores the bytes as they are.
  Existing JSON rows stay readable as they are.
- ``attempts.event_id`` goes: nothing read it (the delivery names the event).
- ``ix_deliveries_event_id`` goes: ``uq_deliveries_event_endpoint`` starts with ``event_id``
  and serves the same lookups.
- The idempotency key's unique constraint becomes a unique index of only the events that have a
  key (most have none, and each paid an index entry). SQLite cannot drop a constraint in place:
  ``events`` is rebuilt (its partial index made again afterwards).

Event bodies need no change here: rows written from now on hold the packed body
(``core.stored_body``), older rows their whole body, and both read back as sent. Downgrade
writes every packed value back in the old form.
"""

# The SQL here is built from constants and reflected column names only (no input): S608.
# ruff: noqa: S608
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0004_compact"
down_revision = "0004_alerts"
branch_labels = None
depends_on = None

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SKIPPED = sa.text("skip_reason IS NOT NULL")
_HAS_KEY = sa.text("idempotency_key IS NOT NULL")


def _datetime_columns(conn: sa.Connection) -> list[tuple[str, str]]:
    """(table, column) of every ``DATETIME`` column of the SQLite database."""
    tables = [
        r[0]
        for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name != 'alembic_version'"
        )
    ]
    out = []
    for table in tables:
        for row in conn.exec_driver_sql(f'PRAGMA table_info("{table}")'):
            if str(row[2]).upper() == "DATETIME":
                out.append((table, str(row[1])))
    return out


def _times_to_integers(conn: sa.Connection) -> None:
    for table, column in _datetime_columns(conn):
        col = f'"{column}"'
        # What SQLAlchemy's DATETIME format wrote (fixed width, microseconds) converts in SQL;
        # anything else stored as text (hand-written rows) through Python's parser.
        conn.exec_driver_sql(
            f'UPDATE "{table}" SET {col} ='
            f" CAST(strftime('%s', substr({col}, 1, 19)) AS INTEGER) * 1000000"
            f" + CAST(substr({col}, 21, 6) AS INTEGER)"
            f" WHERE typeof({col}) = 'text' AND length({col}) = 26 AND substr({col}, 20, 1) = '.'"
        )
        rows = conn.exec_driver_sql(
            f"SELECT rowid, {col} FROM \"{table}\" WHERE typeof({col}) = 'text'"
        ).all()
        for rowid, value in rows:
            when = datetime.fromisoformat(value)
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
            micros = (when - _EPOCH) // timedelta(microseconds=1)
            conn.exec_driver_sql(f'UPDATE "{table}" SET {col} = ? WHERE rowid = ?', (micros, rowid))


def _times_to_text(conn: sa.Connection) -> None:
    for table, column in _datetime_columns(conn):
        col = f'"{column}"'
        conn.exec_driver_sql(
            f'UPDATE "{table}" SET {col} ='
            f" strftime('%Y-%m-%d %H:%M:%S', {col} / 1000000, 'unixepoch')"
            f" || '.' || printf('%06d', {col} % 1000000)"
            f" WHERE typeof({col}) = 'integer'"
        )


def upgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        _times_to_integers(conn)
    else:
        op.alter_column(
            "attempts",
            "request_headers",
            type_=sa.LargeBinary(),
            existing_type=sa.Text(),
            postgresql_using="convert_to(request_headers, 'UTF8')",
        )
    op.drop_index("ix_deliveries_event_id", table_name="deliveries")
    op.execute("ALTER TABLE attempts DROP COLUMN event_id")
    if sqlite:
        op.drop_index("ix_events_skipped", table_name="events")
        with op.batch_alter_table("events") as batch:
            batch.drop_constraint("uq_events_account_idempotency", type_="unique")
        op.create_index("ix_events_skipped", "events", ["id"], sqlite_where=_SKIPPED)
    else:
        op.drop_constraint("uq_events_account_idempotency", "events", type_="unique")
    op.create_index(
        "ix_events_idempotency",
        "events",
        ["account_id", "idempotency_key"],
        unique=True,
        sqlite_where=_HAS_KEY,
        postgresql_where=_HAS_KEY,
    )


def _unpack_rows(conn: sa.Connection) -> None:
    """Packed bodies and headers back to the whole body and the JSON the old code reads."""
    from callhook.core import stored_body, stored_headers
    from callhook.store.types import decode_time

    events = conn.execute(
        sa.text(
            "SELECT id, event, pbx_id, account_id, created_at, call_id, sequence, body FROM events"
        )
    ).all()
    for e in events:
        body = bytes(e.body)
        if body and body[0] in stored_body.PACKED:
            whole = stored_body.unpack(
                body,
                id=e.id,
                event=e.event,
                pbx_id=e.pbx_id,
                account_id=e.account_id,
                created_at=_as_time(decode_time, e.created_at),
                call_id=e.call_id,
                sequence=e.sequence,
            )
            conn.execute(
                sa.text("UPDATE events SET body = :b WHERE id = :id"), {"b": whole, "id": e.id}
            )
    attempts = conn.execute(
        sa.text(
            "SELECT a.id, a.number, a.request_headers, d.event_id, d.event"
            " FROM attempts a JOIN deliveries d ON d.id = a.delivery_id"
            " WHERE a.request_headers IS NOT NULL"
        )
    ).all()
    for a in attempts:
        headers = stored_headers.unpack(
            a.request_headers, event_id=a.event_id, event=a.event, attempt=a.number
        )
        text = None if headers is None else orjson.dumps(headers)
        conn.execute(
            sa.text("UPDATE attempts SET request_headers = :h WHERE id = :id"),
            {"h": text, "id": a.id},
        )


def _as_time(decode: Any, value: Any) -> datetime:
    when = decode(value)
    assert when is not None
    return when  # type: ignore[no-any-return]


def downgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    _unpack_rows(conn)
    op.drop_index("ix_events_idempotency", table_name="events")
    if sqlite:
        op.drop_index("ix_events_skipped", table_name="events")
        with op.batch_alter_table("events") as batch:
            batch.create_unique_constraint(
                "uq_events_account_idempotency", ["account_id", "idempotency_key"]
            )
        op.create_index("ix_events_skipped", "events", ["id"], sqlite_where=_SKIPPED)
    else:
        op.create_unique_constraint(
            "uq_events_account_idempotency", "events", ["account_id", "idempotency_key"]
        )
    op.add_column(
        "attempts",
        sa.Column("event_id", sa.String(length=40), nullable=False, server_default=""),
    )
    op.execute(
        "UPDATE attempts SET event_id ="
        " (SELECT d.event_id FROM deliveries d WHERE d.id = attempts.delivery_id)"
    )
    op.create_index("ix_deliveries_event_id", "deliveries", ["event_id"])
    if sqlite:
        # SQLite keeps the bytes of a JSON text written as a blob: make them text again.
        op.execute(
            "UPDATE attempts SET request_headers = CAST(request_headers AS TEXT)"
            " WHERE typeof(request_headers) = 'blob'"
        )
        _times_to_text(conn)
    else:
        op.alter_column(
            "attempts",
            "request_headers",
            type_=sa.Text(),
            existing_type=sa.LargeBinary(),
            postgresql_using="convert_from(request_headers, 'UTF8')",
        )
