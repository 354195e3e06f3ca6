"""Engine setup and transactions: the one place that knows SQLite from PostgreSQL.

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
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import NullPool, QueuePool

from callhook.errors import ConfigurationError, StoreUnavailable
from callhook.store.files import (
    check_sqlite_files,
    create_private_database,
    open_private,
)

log = logging.getLogger("callhook.store")


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


#: Seconds between background checkpoints of a SQLite file's write-ahead log.
CHECKPOINT_INTERVAL = 0.5
#: WAL size (bytes) past which the background checkpointer resets the log to empty
#: (``TRUNCATE``) instead of only copying it (``PASSIVE``); also SQLite's
#: ``journal_size_limit``, what it keeps of the file when the log restarts by itself.
WAL_RESET_BYTES = 16 * 1024 * 1024
#: WAL size past which the writer that crossed it resets the log before giving up the write
#: slot (the bound that holds whatever the background thread manages).
WAL_HARD_BYTES = 64 * 1024 * 1024
#: Milliseconds a reset waits for readers of older snapshots before trying again later.
RESET_WAIT_MS = 200


class Checkpointer:
    """Keeps a SQLite file's write-ahead log folded into the database and bounded in size.

    Every ``interval`` seconds a thread of the process that writes copies the log into the
    database (``PASSIVE``: never waits for or blocks readers and writers; sqlite3 releases the
    GIL meanwhile, so the copying overlaps with the process's Python on another core). A passive
    checkpoint never shrinks the file, and under steady load it rarely catches up (a reader is
    always on some older snapshot), so the log would grow without end (measured before this:
    12.5 MiB/s at 200 publishes/s, to 2 GiB). Hence two more steps:

    - when the log is over ``reset_bytes``, the thread resets it (``TRUNCATE``: copy everything,
      wait up to ``RESET_WAIT_MS`` for readers of older snapshots, cut the file to 0 bytes)
      while holding the writers' slot (``hold_writers``), so writers queue on our fair lock
      rather than in SQLite's busy handler; if readers do not let it finish, the next tick
      tries again;
    - when a commit leaves the log over ``hard_bytes`` (the thread could not keep up), that
      writer resets it itself before giving up the write slot (``after_commit``).

    So the log stays under about ``hard_bytes`` plus one transaction whenever readers finish
    their transactions; a reader that keeps one snapshot open forever pins it (SQLite cannot
    reset a log that a reader still needs). Started on the first write (a process that only
    reads leaves the log alone); after a crash nothing is lost — the log is the durable record
    until it is folded. ``stop`` resets the log once more, so a clean stop leaves it empty.
    """

    def __init__(
        self,
        path: str,
        *,
        hold_writers: Callable[[], AbstractContextManager[object]] = nullcontext,
        interval: float = CHECKPOINT_INTERVAL,
        reset_bytes: int = WAL_RESET_BYTES,
        hard_bytes: int = WAL_HARD_BYTES,
    ) -> None:
        self.path = path
        self.wal_path = f"{path}-wal"
        self.interval = interval
        self.reset_bytes = reset_bytes
        self.hard_bytes = hard_bytes
        self._hold_writers = hold_writers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        # One connection, used by the thread and by writers in turn (``_lock``).
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._warned = False
        #: Resets done (by the thread and by writers), for tests and the bench.
        self.resets = 0

    def wal_size(self) -> int:
        """The write-ahead log's size in bytes (0 when there is none)."""
        try:
            return os.stat(self.wal_path).st_size
        except FileNotFoundError:
            return 0

    def ensure_running(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        if self._pid != os.getpid():
            self._conn = None  # a child must not use its parent's connection
            self._lock = threading.Lock()
        self._pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="callhook-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and leave the log reset (if readers allow), then close."""
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(5)
            with self._hold_writers():
                self.reset()
        self._thread = None
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def after_commit(self) -> None:
        """Called by a writer still holding the write slot: reset an over-long log now."""
        if self.wal_size() > self.hard_bytes:
            self.reset()

    def checkpoint(self, mode: str) -> tuple[int, int, int] | None:
        """``PRAGMA wal_checkpoint(mode)``: (busy, log frames, checkpointed frames), or None
        when the database could not be reached. A reset (``TRUNCATE``) must be made holding
        the writers' slot."""
        with self._lock:
            conn = self._connection()
            if conn is None:
                return None
            try:
                row = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            except sqlite3.Error:
                return None  # busy or briefly unavailable: the next tick tries again
        if row is None:
            return None
        busy, log_frames, done = (int(v) for v in row)
        return busy, log_frames, done

    def reset(self) -> bool:
        """Copy the whole log into the database and cut it to 0 bytes (``TRUNCATE``); False when
        a reader of an older snapshot did not finish in time. Call holding the write slot."""
        result = self.checkpoint("TRUNCATE")
        done = result is not None and result[0] == 0
        if done:
            self.resets += 1
        return done

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        try:
            conn = sqlite3.connect(
                self.path, timeout=5, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout={RESET_WAIT_MS}")
        except sqlite3.Error as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "WAL checkpointer could not connect; the log grows until it can",
                    extra={"error": str(exc)},
                )
            return None
        self._conn = conn
        return conn

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.checkpoint("PASSIVE")
            if self.wal_size() > self.reset_bytes:
                with self._hold_writers():
                    self.reset()


class Unavailability(StrEnum):
    """Why the database cannot take work for now (``StoreUnavailable.cause``)."""

    DISK_FULL = "disk_full"
    UNREACHABLE = "unreachable"


#: What the client is told, and after how many seconds to retry, per cause.
_UNAVAILABLE: dict[Unavailability, tuple[str, float]] = {
    Unavailability.DISK_FULL: (
        "The database's disk is full, so nothing was stored. Retry later.",
        30.0,
    ),
    Unavailability.UNREACHABLE: (
        "The database cannot be reached, so nothing was stored. Retry later.",
        5.0,
    ),
}
#: SQLSTATEs of PostgreSQL that mean "not now" rather than "wrong": connection exceptions
#: (class 08), the server shutting down or starting (57P01-57P03), and a full disk (53100).
_PG_UNREACHABLE = ("08", "57P01", "57P02", "57P03")
_PG_DISK_FULL = "53100"
#: Free bytes below which a SQLite database's filesystem counts as full (``readiness``).
MIN_FREE_BYTES = 1024 * 1024


def unavailability(exc: BaseException) -> Unavailability | None:
    """The cause when ``exc`` (a SQLAlchemy or driver error) means the database cannot take
    work for now — SQLite's ``SQLITE_FULL``, PostgreSQL out of disk or out of reach, the pool
    unable to hand out a connection; None for everything else (constraint violations, bugs)."""
    if isinstance(exc, PoolTimeout):
        return Unavailability.UNREACHABLE
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        return Unavailability.DISK_FULL if code == sqlite3.SQLITE_FULL else None
    sqlstate = getattr(orig, "sqlstate", "") if orig is not None else ""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Unavailability.UNREACHABLE
    if type(orig).__module__.startswith("psycopg"):
        if sqlstate == _PG_DISK_FULL:
            return Unavailability.DISK_FULL
        if sqlstate is None and type(orig).__name__ == "OperationalError":
            return Unavailability.UNREACHABLE  # failed to connect: no SQLSTATE at all
        if sqlstate and sqlstate.startswith(_PG_UNREACHABLE):
            return Unavailability.UNREACHABLE
    return None


def unavailable_error(cause: Unavailability) -> StoreUnavailable:
    message, retry_after = _UNAVAILABLE[cause]
    return StoreUnavailable(message, cause=cause.value, retry_after=retry_after)


class StoreHealth:
    """Episodes of unavailability of one ``Database``: the first failure of an episode and its
    end (the next transaction that works) are logged once each, however many requests meet it.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.failing: Unavailability | None = None
        self._since = 0.0
        self._failures = 0

    def failed(self, cause: Unavailability, exc: BaseException) -> None:
        with self._lock:
            self._failures += 1
            if self.failing == cause:
                return
            self.failing, self._since, self._failures = cause, self._clock(), 1
        log.error(
            "database unavailable: requests are refused with 503 until it recovers",
            extra={"cause": cause.value, "error": (str(exc).strip().splitlines() or [""])[0][:300]},
        )

    def ok(self) -> None:
        if self.failing is None:  # the common case, without the lock
            return
        with self._lock:
            cause, self.failing = self.failing, None
            if cause is None:
                return
            seconds = round(self._clock() - self._since, 1)
            failures = self._failures
        log.warning(
            "database available again",
            extra={"cause": cause.value, "seconds": seconds, "failures": failures},
        )


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
