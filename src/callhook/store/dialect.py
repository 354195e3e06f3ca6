"""Statements SQLite and PostgreSQL spell differently (upserts, row locks, advisory locks,
cursor-level executemany). Keep it small. Engine setup is ``db.py``'s; both are inside
``store/``, the only package that knows SQL."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, Table, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from callhook.store.types import StoredId


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING."""
    if not rows:
        return
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(ins(table).on_conflict_do_nothing(), rows)


def skip_locked(conn: Connection, query: Select[Any]) -> Select[Any]:
    """Row locks for a claim query: SKIP LOCKED on PostgreSQL; SQLite has one writer anyway."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def lock_rows(conn: Connection, table: Table, ids: Sequence[str] | Select[Any]) -> None:
    """Hold row locks on these rows of ``table`` (by its ``id``; ``ids`` a list or a query of
    them) until the transaction ends, taken in id order (two callers never deadlock on them):
    ``FOR UPDATE`` on PostgreSQL; nothing on SQLite, where a write transaction already excludes
    every other writer.

    For a check that reads rows other than the ones it changes: under READ COMMITTED, two
    transactions each deleting one of an event's last two deliveries would each still see the
    other's and both leave the event, which then no one ever removes. Locking the event first
    makes the second wait, and its next statement sees what the first committed."""
    if conn.dialect.name != "postgresql":
        return
    if not isinstance(ids, Select):
        if not ids:
            return
        ids = sorted(set(ids))
    key = table.c.id
    conn.execute(select(key).where(key.in_(ids)).order_by(key).with_for_update())


def lock_keys(conn: Connection, namespace: str, keys: Sequence[str]) -> None:
    """Hold a lock per key until the transaction ends, taken in a fixed order (no deadlocks):
    a transaction-scoped advisory lock on PostgreSQL; nothing on SQLite, where a write
    transaction already excludes every other writer. For check-then-write sequences that no
    row lock covers (counting rows that may not exist yet)."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"{namespace}:{key}"},
        )


class FastStatement:
    """A Core statement compiled once per dialect and run on the DB-API cursor.

    For the hot paths (recording attempt results, publishing), where SQLAlchemy's per-row
    parameter processing cost more than the SQL itself (profiled: a fifth of the worker's
    time). Contract: every bind parameter is named (``bindparam``; constants as ``null()`` or
    literals) and each row supplies them all, already in the driver's form — datetimes through
    ``types.time_encoder`` — except ids: parameters typed ``types.StoredId`` (compared with or
    assigned to such a column) are turned into the stored form here, so no caller can forget
    one. Runs inside the caller's transaction (same DB-API connection).
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, conn: Connection) -> _Compiled:
        name = conn.dialect.name
        found = self._compiled.get(name)
        if found is None:
            compiled = self.statement.compile(dialect=conn.dialect)
            assert isinstance(compiled, SQLCompiler)
            preset = sorted(k for k, v in compiled.params.items() if v is not None)
            if preset:
                raise ValueError(f"FastStatement needs bindparams, not values: {preset}")
            forms = {
                key: form
                for key, bind in compiled.binds.items()
                if isinstance(bind.type, StoredId) and (form := bind.type.driver_form(name))
            }
            # Positional drivers (sqlite3) take tuples in placeholder order; named ones the rows.
            if compiled.positional:
                order = list(compiled.positiontup or ())
                found = _Compiled(
                    compiled.string,
                    _tuple_getter(order),
                    tuple((i, forms[key]) for i, key in enumerate(order) if key in forms),
                )
            else:
                found = _Compiled(compiled.string, None, tuple(forms.items()))
            self._compiled[name] = found
        return found

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run once per row (one ``executemany`` on the cursor); the rows changed in all (as the
        driver counts them). Driver errors are raised as SQLAlchemy's (``IntegrityError``,
        ``OperationalError`` …), as ``conn.execute`` would."""
        if not rows:
            return 0
        compiled = self._for(conn)
        sql, pick = compiled.sql, compiled.pick
        params: Sequence[Any] = rows if pick is None else [pick(r) for r in rows]
        if compiled.forms:
            params = _to_stored(params, compiled.forms)
        dbapi = conn.dialect.loaded_dbapi
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, params)
            return max(int(cursor.rowcount), 0)
        except dbapi.Error as exc:
            raise DBAPIError.instance(sql, None, exc, dbapi.Error) from exc
        finally:
            cursor.close()


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    #: Each row's parameters in placeholder order (positional drivers), or None (named).
    pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None
    #: (placeholder position or name, what turns its value into the stored form).
    forms: tuple[tuple[Any, Callable[[Any], Any]], ...]


def _tuple_getter(names: list[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        only = names[0]
        return lambda row: (row[only],)
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = operator.itemgetter(*names)
    return getter


_UNSEEN = object()


def _to_stored(
    params: Sequence[Any], forms: tuple[tuple[Any, Callable[[Any], Any]], ...]
) -> list[Any]:
    """``params`` (tuples or mappings) with each value at ``forms``' places in its stored form.
    A batch repeats its account and endpoint ids: each distinct value is converted once."""
    memos: list[dict[Any, Any]] = [{} for _ in forms]
    out: list[Any] = []
    for row in params:
        values: Any = list(row) if isinstance(row, tuple) else dict(row)
        for (place, form), memo in zip(forms, memos, strict=True):
            value = values[place]
            stored = memo.get(value, _UNSEEN)
            if stored is _UNSEEN:
                stored = memo[value] = form(value)
            values[place] = stored
        out.append(values)
    return out
