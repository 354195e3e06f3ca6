"""Engine setup and transactions: connecting to SQLite or PostgreSQL and opening transactions.

``store/`` as a whole is the only package that knows SQL, dialects and driver encodings; in it,
this module sets engines up (pragmas, pools, BEGIN) and ``dialect.py`` holds the statements the
two dialects spell differently.

``Database.write()`` opens a write transaction (``BEGIN IMMEDIATE`` on SQLite, so concurrent
writers queue on ``busy_timeout`` instead of failing on lock upgrade); ``Database.read()`` a
read-only one. Query modules take a ``Connection`` and never open transactions themselves, so
callers compose several queries into one atomic unit.

A database that cannot take the work — a full disk, a PostgreSQL server that cannot be reached —
is reported by both as ``errors.StoreUnavailable`` (naming the cause, with a retry delay), never
as the driver's error; ``Database.health`` logs the start and the end of each such episode once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection as Connection  # re-exported: the handle query modules take
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import NullPool, QueuePool

from callhook.errors import ConfigurationError, StoreUnavailable
from callhook.store.checkpoint import WAL_RESET_BYTES, Checkpointer
from callhook.store.files import (
    check_sqlite_files,
    create_private_database,
    open_private,
)
from callhook.store.health import (
    MIN_FREE_BYTES,
    StoreHealth,
    Unavailability,
    unavailability,
    unavailable_error,
)

log = logging.getLogger("callhook.store")


#: The newest migration, the one this code needs the database at (a test keeps it equal to the
#: migrations' head). Code and schema must match: from migration 0009 on, SQLite stores ids as
#: bytes, which older code cannot read and newer code cannot find in older rows.
SCHEMA_REVISION: Final = "0011_unsettled_lines"


def redacted_url(database_url: str) -> str:
    """The database URL to show people: any password replaced by ``***`` (as given when it
    does not parse)."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return database_url


#: Page cache of each SQLite writer connection, KiB (SQLite's default, which readers keep, is
#: 2,000). Queue work touches rows scattered over the table (each call's events were written at
#: different times), and a 2 MB cache re-read most of them from the OS at every transaction
#: (docs/decisions.md).
CACHE_KIB = 16_384


