"""The seam for what SQLite and PostgreSQL spell differently. Keep it small."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING."""
    if not rows:
        return
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(ins(table).on_conflict_do_nothing(), rows)


def add_to_counters(
    conn: Connection, table: Table, keys: list[dict[str, Any]], column: str, amounts: list[int]
) -> list[int]:
    """Atomically add ``amounts[i]`` to ``column`` of the row with ``keys[i]`` (missing rows
    start at 0); return the new values, in order. Three statements whatever the count.

    Rows are created, then read locked (PostgreSQL; SQLite's write transaction already excludes
    other writers) in key order, so concurrent publishers serialize per row and never deadlock.
    """
    if not keys:
        return []
    names = list(keys[0])
    ident = [tuple(k[n] for n in names) for k in keys]
    order = sorted(set(ident))
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        ins(table).on_conflict_do_nothing(),
        [{**dict(zip(names, key, strict=True)), column: 0} for key in order],
    )
    # One IN list per key column, not a row-value IN: SQLite plans ``(a, b) IN (...)`` as a
    # full scan, but serves per-column lists from the composite primary key. The cross
    # product may fetch a few extra rows; only the wanted keys are kept.
    query = (
        select(*(table.c[n] for n in names), table.c[column])
        .where(*(table.c[n].in_({key[i] for key in order}) for i, n in enumerate(names)))
        .order_by(*(table.c[n] for n in names))
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    wanted = set(order)
    totals = {
        key: int(row[-1]) for row in conn.execute(query) if (key := tuple(row[:-1])) in wanted
    }
    for key, amount in zip(ident, amounts, strict=True):
        totals[key] += amount
    conn.execute(
        update(table)
        .where(*(table.c[n] == bindparam(f"k_{n}") for n in names))
        .values({column: bindparam("v_total")}),
        [
            {**{f"k_{n}": v for n, v in zip(names, key, strict=True)}, "v_total": totals[key]}
            for key in order
        ],
    )
    return [totals[key] for key in ident]


def skip_locked(conn: Connection, query: Select[Any]) -> Select[Any]:
    """Row locks for a claim query: SKIP LOCKED on PostgreSQL; SQLite has one writer anyway."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query
