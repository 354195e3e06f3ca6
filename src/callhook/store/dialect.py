"""The seam for what SQLite and PostgreSQL spell differently. Keep it small."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING."""
    if not rows:
        return
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(ins(table).on_conflict_do_nothing(), rows)


def increment_counter(conn: Connection, table: Table, keys: dict[str, Any], column: str) -> int:
    """Atomically add 1 to ``column`` of the row with ``keys`` (starting at 1); return it."""
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        ins(table)
        .values(**keys, **{column: 1})
        .on_conflict_do_update(index_elements=list(keys), set_={column: table.c[column] + 1})
        .returning(table.c[column])
    )
    value = conn.execute(stmt).scalar_one()
    return int(value)


def skip_locked(conn: Connection, query: Select[Any]) -> Select[Any]:
    """Row locks for a claim query: SKIP LOCKED on PostgreSQL; SQLite has one writer anyway."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query
