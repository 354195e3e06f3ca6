"""``bench.queue_copies`` on the local PostgreSQL: a copy holds the source's rows (made
unordered when asked, vacuumed), each database it made is gone after the ``with`` block, and a
database a killed run left behind is dropped by the next run."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from bench.cluster import Cluster
from bench.phases import POSTGRES_URL
from bench.queue_copies import QueueCopies


def _databases() -> set[str]:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_copies_and_cleanup(tmp_path: Path) -> None:
    abandoned = f"bench_flaky_{_dead_pid()}_abcdef_source"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{abandoned}"')
    before = _databases() - {abandoned}
    with QueueCopies("flaky_test", "postgresql") as q:
        assert abandoned not in _databases()
        assert q.source_url is not None
        with psycopg.connect(q.source_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE endpoints (ordering text)")
            conn.execute(
                "CREATE TABLE deliveries (status text, holds_line boolean, line_since text)"
            )
            conn.execute("INSERT INTO endpoints VALUES ('per_call')")
            conn.execute(
                "INSERT INTO deliveries VALUES ('pending', TRUE, 'x'), ('waiting', FALSE, NULL),"
                " ('delivered', FALSE, NULL)"
            )
        source = Cluster(tmp_path, database_url=q.source_url)
        assert q.seal(source) == 3
        ordered = q.copy(source, Cluster(tmp_path), unordered=False)
        unordered = q.copy(source, Cluster(tmp_path), unordered=True)
        assert ordered is not None
        assert unordered is not None
        with psycopg.connect(unordered) as conn:
            rows = sorted(conn.execute("SELECT status, holds_line FROM deliveries").fetchall())
            assert rows == [("delivered", False), ("pending", False), ("pending", False)]
            assert conn.execute("SELECT ordering FROM endpoints").fetchall() == [("none",)]
        with psycopg.connect(ordered) as conn:
            assert conn.execute("SELECT count(*) FROM deliveries WHERE holds_line").fetchone() == (
                1,
            )
        q.discard(ordered)
        assert q.stem + "_1" not in _databases()
    assert _databases() == before
