"""The seam for what SQLite and PostgreSQL spell differently. Keep it small."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


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


class FastStatement:
    """A Core statement compiled once per dialect and run on the DB-API cursor.

    For the hot paths (recording attempt results, publishing), where SQLAlchemy's per-row
    parameter processing cost more than the SQL itself (profiled: a fifth of the worker's
    time). Contract: every bind parameter is named (``bindparam``; constants as ``null()`` or
    literals) and each row supplies them all, already in the driver's form — datetimes through
    ``types.time_encoder``. Runs inside the caller's transaction (same DB-API connection).
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, Callable[[Mapping[str, Any]], Any] | None]] = {}

    def _for(self, conn: Connection) -> tuple[str, Callable[[Mapping[str, Any]], Any] | None]:
        name = conn.dialect.name
        found = self._compiled.get(name)
        if found is None:
            compiled = self.statement.compile(dialect=conn.dialect)
            assert isinstance(compiled, SQLCompiler)
            preset = sorted(k for k, v in compiled.params.items() if v is not None)
            if preset:
                raise ValueError(f"FastStatement needs bindparams, not values: {preset}")
            # Positional drivers (sqlite3) take tuples in placeholder order; named ones the rows.
            order = list(compiled.positiontup or ()) if compiled.positional else None
            pick = None if order is None else _tuple_getter(order)
            found = self._compiled[name] = (compiled.string, pick)
        return found

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per row (one ``executemany`` on the cursor)."""
        if not rows:
            return
        sql, pick = self._for(conn)
        params: Sequence[Any] = rows if pick is None else [pick(r) for r in rows]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, params)
        finally:
            cursor.close()


def _tuple_getter(names: list[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        only = names[0]
        return lambda row: (row[only],)
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = operator.itemgetter(*names)
    return getter
