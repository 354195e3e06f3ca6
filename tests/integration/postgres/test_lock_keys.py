"""``dialect.lock_keys`` on PostgreSQL: one statement takes a transaction-scoped advisory lock
per distinct key, another transaction cannot take any of them until the first ends, and two
transactions locking overlapping sets in different orders do not deadlock."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from callhook.platform import Platform
from callhook.store import dialect
from tests import factories


def _platform(tmp_path: Path) -> Platform:
    with factories.use_backend("postgresql"):
        return factories.make_platform(tmp_path)


@pytest.fixture
def ns() -> str:
    """A namespace of its own: advisory locks are per database, and other runs share it."""
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The statements run on the engines made meanwhile (``before_cursor_execute``)."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


_MINE = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
_TRY = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")


@pytest.mark.parametrize("keys", [["b", "a", "a"], ["only"], [f"k{n}" for n in range(300)]])
def test_one_statement_locks_each_distinct_key(
    tmp_path: Path, keys: list[str], ns: str, statements: list[str]
) -> None:
    platform = _platform(tmp_path)
    with platform.db.write() as conn:
        statements.clear()
        dialect.lock_keys(conn, ns, keys)
        assert len(statements) == 1
        assert conn.execute(_MINE).scalar_one() == len(set(keys))
        with platform.db.read() as other:
            for key in set(keys):
                assert other.execute(_TRY, {"key": f"{ns}:{key}"}).scalar_one() is False
            assert other.execute(_TRY, {"key": f"{ns}x:a"}).scalar_one() is True
    # Released with the transaction.
    with platform.db.read() as other:
        assert all(other.execute(_TRY, {"key": f"{ns}:{k}"}).scalar_one() for k in set(keys))


def test_no_keys_runs_nothing(tmp_path: Path, ns: str, statements: list[str]) -> None:
    platform = _platform(tmp_path)
    with platform.db.write() as conn:
        statements.clear()
        dialect.lock_keys(conn, ns, [])
        assert statements == []
        assert conn.execute(_MINE).scalar_one() == 0


def test_overlapping_sets_in_opposite_orders_do_not_deadlock(tmp_path: Path, ns: str) -> None:
    platform = _platform(tmp_path)
    keys = [f"k{n:03}" for n in range(200)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def lock(order: list[str]) -> None:
        try:
            start.wait()
            for _ in range(20):
                with platform.db.write() as conn:
                    dialect.lock_keys(conn, ns, order)
        except BaseException as exc:  # a deadlock surfaces as the driver's error
            errors.append(exc)

    threads = [
        threading.Thread(target=lock, args=(keys,), daemon=True),
        threading.Thread(target=lock, args=(keys[::-1],), daemon=True),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
