"""Deduplicate deliveries: the first caller for a key wins, every later one is told "seen".

Keys follow spec 000 — ``"<event>:<pbx_id>"`` — or the event id (``key="id"``). Three stores:

* :class:`MemoryStore` — one process, a lock and a TTL dict;
* :class:`SQLiteStore` — a SQLite file shared by the processes of one host;
* :class:`RedisStore` — a ``redis.Redis`` client *you* pass in (``SET NX PX``).

Every store's ``claim`` is atomic, so concurrent duplicates (threads, processes) produce
exactly one winner. If processing fails after a claim, ``release`` the key so that the retry
is processed.

The core imports nothing outside the standard library; ``redis`` is only used through the
client object you hand in.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from callhook.receiver.event import Event

DEFAULT_TTL = 3600.0  # seconds; spec 000's example caches keys for an hour


class DedupStore(Protocol):
    """An atomic "first one wins" set of keys with expiry."""

    def claim(self, key: str, ttl: float, now: float) -> bool:
        """Record ``key`` until ``now + ttl``; True only for the first claim while unexpired."""
        ...

    def release(self, key: str) -> None:
        """Forget ``key`` (processing failed; let the retry through)."""
        ...


class MemoryStore:
    """In-process store. Thread-safe; expired keys are swept as the store is used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        self._next_sweep = 0.0

    def claim(self, key: str, ttl: float, now: float) -> bool:
        with self._lock:
            if now >= self._next_sweep:
                self._expiry = {k: t for k, t in self._expiry.items() if t > now}
                self._next_sweep = now + min(ttl, 60.0)
            expires = self._expiry.get(key)
            if expires is not None and expires > now:
                return False
            self._expiry[key] = now + ttl
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._expiry.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)


class SQLiteStore:
    """Keys in a SQLite file (WAL). Safe across threads and processes sharing the file.

    One connection per thread; a claim is a single ``INSERT … ON CONFLICT DO UPDATE … WHERE
    expired`` statement, atomic in SQLite, whose change count says who won.
    """

    def __init__(self, path: str | Path, *, table: str = "callhook_dedup") -> None:
        if not table.isidentifier():
            raise ValueError("table must be a plain identifier")
        self._path = str(path)
        self._table = table
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, expires_at REAL NOT NULL)"
        )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self._path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def claim(self, key: str, ttl: float, now: float) -> bool:
        cursor = self._conn().execute(
            f"INSERT INTO {self._table} (key, expires_at) VALUES (?, ?) "  # noqa: S608
            f"ON CONFLICT(key) DO UPDATE SET expires_at = excluded.expires_at "
            f"WHERE {self._table}.expires_at <= ?",
            (key, now + ttl, now),
        )
        return cursor.rowcount == 1

    def release(self, key: str) -> None:
        self._conn().execute(f"DELETE FROM {self._table} WHERE key = ?", (key,))  # noqa: S608

    def purge(self, now: float) -> int:
        """Delete expired keys; return how many."""
        cursor = self._conn().execute(
            f"DELETE FROM {self._table} WHERE expires_at <= ?",  # noqa: S608
            (now,),
        )
        return cursor.rowcount

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


class RedisLike(Protocol):
    """The part of ``redis.Redis`` the store uses."""

    def set(self, name: str, value: str, *, nx: bool = ..., px: int | None = ...) -> Any: ...

    def delete(self, *names: str) -> Any: ...


class RedisStore:
    """Keys in Redis via the client you pass (``redis.Redis(...)``), ``SET key 1 NX PX ttl``.

    Expiry is Redis's own clock; the ``now`` argument is ignored.
    """

    def __init__(self, client: RedisLike, *, prefix: str = "callhook:dedup:") -> None:
        self._client = client
        self.prefix = prefix

    def claim(self, key: str, ttl: float, now: float) -> bool:
        return bool(self._client.set(self.prefix + key, "1", nx=True, px=max(1, int(ttl * 1000))))

    def release(self, key: str) -> None:
        self._client.delete(self.prefix + key)


KeyFunction = Callable[[Event], str]


def _key_event_pbx(event: Event) -> str:
    return event.dedup_key


def _key_id(event: Event) -> str:
    return event.id


class Deduplicator:
    """Tell first deliveries from repeats.

    ``key="event_pbx"`` (default) uses ``"<event>:<pbx_id>"`` as spec 000 recommends;
    ``key="id"`` uses the event id; or pass a function of the :class:`Event`.
    """

    def __init__(
        self,
        store: DedupStore | None = None,
        *,
        ttl: float = DEFAULT_TTL,
        key: Literal["event_pbx", "id"] | KeyFunction = "event_pbx",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.store: DedupStore = store if store is not None else MemoryStore()
        self.ttl = ttl
        self._clock = clock
        if key == "event_pbx":
            self._key: KeyFunction = _key_event_pbx
        elif key == "id":
            self._key = _key_id
        elif callable(key):
            self._key = key
        else:
            raise ValueError("key must be 'event_pbx', 'id' or a function")

    def key_for(self, event: Event) -> str:
        """The dedup key of ``event``."""
        return self._key(event)

    def first_time(self, event: Event, *, now: float | None = None) -> bool:
        """Claim ``event``: True for the first delivery, False for every repeat within ``ttl``."""
        when = self._clock() if now is None else now
        return self.store.claim(self._key(event), self.ttl, when)

    def release(self, event: Event) -> None:
        """Undo a claim so that a redelivery is processed (call it when processing failed)."""
        self.store.release(self._key(event))

    def run_once(
        self, event: Event, handler: Callable[[Event], object], *, now: float | None = None
    ) -> bool:
        """Run ``handler(event)`` unless it is a duplicate; release the key if it raises.

        Returns whether the handler ran.
        """
        if not self.first_time(event, now=now):
            return False
        try:
            handler(event)
        except BaseException:
            self.release(event)
            raise
        return True


def event_key(obj: Mapping[str, Any]) -> str:
    """``"<event>:<pbx_id>"`` from a decoded body, for code that does not use :class:`Event`."""
    return f"{obj.get('event')}:{obj.get('pbx_id')}"
