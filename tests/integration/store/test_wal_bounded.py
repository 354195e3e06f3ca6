"""The SQLite write-ahead log stays bounded under sustained writes with concurrent readers, and
a clean stop leaves it empty (issue 11, class 11: it grew to 2 GiB beside a 101 MiB database).

Sizes are asserted, never times: the writer commits a fixed amount of data (many times the
bound) while readers keep short read transactions going, and the log's size is sampled after
every commit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from callhook.store.checkpoint import WAL_RESET_BYTES, Checkpointer
from callhook.store.db import Database

ROW_BYTES = 16 * 1024
ROWS_PER_COMMIT = 2
#: Far more log traffic than the bound, so an unbounded log could not pass.
COMMITS = 1_000
RESET_BYTES = 256 * 1024
HARD_BYTES = 1024 * 1024


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    with database.write() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
    yield database
    database.dispose()


def _checkpointer(db: Database) -> Checkpointer:
    checkpointer = db.checkpointer
    assert checkpointer is not None
    return checkpointer


def _wal(db: Database) -> int:
    return _checkpointer(db).wal_size()


def _load(db: Database, *, readers: int) -> int:
    """Commit ``COMMITS`` transactions while ``readers`` threads read without pause; return the
    largest log size seen after any commit."""
    done = threading.Event()
    reads = [0] * readers

    def read(i: int) -> None:
        while not done.is_set():
            with db.read() as conn:
                conn.execute(text("SELECT count(*), max(id) FROM t")).one()
                conn.execute(text("SELECT length(v) FROM t ORDER BY id DESC LIMIT 1")).all()
            reads[i] += 1

    threads = [threading.Thread(target=read, args=(i,)) for i in range(readers)]
    for thread in threads:
        thread.start()
    peak = 0
    try:
        for _ in range(COMMITS):
            with db.write() as conn:
                conn.execute(
                    text("INSERT INTO t (v) VALUES (randomblob(:n))"),
                    [{"n": ROW_BYTES}] * ROWS_PER_COMMIT,
                )
                # Keep the table itself small: the log is what is measured.
                conn.execute(text("DELETE FROM t WHERE id < (SELECT max(id) - 50 FROM t)"))
            peak = max(peak, _wal(db))
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert all(reads), "every reader ran during the load"
    return peak


@pytest.mark.parametrize("readers", [0, 1, 3])
def test_the_log_stays_under_its_bound_under_sustained_writes_and_reads(
    db: Database, readers: int
) -> None:
    checkpointer = _checkpointer(db)
    checkpointer.reset_bytes = RESET_BYTES
    checkpointer.hard_bytes = HARD_BYTES
    traffic = COMMITS * ROWS_PER_COMMIT * ROW_BYTES
    peak = _load(db, readers=readers)
    # One transaction past the hard bound at most (its pages, the freed ones and WAL headers).
    one_commit = 4 * ROWS_PER_COMMIT * ROW_BYTES
    assert peak <= HARD_BYTES + one_commit, (peak, traffic)
    assert traffic > 20 * (HARD_BYTES + one_commit)
    assert checkpointer.resets > 0


def test_sqlite_cuts_a_restarted_log_down_to_the_journal_size_limit(db: Database) -> None:
    with db.read() as conn:
        limit = conn.execute(text("PRAGMA journal_size_limit")).scalar_one()
    assert limit == WAL_RESET_BYTES


def test_a_clean_stop_leaves_the_log_empty(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'stop.db'}")
    with database.write() as conn:
        conn.execute(text("CREATE TABLE t (v BLOB)"))
        conn.execute(text("INSERT INTO t VALUES (randomblob(3000000))"))
    assert _wal(database) > 3_000_000
    database.dispose()
    wal = Path(f"{tmp_path / 'stop.db'}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert os.path.getsize(tmp_path / "stop.db") > 3_000_000
