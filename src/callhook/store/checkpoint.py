"""Keeping a SQLite file's write-ahead log folded into the database and bounded in size."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

log = logging.getLogger("callhook.store")


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
