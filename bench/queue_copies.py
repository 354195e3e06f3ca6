"""Copies of one pre-filled queue, one per drain (``bench.ordering``): SQLite files, or
PostgreSQL databases made with ``CREATE DATABASE … TEMPLATE`` on the server at
``phases.POSTGRES_URL`` (its role needs ``CREATEDB`` and ``CHECKPOINT`` rights: the local
server's ``postgres`` has both).

On PostgreSQL the pre-filled database is the ordered drains' template, and a second template
holds the unordered baseline (``UNORDER``): rewriting every queued row leaves a dead version of
each, so that one is compacted (``VACUUM FULL``) once, and every drain's copy starts as compact
as the other kind's. Each copy is analysed and the server checkpointed before its drain (the
copy's log writes would otherwise land in the timed drain).

Clean-up: a copy is dropped after its drain, the rest on leaving the ``with`` block; a run
killed before that leaves databases named ``callhook_bench_…``, which the next run drops. A
run holds a session advisory lock named for its databases while it lasts (seen server-wide in
``pg_locks``), so the next run takes only those of runs that have ended, on any host and
whatever database their URL names, and only databases its role owns.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sqlite3
import sys
from types import TracebackType
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.cluster import Cluster
from bench.phases import POSTGRES_URL

#: The unordered baseline's copy: every endpoint ``ordering: none``, every queued delivery
#: pending (valid SQL on both backends).
UNORDER = (
    "UPDATE endpoints SET ordering = 'none'",
    "UPDATE deliveries SET status = 'pending', holds_line = FALSE, line_since = NULL "
    "WHERE status = 'waiting' OR holds_line",
)

#: ``callhook_bench_<8 hex>_<suffix>``: the names this module gives its databases.
_NAME = re.compile(r"^callhook_bench_(?P<run>[0-9a-f]{8})_[a-z0-9]+$")
_RUN_LOCK = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"
#: Whether any session on the server holds a run's lock. Advisory locks belong to the database
#: they were taken in, so ``pg_try_advisory_lock`` from a session on another database would
#: not see a run whose ``BENCH_POSTGRES_URL`` names another one; ``pg_locks`` lists them all
#: (a bigint key is split into ``classid``, high half, and ``objid``, with ``objsubid`` 1).
_RUN_HELD = """
SELECT EXISTS (
    SELECT 1 FROM pg_locks l, hashtextextended(%s, 0) k
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.classid = ((k >> 32) & 4294967295)::oid AND l.objid = (k & 4294967295)::oid
)"""


def _admin() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"ordering bench: PostgreSQL at {POSTGRES_URL} is unreachable"
            " (start it, or point BENCH_POSTGRES_URL at one)"
        ) from exc


def _url(name: str) -> str:
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


class QueueCopies:
    """``with QueueCopies(database) as q``: ``q.source_url`` is where to pre-fill the queue
    (None: SQLite at the source cluster's ``db_path``), ``q.seal(source)`` readies it for
    copying and counts its deliveries, ``q.copy(source, copy, unordered=…)`` makes one copy
    (its URL; None on SQLite), ``q.discard(url)`` drops it."""

    def __init__(self, database: str) -> None:
        if database not in ("sqlite", "postgresql"):
            raise ValueError(f"unknown database {database!r}")
        self.database = database
        self.run = secrets.token_hex(4)
        self.stem = f"callhook_bench_{self.run}"
        self.made: list[str] = []
        self.copies = 0
        self.source_url: str | None = None
        self._held: psycopg.Connection[Any] | None = None

    def __enter__(self) -> QueueCopies:
        if self.database == "postgresql":
            self._held = _admin()
            try:
                self._held.execute(_RUN_LOCK, (self.stem,))
                _drop_abandoned(self._held)
                self.source_url = self._create(f"{self.stem}_source", template=None)
            except BaseException:
                self.__exit__(None, None, None)
                raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failed: list[str] = []
        for name in reversed(self.made):
            try:
                self._drop(name)
            except Exception:  # keep going: each database is dropped or named below
                failed.append(name)
        self.made = failed
        if self._held is not None:
            self._held.close()  # the run lock goes with the session
            self._held = None
        if failed:
            message = f"ordering bench: could not drop the databases {failed}"
            if exc is None:
                raise RuntimeError(message)
            print(message, file=sys.stderr)  # the run's own error is the one to raise

    def _create(self, name: str, template: str | None) -> str:
        with _admin() as conn:
            like = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{like}')
        self.made.append(name)
        return _url(name)

    def _drop(self, name: str) -> None:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def seal(self, source: Cluster) -> int:
        """Ready the pre-filled queue for copying (SQLite: its log folded into the file;
        PostgreSQL: both templates compacted and analysed); how many deliveries it holds."""
        query = "SELECT count(*) FROM deliveries"
        if self.database == "sqlite":
            source.checkpoint()
            with sqlite3.connect(source.db_path) as conn:
                return int(conn.execute(query).fetchone()[0])
        assert source.database_url is not None
        with psycopg.connect(source.database_url, autocommit=True) as pg:
            pg.execute("VACUUM (FULL, ANALYZE)")
        unordered = self._create(f"{self.stem}_unordered", template=f"{self.stem}_source")
        with psycopg.connect(unordered, autocommit=True) as pg:
            with pg.transaction():
                for statement in UNORDER:
                    pg.execute(statement)
            pg.execute("VACUUM (FULL, ANALYZE)")
            row = pg.execute(query).fetchone()
            assert row is not None
            return int(row[0])

    def copy(self, source: Cluster, copy: Cluster, *, unordered: bool) -> str | None:
        """Copy ``source``'s queue for ``copy`` (made unordered if asked); its database URL
        (None: SQLite at ``copy.db_path``)."""
        if self.database == "sqlite":
            shutil.copy(source.db_path, copy.db_path)
            if unordered:
                with sqlite3.connect(copy.db_path) as conn:
                    for statement in UNORDER:
                        conn.execute(statement)
            return None
        self.copies += 1
        template = f"{self.stem}_{'unordered' if unordered else 'source'}"
        url = self._create(f"{self.stem}_{self.copies}", template=template)
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("ANALYZE")
            pg.execute("CHECKPOINT")
        return url

    def discard(self, url: str | None) -> None:
        """Drop the copy at ``url`` (nothing for SQLite: the work directory goes)."""
        if url is None:
            return
        name = make_url(url).database
        if name in self.made:
            self._drop(name)
            self.made.remove(name)


def _drop_abandoned(conn: psycopg.Connection[Any]) -> None:
    """Drop the databases of runs that ended without dropping them (killed): named by this
    module, owned by this role, and their run's lock free. Any that cannot be dropped is
    reported and left."""
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE pg_get_userbyid(datdba) = current_user"
    ).fetchall()
    for (name,) in rows:
        m = _NAME.match(name)
        if m is None:
            continue
        row = conn.execute(_RUN_HELD, (f"callhook_bench_{m['run']}",)).fetchone()
        if row is None or row[0]:
            continue  # that run is still going (this one's own lock included)
        try:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error as exc:
            print(f"ordering bench: left {name}: {exc}", file=sys.stderr)
