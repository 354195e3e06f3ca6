"""How much database does one delivered event take? ``python -m bench.storage --events N``.

A fresh SQLite database (migrated with Callhook's own migrations), 10 accounts whose endpoints
point at the bench's sink, ``N`` events published in-process (the simulator's call lifecycles,
batches of 100), then a real ``callhook worker`` delivers every one of them to the sink over
real HTTP. After a clean stop and a WAL checkpoint, SQLite's ``dbstat`` virtual table says how
many bytes of pages every table and index holds; the table printed is those bytes divided by the
number of delivered events (each with its one attempt), largest first.

``measure`` is the function the main benchmark (``python -m bench``) uses on its own database.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import load
from bench.cluster import Cluster, sink_get
from callhook.platform import Platform

#: The tables a delivered event lives in (everything else is per account, not per event).
PER_EVENT_TABLES = ("events", "deliveries", "attempts", "call_sequences")


@dataclass(frozen=True)
class Part:
    """One table or index: ``name``, the ``table`` it belongs to, its bytes of pages and of
    payload (cell content, without page headers and free space)."""

    name: str
    table: str
    kind: str  # "table" or "index"
    pages_bytes: int
    payload_bytes: int


@dataclass(frozen=True)
class Storage:
    """The database's bytes per delivered event, by table and index."""

    events: int
    parts: tuple[Part, ...]
    file_bytes: int

    @property
    def per_event_bytes(self) -> float:
        """Pages of the per-event tables and their indexes, per event."""
        total = sum(p.pages_bytes for p in self.parts if p.table in PER_EVENT_TABLES)
        return total / max(self.events, 1)

    def table(self) -> list[tuple[str, str, float, float]]:
        """(name, kind, page bytes per event, payload bytes per event), largest first, the
        per-event tables and indexes only."""
        n = max(self.events, 1)
        rows = [
            (p.name, p.kind, p.pages_bytes / n, p.payload_bytes / n)
            for p in self.parts
            if p.table in PER_EVENT_TABLES
        ]
        return sorted(rows, key=lambda r: -r[2])


def measure(db_path: Path, events: int) -> Storage:
    """``dbstat`` of the SQLite database at ``db_path`` (checkpoint it first), per ``events``."""
    conn = sqlite3.connect(db_path)
    try:
        owners = {
            name: (table, kind)
            for name, table, kind in conn.execute(
                "SELECT name, tbl_name, type FROM sqlite_master WHERE type IN ('table', 'index')"
            )
        }
        parts = []
        for name, pages, payload in conn.execute(
            "SELECT name, SUM(pgsize), SUM(payload) FROM dbstat GROUP BY name"
        ):
            table, kind = owners.get(name, (name, "table"))
            parts.append(Part(name, table, kind, int(pages), int(payload)))
    finally:
        conn.close()
    return Storage(events=events, parts=tuple(parts), file_bytes=db_path.stat().st_size)


def run(events: int, workdir: Path, timeout: float = 600.0) -> Storage:
    """Publish ``events``, deliver them all with a real worker, measure (see module doc)."""
    cluster = Cluster(workdir, db_name="storage.db")
    try:
        cluster.start_sink()
        accounts = cluster.prepare(load=10, healthy=0, dead=0, seed=16)
        pool = load.event_pool(1_000, seed=16)
        platform = Platform.create(cluster.settings)
        try:
            load.prefill(platform.publisher, pool, accounts.load, events, batch=100)
        finally:
            platform.db.dispose()
        start = _sink_count(cluster.sink_port)
        cluster.start_worker()
        deadline = time.monotonic() + timeout
        while _sink_count(cluster.sink_port) < start + events:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all {events:,} events were delivered in {timeout:g} s")
            time.sleep(0.1)
        cluster.stop("worker")
    finally:
        cluster.stop_all()
    cluster.checkpoint()
    _check_delivered(cluster.db_path, events)
    return measure(cluster.db_path, events)


def _sink_count(port: int) -> int:
    count = sink_get(port, "/_stats")["count"]
    assert isinstance(count, int)
    return count


def _check_delivered(db_path: Path, events: int) -> None:
    with sqlite3.connect(db_path) as conn:
        # One attempt each: on its delivery's row, none in ``attempts`` (store/attempts.py).
        delivered, attempts = conn.execute(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'"
            " AND attempts = 1 AND holds_attempt), (SELECT COUNT(*) FROM attempts) + :n",
            {"n": events},
        ).fetchone()
    if delivered != events or attempts != events:
        raise RuntimeError(
            f"expected {events:,} delivered events with one attempt each, found {delivered:,}"
            f" delivered and {attempts:,} attempts"
        )


def markdown(storage: Storage, command: str) -> str:
    """The per-event table as Markdown (for docs/performance.md)."""
    lines = [
        f"`{command}` — {storage.events:,} delivered events, bytes per event (pages; payload):",
        "",
        "| table or index | kind | bytes/event | payload bytes/event |",
        "|---|---|---:|---:|",
    ]
    for name, kind, pages, payload in storage.table():
        lines.append(f"| {name} | {kind} | {pages:,.0f} | {payload:,.0f} |")
    lines.append(f"| **total** | | **{storage.per_event_bytes:,.0f}** | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, help="keep the database here")
    args = parser.parse_args(argv)
    command = "python -m bench.storage --events " + str(args.events)
    with tempfile.TemporaryDirectory(prefix="callhook-storage-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        storage = run(args.events, workdir)
    print(markdown(storage, command))
    print(f"database file: {storage.file_bytes / max(storage.events, 1):,.0f} bytes/event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
