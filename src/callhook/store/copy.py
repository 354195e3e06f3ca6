"""Copy every Callhook table from one database to another: moving from SQLite to PostgreSQL.

Rows are read and written through the tables' own column types (``store.types``), so each
value is converted from the source's stored form to the target's: SQLite's integer
microseconds become ``timestamptz``, its 16-byte ids text (``StoredId``), and back the other
way. A generic copier (pgloader, ``.dump``) moves the stored forms as they are, which the other
backend cannot read. Both databases must be at this code's migration (``SCHEMA_REVISION``),
the target empty; tables go in foreign-key order, each in one transaction on the target, read
in batches. The signing secrets stay encrypted: the target's processes need the same master
key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Integer, Table, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from callhook.errors import InvalidRequest, StoreError, StoreUnavailable
from callhook.store.db import SCHEMA_REVISION, Database, driver_reason, redacted_url
from callhook.store.tables import metadata


@dataclass(frozen=True)
class Copied:
    """Rows copied, by table, in the order they were copied."""

    rows: dict[str, int]


def copy_database(
    source: Database,
    target: Database,
    *,
    batch_size: int = 2000,
    progress: Callable[[str, int], None] | None = None,
) -> Copied:
    """Copy every row of every Callhook table from ``source`` to ``target``, in one
    transaction on the target: all of it or, on any error, nothing.

    ``InvalidRequest`` (nothing written) when either database is not at ``SCHEMA_REVISION``
    or the target holds any row; ``StoreError`` (nothing written) when one cannot be reached
    or the target refuses a row. ``progress(table, rows)`` is called after each table. Stop
    every process writing to ``source`` first: rows written during the copy may be left out
    (docs/deployment.md, "Moving from SQLite to PostgreSQL")."""
    for name, db in (("source", source), ("target", target)):
        try:
            revision = db.schema_revision()
        except (StoreUnavailable, DBAPIError) as exc:
            cause = exc if isinstance(exc, DBAPIError) else exc.__cause__
            why = driver_reason(cause) if isinstance(cause, DBAPIError) else str(exc)
            where = redacted_url(db.url)
            raise StoreError(f"cannot reach the {name} database at {where}: {why}") from exc
        if revision != SCHEMA_REVISION:
            raise InvalidRequest(
                f"the {name} database is at schema revision {revision or 'none'}, not"
                f" {SCHEMA_REVISION}: run `callhook migrate --database-url URL` on it with this"
                " version first"
            )
    with target.read() as conn:
        taken = [t.name for t in metadata.sorted_tables if conn.execute(select(t).limit(1)).first()]
    if taken:
        raise InvalidRequest(
            f"the target database is not empty (rows in {', '.join(taken)}): copy into a"
            " freshly migrated one"
        )
    copied: dict[str, int] = {}
    current = "the first table"
    try:
        with target.write() as writing:
            for table in metadata.sorted_tables:
                current = table.name
                copied[current] = _copy_table(source, writing, table, batch_size)
                if progress is not None:
                    progress(current, copied[current])
    except IntegrityError as exc:
        # Each table is read on its own: rows written meanwhile (a delivery whose event came
        # after the events table was read) break a reference.
        raise StoreError(
            f"copying {current} failed, nothing was copied: {driver_reason(exc)} — a row"
            " refers to one that was not copied: if a Callhook process still writes to the"
            " source, stop every one and copy again"
        ) from exc
    except DBAPIError as exc:
        raise StoreError(
            f"copying {current} failed, nothing was copied: {driver_reason(exc)}"
        ) from exc
    return Copied(copied)


def _copy_table(source: Database, writing: Connection, table: Table, batch_size: int) -> int:
    count = 0
    with source.read() as reading:
        rows = reading.execution_options(yield_per=batch_size).execute(select(table))
        for chunk in rows.mappings().partitions(batch_size):
            writing.execute(table.insert(), [dict(row) for row in chunk])
            count += len(chunk)
    if writing.dialect.name == "postgresql":
        _move_sequence(writing, table)
    return count


def _move_sequence(conn: Connection, table: Table) -> None:
    """PostgreSQL: an integer primary key's sequence past the copied ids, so the next row
    written does not collide with a copied one (``setval`` of no sequence does nothing)."""
    [*keys] = table.primary_key.columns
    if len(keys) != 1 or not isinstance(keys[0].type, Integer):
        return
    column = keys[0].name
    conn.execute(
        text(
            "SELECT setval(pg_get_serial_sequence(:table, :column),"  # noqa: S608 (metadata names)
            f" COALESCE((SELECT MAX({column}) FROM {table.name}), 0) + 1, false)"
        ),
        {"table": table.name, "column": column},
    )
