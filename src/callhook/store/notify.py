"""Cross-process wake-ups: ``LISTEN callhook_deliveries`` on PostgreSQL (here), datagram
sockets beside the database file on SQLite (``store/wake.py``); ``listener_for`` picks one.

Migration 0002 installs a statement-level trigger that runs ``pg_notify('callhook_deliveries',
current_schema())`` after every INSERT into ``deliveries``. PostgreSQL sends the notification
when (and only if) the inserting transaction commits, once per transaction, to every listening
session of the database — in any process, on any machine. ``Listener`` holds one dedicated
connection outside the pool, listens, and calls ``wake`` for each notification of its own schema.

It is an accelerator, never the source of truth: the worker still polls every
``poll_interval`` seconds, so a lost notification (listener reconnecting, server restart) delays
a delivery by at most one poll. After every (re)connection ``wake`` is called once, because
anything committed while nobody listened produced no notification we could see.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from callhook.store.db import Database
from callhook.store.wake import DatagramListener, wake_dir

log = logging.getLogger("callhook.store.notify")

CHANNEL = "callhook_deliveries"
#: Seconds between checks of the stop flag while waiting for notifications.
STOP_CHECK = 0.2
#: Back-off between reconnection attempts while the server is down.
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)


class Listener:
    """A background thread that calls ``wake()`` when deliveries are inserted (PostgreSQL)."""

    def __init__(self, db: Database, wake: Callable[[], None], *, name: str = "listener") -> None:
        if not db.is_postgresql:
            raise ValueError("LISTEN/NOTIFY needs PostgreSQL")
        self._db = db
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"callhook-{name}", daemon=True)
        self.connected = threading.Event()
        self.notifications = 0
        self.connections = 0

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening; returns within about ``STOP_CHECK`` seconds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _connect(self) -> Any:
        import psycopg

        cargs, cparams = self._db.connect_args()
        cparams.setdefault("connect_timeout", 5)
        return psycopg.connect(*cargs, **{**cparams, "autocommit": True})

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    row = conn.execute("SELECT current_schema()").fetchone()
                    schema = row[0] if row else None
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connections += 1
                    self.connected.set()
                    failures = 0
                    self._wake()  # whatever was committed while we were not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=STOP_CHECK):
                            if note.payload == schema:
                                self.notifications += 1
                                self._wake()
            except Exception as exc:
                self.connected.clear()
                if self._stop.is_set():
                    break
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning(
                    "listen connection lost; reconnecting",
                    extra={"error": str(exc).strip()[:200], "retry_in_s": delay},
                )
                self._stop.wait(delay)
        self.connected.clear()


class WakeListener(Protocol):
    """What a worker holds while it listens for publishes from other processes."""

    def stop(self, timeout: float = 2.0) -> None: ...


def listener_for(db: Database, wake: Callable[[], None]) -> WakeListener | None:
    """Start listening for publishes committed by other processes; None where unsupported.

    PostgreSQL: ``LISTEN`` (``Listener``). File-backed SQLite: a datagram socket in the wake
    directory beside the database file (``store/wake.py``); if it cannot be bound (read-only
    directory, say) this logs a warning and returns None, because the poll still delivers.
    In-memory SQLite: None (no other process can publish to it).
    """
    if db.is_postgresql:
        return Listener(db, wake).start()
    directory = wake_dir(db)
    if directory is None:
        return None
    try:
        return DatagramListener(directory, wake).start()
    except OSError as exc:
        log.warning(
            "cannot listen for publishes from other processes; polling only",
            extra={"directory": str(directory), "error": str(exc).strip()[:200]},
        )
        return None
