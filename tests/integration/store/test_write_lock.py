"""SQLite writes: processes queue on ``<database>.write-lock``; WAL checkpoints run in the
background."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from callhook.store.db import Database


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cb.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    """A SQLite file database with one table ``t (v)``."""
    database = Database(f"sqlite:///{db_path}")
    with database.write() as conn:
        conn.execute(text("CREATE TABLE t (v)"))
    yield database
    database.dispose()


def test_a_writer_waits_for_the_file_lock_and_proceeds_when_it_is_released(
    db: Database, db_path: Path
) -> None:
    lock_path = Path(f"{db_path}.write-lock")
    assert lock_path.exists()
    # Another process's writer, as far as flock is concerned: a separate open file.
    fd = os.open(lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    done = threading.Event()

    def write() -> None:
        with db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(0.3), "the write went ahead while another writer held the lock"
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    writer.join(10)
    assert done.is_set()
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


def test_the_write_ahead_log_is_folded_into_the_database_in_the_background(
    db: Database, db_path: Path
) -> None:
    start = db_path.stat().st_size
    with db.write() as conn:
        conn.execute(text("INSERT INTO t VALUES (randomblob(2000000))"))
    # Commits go to the WAL; only a checkpoint copies pages into the database file, and
    # nobody here asks for one: the background checkpointer must.
    deadline = time.monotonic() + 20
    while db_path.stat().st_size < start + 2_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db_path.stat().st_size >= start + 2_000_000
