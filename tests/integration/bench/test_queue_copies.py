"""``bench.queue_copies`` on the local PostgreSQL: copies hold the source's rows (the unordered
ones made unordered, from a compacted template), every database a run made is gone after its
``with`` block, and a killed run's databases are dropped by the next run — not those of a run
still going."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from bench import queue_copies
from bench.cluster import Cluster
from bench.phases import POSTGRES_URL
from bench.queue_copies import QueueCopies
from sqlalchemy.engine import make_url


def _databases(stem: str) -> set[str]:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{stem}%",)
        ).fetchall()
        return {r[0] for r in rows}


def _fill(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE endpoints (ordering text)")
        conn.execute("CREATE TABLE deliveries (status text, holds_line boolean, line_since text)")
        conn.execute("CREATE INDEX ix_status ON deliveries (status)")
        conn.execute("INSERT INTO endpoints VALUES ('per_call')")
        conn.execute(
            "INSERT INTO deliveries SELECT CASE WHEN n % 10 = 0 THEN 'pending' ELSE 'waiting' "
            "END, n % 10 = 0, CASE WHEN n % 10 = 0 THEN 'x' END FROM generate_series(1, 5000) n"
        )
        conn.execute("INSERT INTO deliveries VALUES ('delivered', FALSE, NULL)")


def _stats(url: str) -> tuple[int, int, int]:
    """Rows by kind in ``deliveries``: (pending, holding the line, dead versions)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE holds_line)"
            " FROM deliveries"
        ).fetchone()
        dead = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'deliveries'"
        ).fetchone()
        assert row is not None
        assert dead is not None
        return int(row[0]), int(row[1]), int(dead[0])


def _size(url: str) -> int:
    """Bytes of ``deliveries`` and its indexes."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pg_relation_size('deliveries') + pg_indexes_size('deliveries')"
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_copies_and_cleanup(tmp_path: Path) -> None:
    with QueueCopies("postgresql") as q:
        assert q.source_url is not None
        _fill(q.source_url)
        source = Cluster(tmp_path, database_url=q.source_url)
        assert q.seal(source) == 5001
        ordered = q.copy(source, Cluster(tmp_path), unordered=False)
        unordered = q.copy(source, Cluster(tmp_path), unordered=True)
        assert ordered is not None
        assert unordered is not None
        assert _stats(ordered) == (500, 500, 0)
        # Every queued row pending, none holding a line, and no dead versions of the rewrite,
        # nor the room they took: the unordered copy is as compact as the ordered one.
        assert _stats(unordered) == (5000, 0, 0)
        assert _size(unordered) <= _size(ordered) * 1.1
        with psycopg.connect(unordered) as conn:
            assert conn.execute("SELECT ordering FROM endpoints").fetchall() == [("none",)]
        q.discard(ordered)
        assert _databases(q.stem) == {
            f"{q.stem}_source",
            f"{q.stem}_unordered",
            unordered.rsplit("/", 1)[1],
        }
    assert _databases(q.stem) == set()


def test_a_killed_runs_databases_go_with_the_next_run_not_a_live_runs(tmp_path: Path) -> None:
    live = QueueCopies("postgresql").__enter__()
    killed = QueueCopies("postgresql").__enter__()
    assert killed._held is not None
    killed._held.close()  # as when its process dies: the session and its run lock end
    killed._held = None
    try:
        with QueueCopies("postgresql"):
            assert _databases(killed.stem) == set()
            assert _databases(live.stem) == {f"{live.stem}_source"}
    finally:
        live.__exit__(None, None, None)
    assert _databases(live.stem) == set()


def test_a_live_run_on_another_database_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Advisory locks belong to a database: the run lock must be seen from sessions on others.
    other = make_url(POSTGRES_URL).set(database="postgres").render_as_string(hide_password=False)
    monkeypatch.setattr(queue_copies, "POSTGRES_URL", other)
    live = QueueCopies("postgresql").__enter__()
    monkeypatch.undo()
    try:
        with QueueCopies("postgresql"):
            assert _databases(live.stem) == {f"{live.stem}_source"}
    finally:
        monkeypatch.setattr(queue_copies, "POSTGRES_URL", other)
        live.__exit__(None, None, None)
    assert _databases(live.stem) == set()