def driver_reason(exc: DBAPIError) -> str:
    """The first line of the driver's own message in ``exc`` (what a person can act on:
    "connection refused", "database … does not exist", a constraint's name)."""
    text_ = str(exc.orig if exc.orig is not None else exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


def normalize_url(url: str) -> str:
    """Map user-facing URLs to SQLAlchemy ones: ``postgresql://`` uses psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; None for in-memory and ``file:`` URIs."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(database)


def missing_sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names when it does not exist; None otherwise (it exists,
    in-memory and ``file:`` URIs, another backend, a URL that does not parse: ``Database``
    says what is wrong with that one)."""
    try:
        path = sqlite_file(url)
    except (ArgumentError, ValueError):
        return None
    return path if path is not None and not path.exists() else None


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    parsed = make_url(url)
    path = sqlite_file(url)
    if path is not None:
        # 0600 before SQLite creates it 0644 (its -wal and -shm files take the same mode).
        create_private_database(path)
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=8,
        max_overflow=8,
        # The most recently used connection first: SQLite keeps a page cache per connection and
        # a process's transactions mostly follow one another, so one warm connection serves
        # them. First-in-first-out took each transaction to the coldest connection (measured:
        # 5x the page reads on ordered delivery; docs/decisions.md).
        pool_use_lifo=True,
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
            # When the log restarts from its beginning, SQLite cuts the file down to this.
            cur.execute(f"PRAGMA journal_size_limit={WAL_RESET_BYTES}")
            if immediate:
                # The writer engine: a process writes through one connection at a time (the
                # writer slot), and the pool hands back the last one used, so this is one cache
                # per process in practice. Negative: KiB.
                cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
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
            self._fd = open_private(self.path)
            self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class Database:
    """Owns the engines for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        try:
            dialect = make_url(self.url).get_backend_name()
        except Exception as exc:
            raise ConfigurationError(f"invalid database URL: {url!r}") from exc
        self.dialect = dialect
        self.health = StoreHealth()
        self._write_lock: threading.Lock | None = None
        self._file_lock: WriterFileLock | None = None
        self._checkpointer: Checkpointer | None = None
        self.file: Path | None = None
        if dialect == "sqlite":
            self._write_lock = threading.Lock()
            self.file = sqlite_file(self.url)
            if self.file is not None:
                check_sqlite_files(self.file)
                create_private_database(self.file)
                self._file_lock = WriterFileLock(Path(f"{self.file}.write-lock"))
                self._checkpointer = Checkpointer(str(self.file), hold_writers=self.writer_slot)
            self._writer = _sqlite_engine(self.url, immediate=True)
            self._reader = _sqlite_engine(self.url, immediate=False)
        elif dialect == "postgresql":
            driver = make_url(self.url).get_driver_name()
            if driver != "psycopg":  # another driver named in the URL (not installed)
                raise ConfigurationError(
                    f"unsupported PostgreSQL driver {driver!r}: write postgresql://… (Callhook"
                    " uses psycopg 3)"
                )
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

    @property
    def checkpointer(self) -> Checkpointer | None:
        """The SQLite file's WAL checkpointer (None for PostgreSQL and in-memory SQLite)."""
        return self._checkpointer

    def connect_args(self) -> tuple[list[Any], dict[str, Any]]:
        """The DB-API ``connect()`` arguments of this database (for a dedicated connection,
        such as ``LISTEN``, outside the pool)."""
        cargs, cparams = self._writer.dialect.create_connect_args(self._writer.url)
        return list(cargs), dict(cparams)

    @contextmanager
    def writer_slot(self) -> Iterator[None]:
        """This process's turn to write (SQLite; nothing on PostgreSQL): the threads' lock and
        the processes' ``flock``, in that order."""
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            if self._file_lock is None:
                yield
                return
            with self._file_lock:
                yield

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

        Raises ``StoreUnavailable`` (from the driver's error) when the database cannot take the
        write for now: a full disk, PostgreSQL unreachable (see ``unavailability``).
        """
        try:
            with self.writer_slot():
                if self._checkpointer is not None:
                    self._checkpointer.ensure_running()
                with self._writer.begin() as conn:
                    yield conn
                if self._checkpointer is not None:
                    self._checkpointer.after_commit()
        except (DBAPIError, PoolTimeout) as exc:
            self._raise_if_unavailable(exc)
            raise
        self.health.ok()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction. ``StoreUnavailable`` as for ``write``."""
        try:
            with self._reader.begin() as conn:
                yield conn
        except (DBAPIError, PoolTimeout) as exc:
            self._raise_if_unavailable(exc)
            raise

    def _raise_if_unavailable(self, exc: Exception) -> None:
        cause = unavailability(exc)
        if cause is None:
            return
        self.health.failed(cause, exc)
        raise unavailable_error(cause) from exc

    def readiness(self) -> Unavailability | None:
        """None when the database can take work; else why not. A read must work, and a SQLite
        file's filesystem must have ``MIN_FREE_BYTES`` free (root may use reserved blocks)."""
        try:
            with self.read() as conn:
                conn.execute(text("SELECT 1"))
        except StoreUnavailable as exc:
            return Unavailability(exc.cause)
        if self.file is not None:
            st = os.statvfs(self.file.parent)
            blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
            if blocks * st.f_frsize < MIN_FREE_BYTES:
                self.health.failed(Unavailability.DISK_FULL, OSError("no space left on device"))
                return Unavailability.DISK_FULL
        return None

    def schema_revision(self) -> str | None:
        """The migration this database is at (its ``alembic_version``), None where ``callhook
        migrate`` never ran. One cheap read; no migration script is loaded (command start-up):
        compare with ``SCHEMA_REVISION``."""
        with self.read() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return None if found is None else str(found)

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
