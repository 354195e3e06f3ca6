"""Copies of one pre-filled queue, one per drain (``bench.ordering``): SQLite files, or
PostgreSQL databases made with ``CREATE DATABASE … TEMPLATE`` on the server at
``phases.POSTGRES_URL`` (its role needs ``CREATEDB`` and ``CHECKPOINT`` rights: the local
server's ``postgres`` has both).

Each PostgreSQL copy is vacuumed and analysed before its drain, and the server checkpointed, so
every drain starts from the same clean state: the unordered baseline's rewrite of every queued
row (``UNORDER``) leaves a dead version of each behind, and the copy's log writes would
otherwise land in the timed drain. Copies are dropped as soon as their drain ends, the rest on
leaving the ``with`` block, and databases a killed run left behind (named for a process that
no longer runs) when the next run starts.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
from collections.abc import Callable
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

#: ``bench_<prefix>_<pid>_<6 hex>_<suffix>``: the names this module gives its databases.
_NAME = re.compile(r"^bench_.+_(?P<pid>\d+)_[0-9a-f]{6}_[a-z0-9]+$")


class QueueCopies:
    """``with QueueCopies(prefix, database) as q``: ``q.source_url`` is where to pre-fill the
    queue (None: SQLite at the source cluster's ``db_path``), ``q.seal(source)`` readies it
    for copying and counts its deliveries, ``q.copy(source, copy, unordered=…)`` makes one
    copy (its URL), ``q.discard(url)`` drops it."""

    def __init__(self, prefix: str, database: str) -> None:
        if database not in ("sqlite", "postgresql"):
            raise ValueError(f"unknown database {database!r}")
        self.database = database
        self.stem = f"bench_{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
        self.made: list[str] = []
        self.copies = 0
        self.source_url: str | None = None

    def __enter__(self) -> QueueCopies:
        if self.database == "postgresql":
            _drop_abandoned(self._admin)
            self.source_url = self._create(f"{self.stem}_source", template=None)
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
            except psycopg.Error:
                failed.append(name)
        self.made = failed
        if failed and exc is None:
            raise RuntimeError(f"ordering bench: could not drop the databases {failed}")

    def _admin(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise RuntimeError(
                f"ordering bench: PostgreSQL at {POSTGRES_URL} is unreachable"
                " (start it, or point BENCH_POSTGRES_URL at one)"
            ) from exc

    def _url(self, name: str) -> str:
        return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None) -> str:
        with self._admin() as conn:
            like = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{like}')
        self.made.append(name)
        return self._url(name)

    def _drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def seal(self, source: Cluster) -> int:
        """Ready the pre-filled queue for copying (SQLite: its log folded into the file;
        PostgreSQL: vacuumed and analysed); how many deliveries it holds."""
        query = "SELECT count(*) FROM deliveries"
        if self.database == "sqlite":
            source.checkpoint()
            with sqlite3.connect(source.db_path) as conn:
                return int(conn.execute(query).fetchone()[0])
        assert source.database_url is not None
        with psycopg.connect(source.database_url, autocommit=True) as pg:
            pg.execute("VACUUM (ANALYZE)")
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
        url = self._create(f"{self.stem}_{self.copies}", template=f"{self.stem}_source")
        with psycopg.connect(url, autocommit=True) as pg:
            if unordered:
                with pg.transaction():
                    for statement in UNORDER:
                        pg.execute(statement)
            pg.execute("VACUUM (ANALYZE)")
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


def _drop_abandoned(admin: Callable[[], psycopg.Connection[Any]]) -> None:
    """Drop databases this module made in runs whose process is gone (killed before its
    ``with`` block could drop them)."""
    with admin() as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
        for name in names:
            m = _NAME.match(name)
            if m is None or _alive(int(m["pid"])):
                continue
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
