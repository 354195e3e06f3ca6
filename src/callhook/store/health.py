"""When the database cannot take work: the causes, the error clients get, and the episodes.

``unavailability`` tells a full disk or an unreachable server from every other database error;
``Database.write()``/``read()`` turn those into ``errors.StoreUnavailable`` (503 with
``Retry-After``) and report them to ``StoreHealth``, which logs each episode's start and end
once.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from callhook.errors import StoreUnavailable

log = logging.getLogger("callhook.store")


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
