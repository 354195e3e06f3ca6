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
from sqlalchemy.exc import DBAPIError, StatementError
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


#: Every key's lock in one statement, in the order of the array (a function scan yields its
#: elements in order; ``ORDER BY`` holds it there). One statement per key made the line locks
#: of a completion batch the ordered worker's main cost on PostgreSQL (profiled: a round trip
#: each, most of what ``queue.complete`` took).
_LOCK_KEYS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(t.key, 0)) "
    "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS t(key, n) ORDER BY t.n"
)


def lock_keys(conn: Connection, namespace: str, keys: Sequence[str]) -> None:
    """Hold a lock per key until the transaction ends, taken in a fixed order (sorted: no
    deadlocks between transactions that lock overlapping sets): a transaction-scoped advisory
    lock on PostgreSQL, all in one statement; nothing on SQLite, where a write transaction
    already excludes every other writer. For check-then-write sequences that no row lock
    covers (counting rows that may not exist yet)."""
    if conn.dialect.name != "postgresql" or not keys:
        return
    conn.execute(_LOCK_KEYS, {"keys": [f"{namespace}:{key}" for key in sorted(set(keys))]})


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


class FastQuery:
    """A Core or text statement that returns rows, compiled once per dialect (and per length
    of each list parameter) and run on the DB-API cursor; rows come back as tuples.

    For the claim's statements: on a one-job claim, SQLAlchemy's per-execution work (the
    statement's cache lookup, expanding ``IN`` lists, setting up the result) cost more than
    SQLite running them (profiled: ``bench/claim_cost.py``). Unlike ``FastStatement`` it takes
    values as ``conn.execute`` does: each parameter and each result column goes through its
    type's own processors (``UTCDateTime``, ``StoredId``, ``Boolean`` …), so the same
    statement gives the same values either way; a text statement's ``.columns()`` must name
    its columns in the order it returns them (checked on first use).

    List parameters are typed ``bindparam(…, expanding=True)``, for ``IN``/``NOT IN`` only: a
    list is padded to a power of two with its last value (which changes neither), so a list
    of up to n values takes at most ⌈log₂ n⌉ + 2 expansions (with the empty one), per list
    parameter, each built once (by SQLAlchemy, ``construct_expanded_state``) and kept. Raises
    ``ValueError`` for a statement it cannot run this way (values given in the statement
    rather than as bind parameters, literal-execute parameters, text columns out of order),
    SQLAlchemy's
    ``StatementError`` for a value its type refuses, and driver errors as SQLAlchemy's
    (``OperationalError`` …), as ``conn.execute`` would.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._shapes: dict[str, _Shape] = {}
        self._plans: dict[tuple[str, tuple[int, ...]], _QueryPlan] = {}

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run with ``params`` (every bind parameter by name; a list or set for each list
        parameter) inside ``conn``'s transaction and return every row, each value as its
        column's type gives it."""
        dialect = conn.dialect
        shape = self._shapes.get(dialect.name)
        if shape is None:
            shape = self._shapes[dialect.name] = _Shape.of(self.statement, dialect)
        lists = {name: _padded(list(params[name])) for name in shape.lists}
        key = (dialect.name, tuple(len(values) for values in lists.values()))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _QueryPlan.of(shape, lists)
        try:
            values = [
                (value if convert is None or value is None else convert(value))
                for value, convert in (
                    (params[name] if index is None else lists[name][index], convert)
                    for name, index, convert in plan.places
                )
            ]
        except (TypeError, ValueError) as exc:  # a value its type refuses
            raise StatementError(str(exc), plan.sql, None, exc) from exc
        arguments: Any = (
            tuple(values) if plan.names is None else dict(zip(plan.names, values, strict=True))
        )
        dbapi = dialect.loaded_dbapi
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(plan.sql, arguments)
            if not plan.checked:
                shape.check_columns([d[0] for d in cursor.description or ()])
                plan.checked = True
            fetched = cursor.fetchall()
        except dbapi.Error as exc:
            raise DBAPIError.instance(plan.sql, None, exc, dbapi.Error) from exc
        finally:
            cursor.close()
        decoders = shape.decoders
        if not any(decoders):
            return [tuple(row) for row in fetched]
        return [
            tuple(
                value if decode is None or value is None else decode(value)
                for value, decode in zip(row, decoders, strict=True)
            )
            for row in fetched
        ]


