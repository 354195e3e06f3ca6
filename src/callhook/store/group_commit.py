"""Group commit: many concurrent writes, one transaction, each caller answered after the commit.

``GroupCommitter.submit(items)`` queues one caller's unit of work (a publish request's events)
and returns once that unit is committed, with its results, or raises its own error. One writer
thread per committer takes whatever is queued when it becomes free (up to ``max_items`` items),
writes it in one transaction and commits; the callers of that group are answered together and
``after_commit`` runs once per group (the publisher's wake-up). A SQLite commit costs the same
for 1 event as for 50 (the WAL pages of the tables and indexes are shared), and the per-unit
statements (account lookup, insert) become one each per group.

All or nothing per unit, as with one transaction each:

1. The group is written as one concatenated unit (``write(conn, all_items)``), the fast path;
   ``write`` must give the same results for a concatenation as for its parts written one after
   the other in one transaction (the publisher does: duplicates of an idempotency key earlier
   in the transaction are duplicates either way).
2. If that raises anything but an outage of the store, the transaction is rolled back and the
   group is written again unit by unit, each in a savepoint: a unit that raises is rolled back
   to its savepoint and fails alone with its own exception; the others commit together. A
   unit that raises ``IntegrityError`` (a concurrent writer in another process took the same
   unique key between our check and insert) is tried once more in a new savepoint, as
   ``Publisher.publish`` does; the second pass sees the other writer's row.
3. An outage (``callhook.store.health.unavailability`` names a cause: full disk, unreachable
   server) or a failing commit fails every unit of the group with the same error
   (``StoreUnavailable`` from ``Database.write``): nothing of the group was committed.

Results are handed back on each caller's event loop (one ``call_soon_threadsafe`` per loop and
group). A caller that stops waiting (its task cancelled) does not withdraw its unit: it may still
be committed, like a request whose client went away after sending it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from callhook.errors import ConcurrentPublish, StoreUnavailable
from callhook.store.db import Database
from callhook.store.health import unavailability

log = logging.getLogger("callhook.store.group_commit")

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Items (events) per group at most; a unit larger than this is still written whole, alone.
MAX_ITEMS = 2000

#: ``prepare(conn, memo, items) -> items``: a unit's check in the group's transaction, before
#: the write (``memo`` is shared by the group's units: a lookup made once per group).
Prepare = Callable[[Connection, dict[Any, Any], Sequence[Item]], Sequence[Item]]


@dataclass(slots=True)
class _Unit(Generic[Item, Result]):
    items: Sequence[Item]
    future: asyncio.Future[list[Result]]
    loop: asyncio.AbstractEventLoop
    prepare: Prepare[Item] | None = None
    ready: Sequence[Item] = ()
    results: list[Result] | None = None
    error: BaseException | None = None

    def prepared(self, conn: Connection, memo: dict[Any, Any]) -> Sequence[Item]:
        self.ready = self.items if self.prepare is None else self.prepare(conn, memo, self.items)
        return self.ready


@dataclass(slots=True)
class GroupStats:
    """Counters for tests and the bench: groups committed, units in them, fallbacks taken."""

    groups: int = 0
    units: int = 0
    fallbacks: int = 0
    largest: int = 0


class GroupCommitter(Generic[Item, Result]):
    """Writes queued units in shared transactions on one thread (see the module docstring).

    ``write(conn, items)`` writes items inside the given transaction and returns one result per
    item, in order; it must not commit. ``after_commit(results)`` gets every result of a
    committed group (not called for a group that committed nothing); it must not raise.
    """

    def __init__(
        self,
        db: Database,
        write: Callable[[Connection, Sequence[Item]], list[Result]],
        *,
        after_commit: Callable[[list[Result]], None] | None = None,
        max_items: int = MAX_ITEMS,
        name: str = "group-commit",
    ) -> None:
        self._db = db
        self._write = write
        self._after_commit = after_commit
        self._max_items = max_items
        self._name = name
        self._queue: deque[_Unit[Item, Result]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.stats = GroupStats()

    # --- callers ------------------------------------------------------------------------------
    async def submit(
        self, items: Sequence[Item], *, prepare: Prepare[Item] | None = None
    ) -> list[Result]:
        """Queue ``items`` as one unit; return its results once committed, or raise its error
        (``StoreUnavailable`` when the store cannot take the group; ``RuntimeError`` after
        ``close``).

        ``prepare(conn, memo, items)``, when given, runs in the group's transaction before the
        write and returns the items to write (or raises: the unit fails alone). It may write
        (it is rolled back with its unit), but must not raise after writing. The publish route
        authenticates here: the token is read in the transaction that writes the events, once
        per group, instead of in a transaction of its own on another thread per request.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Result]] = loop.create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            self._queue.append(_Unit(items, future, loop, prepare))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return await future

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, then stop the writer thread (waits up to ``timeout`` s)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # --- the writer thread --------------------------------------------------------------------
    def _take(self) -> list[_Unit[Item, Result]] | None:
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            group = [self._queue.popleft()]
            size = len(group[0].items)
            while self._queue and size + len(self._queue[0].items) <= self._max_items:
                unit = self._queue.popleft()
                size += len(unit.items)
                group.append(unit)
            return group

    def _run(self) -> None:
        while (group := self._take()) is not None:
            try:
                self._commit(group)
            except Exception as exc:
                # Nothing of the group was committed; a unit that failed on its own keeps
                # its own error.
                for unit in group:
                    unit.results = None
                    if unit.error is None:
                        unit.error = exc
            finally:
                self._answer(group)

    def _commit(self, group: list[_Unit[Item, Result]]) -> None:
        self.stats.groups += 1
        self.stats.units += len(group)
        self.stats.largest = max(self.stats.largest, len(group))
        if not self._fast(group):
            # Rare (an unknown account, a lost idempotency race): costs a second pass.
            self.stats.fallbacks += 1
            self._one_by_one(group)
        committed = [r for unit in group if unit.results is not None for r in unit.results]
        if committed and self._after_commit is not None:
            try:
                self._after_commit(committed)
            except Exception:
                log.warning("after_commit failed", exc_info=True)

    def _fast(self, group: list[_Unit[Item, Result]]) -> bool:
        """The whole group as one unit; False (rolled back) if anything in it failed. A unit
        whose ``prepare`` fails is left out with its error (it wrote nothing)."""
        live: list[_Unit[Item, Result]] = []
        try:
            with self._db.write() as conn:
                memo: dict[Any, Any] = {}
                for unit in group:
                    unit.error = None
                    try:
                        unit.prepared(conn, memo)
                    except Exception as exc:
                        if _outage(exc):
                            raise
                        unit.error = exc
                    else:
                        live.append(unit)
                items = [item for unit in live for item in unit.ready]
                results = self._write(conn, items) if items else []
        except Exception as exc:
            if _outage(exc):
                raise
            return False
        start = 0
        for unit in live:
            unit.results = results[start : start + len(unit.ready)]
            start += len(unit.ready)
        return True

    def _one_by_one(self, group: list[_Unit[Item, Result]]) -> None:
        """Each unit in its own savepoint of one transaction; a failing unit fails alone."""
        pending: list[tuple[_Unit[Item, Result], list[Result]]] = []
        with self._db.write() as conn:
            memo: dict[Any, Any] = {}
            for unit in group:
                unit.error = None
                for attempt in range(2):
                    try:
                        with conn.begin_nested():
                            results = self._write(conn, unit.prepared(conn, memo))
                    except (IntegrityError, ConcurrentPublish) as exc:
                        if attempt == 0:
                            continue  # the second pass finds the other writer's row
                        unit.error = exc
                    except Exception as exc:
                        if _outage(exc):
                            raise  # the store, not this unit: fails the group
                        unit.error = exc
                    else:
                        pending.append((unit, results))
                    break
        # Only now committed: until here a unit's results are not its answer.
        for unit, results in pending:
            unit.results = results

    def _answer(self, group: list[_Unit[Item, Result]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Unit[Item, Result]]] = {}
        for unit in group:
            by_loop.setdefault(unit.loop, []).append(unit)
        for loop, units in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, units)


def _settle(units: list[_Unit[Item, Result]]) -> None:
    for unit in units:
        if unit.future.done():
            continue  # the caller stopped waiting
        if unit.error is not None:
            unit.future.set_exception(unit.error)
        else:
            assert unit.results is not None
            unit.future.set_result(unit.results)


def _outage(exc: Exception) -> bool:
    """The store cannot work (a full disk, an unreachable server): not one unit's fault."""
    return isinstance(exc, StoreUnavailable) or unavailability(exc) is not None


__all__ = ["MAX_ITEMS", "GroupCommitter", "GroupStats", "Prepare"]
