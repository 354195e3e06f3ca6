"""Engine setup and transactions: the one place that knows SQLite from PostgreSQL.

``Database.write()`` opens a write transaction (``BEGIN IMMEDIATE`` on SQLite, so concurrent
writers queue on ``busy_timeout`` instead of failing on lock upgrade); ``Database.read()`` a
read-only one. Query modules take a ``Connection`` and never open transactions themselves, so
callers compose several queries into one atomic unit.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool, QueuePool

from callhook.errors import ConfigurationError

log = logging.getLogger("callhook.store")


def normalize_url(url: str) -> str:
    """Map user-facing URLs to SQLAlchemy ones: ``postgresql://`` uses psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=8,
        max_overflow=8,
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if parsed.database and parsed.database != ":memory:":
            # Checkpoints run in the background (``Checkpointer``), not inside a commit.
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


#: Query parameters of a ``postgresql://`` URL that size the pool instead of going to the server.
POOL_PARAMETERS = {"pool_size": 10, "max_overflow": 10, "pool_timeout": 30}


def _postgres_engine(url: str) -> Engine:
    """A pooled psycopg 3 engine. ``?pool_size=&max_overflow=&pool_timeout=`` in the URL size it.

    ``pool_pre_ping`` checks a connection before handing it out, so after a server restart the
    first transaction of each pooled connection reconnects instead of failing; ``pool_recycle``
    bounds a connection's life (helps behind PgBouncer and idle-timeout firewalls).
    """
    parsed = make_url(url)
    query = dict(parsed.query)
    pool: dict[str, int] = {}
    for name, default in POOL_PARAMETERS.items():
        raw = query.pop(name, None)
        try:
            pool[name] = int(raw) if isinstance(raw, str) else default
        except ValueError as exc:
            raise ConfigurationError(f"{name} in the database URL must be an integer") from exc
    query.setdefault("application_name", "callhook")
    query.setdefault("connect_timeout", "10")
    return create_engine(
        parsed.set(query=query),
        pool_pre_ping=True,
        pool_recycle=1800,
        **pool,
    )


class WriterFileLock:
    """An exclusive ``flock`` on a file, shared by this process's threads one at a time (the
    caller serializes them). Opened lazily and again after a fork, since a child inherits the
    parent's open file description — and with it the parent's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


#: Seconds between background checkpoints of a SQLite file's write-ahead log.
CHECKPOINT_INTERVAL = 0.5


class Checkpointer:
    """Folds a SQLite file's write-ahead log back into the database every
    ``CHECKPOINT_INTERVAL`` seconds, from a thread of the process that writes.

    SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages: that
    writer copies the log into the database file while holding the write lock (measured: a
    100-event publish committed in ~3.5 ms with it, ~1.6–2.0 ms without). ``PASSIVE``
    checkpoints never wait for or block readers and writers, and sqlite3 releases the GIL while
    it works, so here the copying overlaps with the process's Python on another core. Started
    on the first write (a process that only reads leaves the log alone); after a crash nothing
    is lost — the log is the durable record until it is folded.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def ensure_running(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="callhook-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(5)
        self._thread = None

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning(
                "WAL checkpointer could not connect; the log grows until another process folds it",
                extra={"error": str(exc)},
            )
            return
        try:
            while not self._stop.wait(CHECKPOINT_INTERVAL):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    continue  # busy or briefly unavailable: the next tick tries again
        finally:
            conn.close()


class Database:
    """Owns the engines for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        try:
            dialect = make_url(self.url).get_backend_name()
        except Exception as exc:
            raise ConfigurationError(f"invalid database URL: {url!r}") from exc
        self.dialect = dialect
        self._write_lock: threading.Lock | None = None
        self._file_lock: WriterFileLock | None = None
        self._checkpointer: Checkpointer | None = None
        if dialect == "sqlite":
            self._write_lock = threading.Lock()
            path = make_url(self.url).database
            if path and path != ":memory:" and not path.startswith("file:"):
                self._file_lock = WriterFileLock(Path(f"{path}.write-lock"))
                self._checkpointer = Checkpointer(path)
            self._writer = _sqlite_engine(self.url, immediate=True)
            self._reader = _sqlite_engine(self.url, immediate=False)
        elif dialect == "postgresql":
            self._writer = _postgres_engine(self.url)
            self._reader = self._writer
        else:
            raise ConfigurationError(
                f"unsupported database {dialect!r}: use sqlite:///path or postgresql://…"
            )

    @property
    def engine(self) -> Engine:
        return self._writer

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def connect_args(self) -> tuple[list[Any], dict[str, Any]]:
        """The DB-API ``connect()`` arguments of this database (for a dedicated connection,
        such as ``LISTEN``, outside the pool)."""
        cargs, cparams = self._writer.dialect.create_connect_args(self._writer.url)
        return list(cargs), dict(cparams)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed on success and rolled back on any exception.

        On SQLite, writers queue instead of waiting in SQLite's busy handler, which sleeps
        1, 2, 5, 10, 15… ms between tries rather than waking when the lock frees (measured:
        16 publishing threads ran at half the rate of one; an API process and a worker process
        on one file put 50–100 ms into publish-to-delivery p99). Threads of one process take
        turns on a lock; processes on one file take turns on an ``flock`` of
        ``<database>.write-lock``, which the kernel hands to the next waiter at once. The busy
        handler remains for writers that do not take part (the ``sqlite3`` shell, migrations).
        """
        if self._write_lock is None:
            with self._writer.begin() as conn:
                yield conn
            return
        with self._write_lock:
            if self._file_lock is None:
                with self._writer.begin() as conn:
                    yield conn
                return
            if self._checkpointer is not None:
                self._checkpointer.ensure_running()
            with self._file_lock, self._writer.begin() as conn:
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        with self._reader.begin() as conn:
            yield conn

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._file_lock is not None:
            self._file_lock.close()
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()


def single_use_engine(url: str) -> Engine:
    """An engine without pooling, for migrations and one-shot commands."""
    parsed = make_url(normalize_url(url))
    query = {k: v for k, v in parsed.query.items() if k not in POOL_PARAMETERS}
    return create_engine(parsed.set(query=query), poolclass=NullPool)