def _padded(values: list[Any]) -> list[Any]:
    """``values`` padded with its last value to a power-of-two length (empty stays empty)."""
    if len(values) < 2:
        return values
    size = 1 << (len(values) - 1).bit_length()
    return values + [values[-1]] * (size - len(values))


@dataclass(frozen=True, slots=True)
class _Marker:
    """Stands for a value while SQLAlchemy expands a statement: the placeholders it lands in
    say which parameter (and list index) each takes. Not a tuple: a tuple reads as a row
    value to ``IN``."""

    name: str
    index: int | None


@dataclass(frozen=True, slots=True)
class _Shape:
    """A statement compiled for one dialect, with what every expansion of it shares."""

    compiled: SQLCompiler
    dialect: Any
    #: The list parameters, in a fixed order.
    lists: tuple[str, ...]
    #: Each bind parameter's type's bind processor for this dialect (None: none).
    converters: Mapping[str, Callable[[Any], Any] | None]
    #: Per result column, its type's result processor for this dialect.
    decoders: tuple[Callable[[Any], Any] | None, ...]
    #: The result columns' names, as the statement declares them.
    columns: tuple[str, ...]

    @classmethod
    def of(cls, statement: ClauseElement, dialect: Any) -> _Shape:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        binds = compiled.binds
        rendered = sorted(k for k, b in binds.items() if b.literal_execute and not b.expanding)
        if rendered:  # markers would be rendered into the SQL
            raise ValueError(f"FastQuery cannot take literal-execute parameters: {rendered}")
        preset = sorted(k for k, v in compiled.params.items() if v is not None)
        if preset:  # values written into the statement: spell them as literals or bindparams
            raise ValueError(f"FastQuery needs bindparams, not values: {preset}")
        result_columns = compiled._result_columns  # (no public spelling)
        return cls(
            compiled,
            dialect,
            tuple(name for name, bind in binds.items() if bind.expanding),
            {
                name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                for name, bind in binds.items()
            },
            tuple(
                c[3].dialect_impl(dialect).result_processor(dialect, None) for c in result_columns
            ),
            tuple(c[0] for c in result_columns),
        )

    def check_columns(self, returned: list[str]) -> None:
        """Refuse a statement whose rows do not come in its declared column order (a text
        statement's ``.columns()`` is matched by name by SQLAlchemy, by place here)."""
        if self.columns and [c.lower() for c in returned] != [c.lower() for c in self.columns]:
            raise ValueError(
                f"FastQuery: the statement returns {returned}, declared {list(self.columns)}"
            )


@dataclass(slots=True)
class _QueryPlan:
    sql: str
    #: Per placeholder: the parameter's name, its index in a list parameter (None: a plain
    #: one), and its type's bind processor.
    places: tuple[tuple[str, int | None, Callable[[Any], Any] | None], ...]
    #: The placeholders' names for a named paramstyle (psycopg), None for a positional one.
    names: tuple[str, ...] | None
    #: Whether the returned columns were checked against the declared ones.
    checked: bool = False

    @classmethod
    def of(cls, shape: _Shape, lists: Mapping[str, list[Any]]) -> _QueryPlan:
        compiled = shape.compiled
        markers = {
            name: (
                [_Marker(name, i) for i in range(len(lists[name]))]
                if name in lists
                else _Marker(name, None)
            )
            for name in compiled.binds
        }
        state = compiled.construct_expanded_state(markers)
        order = list(state.positiontup or ()) if compiled.positional else list(state.parameters)
        escaped = compiled.escaped_bind_names
        places = []
        for placeholder in order:
            found = state.parameters.get(placeholder)
            if found is None:  # a positional order names parameters before their escaping
                found = state.parameters[escaped.get(placeholder, placeholder)]
            assert isinstance(found, _Marker)
            places.append((found.name, found.index, shape.converters[found.name]))
        return cls(state.statement, tuple(places), None if compiled.positional else tuple(order))


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
