"""How long does removing a big endpoint hold up everyone else's writes?
``python -m bench.endpoint_removal --events N``.

A fresh SQLite database (Callhook's own migrations), one account with two endpoints that take
every event, ``N`` events published in-process (the simulator's calls, batches of 500); every
delivery then marked delivered with one attempt but for the second endpoint's newer half, left
queued (an endpoint that stopped answering). The second endpoint (``N`` deliveries) is
removed from a copy of that file, in each way, alternating, ``--repeat`` times: in one
transaction (``endpoints.delete_endpoint``, as before) and in batches
(``endpoint_removal.remove_endpoint``). Meanwhile another thread of the same process writes a
tiny transaction every 5 ms, as a publish or a worker's completion would: the table gives the
removal's time and how long those writes waited for their turn (p50, p99, max).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert, literal, select, text, update

from bench import load
from bench.cluster import Cluster
from bench.phases import quantile
from callhook.platform import Platform
from callhook.store import endpoint_removal, tables
from callhook.store import endpoints as endpoint_store
from callhook.store.db import Database


def build(count: int, workdir: Path) -> tuple[Path, str, str]:
    """The database file (checkpointed), the account and the endpoint to remove."""
    cluster = Cluster(workdir, db_name="removal.db")
    cluster.sink_port = 9  # nothing is sent: the endpoints' URLs only need a valid port
    cluster.prepare(load=0, healthy=0, dead=0, seed=23)
    platform = Platform.create(cluster.settings)
    try:
        [account_id] = cluster.add_slow_endpoints(platform, accounts=1, endpoints=2)
        load.prefill(platform.publisher, load.event_pool(1_000, seed=23), [account_id], count)
        d, a = tables.deliveries, tables.attempts
        with platform.db.write() as conn:
            now = platform.clock.now()
            extra = conn.execute(
                select(tables.endpoints.c.id).where(tables.endpoints.c.is_primary.is_(False))
            ).scalar_one()
            # The extra endpoint's newer half stays queued (an endpoint that stopped answering).
            middle = conn.execute(
                select(d.c.created_at)
                .where(d.c.endpoint_id == extra)
                .order_by(d.c.created_at)
                .offset(count // 2)
                .limit(1)
            ).scalar_one()
            done = (d.c.endpoint_id != extra) | (d.c.created_at < middle)
            conn.execute(
                update(d)
                .where(done)
                .values(status="delivered", attempts=1, delivered_at=now, last_status_code=200)
            )
            conn.execute(
                insert(a).from_select(
                    ["delivery_id", "number", "started_at", "duration_ms", "status_code"],
                    select(
                        d.c.id,
                        literal(1),
                        d.c.created_at,
                        literal(12.5),
                        literal(200),
                    ).where(done),
                )
            )
    finally:
        platform.db.dispose()
    cluster.checkpoint()
    return cluster.db_path, account_id, extra


def measure(
    source: Path, account_id: str, endpoint_id: str, remove: Callable[[Database], int]
) -> tuple[int, float, list[float]]:
    """(deliveries removed, seconds, the other writer's waits in ms) on a copy of ``source``."""
    copy = source.with_name("copy.db")
    for leftover in copy.parent.glob("copy.db*"):
        leftover.unlink()
    shutil.copyfile(source, copy)
    db = Database(f"sqlite:///{copy}")
    waits: list[float] = []
    done = threading.Event()

    def other_writer() -> None:
        while not done.is_set():
            start = time.perf_counter()
            with db.write() as conn:
                conn.execute(text("SELECT 1"))
            waits.append((time.perf_counter() - start) * 1000)
            time.sleep(0.005)

    beside = threading.Thread(target=other_writer)
    beside.start()
    try:
        time.sleep(0.2)
        start = time.perf_counter()
        removed = remove(db)
        took = time.perf_counter() - start
    finally:
        done.set()
        beside.join()
        db.dispose()
    return removed, took, waits


def _one_transaction(account_id: str, endpoint_id: str) -> Callable[[Database], int]:
    def remove(db: Database) -> int:
        with db.write() as conn:
            return endpoint_store.delete_endpoint(conn, account_id, endpoint_id)

    return remove


def _batched(account_id: str, endpoint_id: str, size: int) -> Callable[[Database], int]:
    def remove(db: Database) -> int:
        return endpoint_removal.remove_endpoint(
            db, account_id, endpoint_id, batch_size=size
        ).deliveries

    return remove


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.endpoint_removal", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="keep the database here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="callhook-removal-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        source, account_id, extra = build(args.events, workdir)
        ways = {
            "one transaction": _one_transaction(account_id, extra),
            f"batches of {endpoint_removal.BATCH_SIZE}": _batched(
                account_id, extra, endpoint_removal.BATCH_SIZE
            ),
        }
        print(
            f"`python -m bench.endpoint_removal --events {args.events}` — an endpoint with"
            f" {args.events:,} deliveries (the older half delivered with one attempt each, the"
            " newer half queued) removed while another thread writes every 5 ms:\n"
        )
        print("| removal | seconds | other writes' wait p50 / p99 / max, ms | deliveries |")
        print("|---|---:|---|---:|")
        for _ in range(args.repeat):
            for name, remove in ways.items():
                removed, took, waits = measure(source, account_id, extra, remove)
                print(
                    f"| {name} | {took:.2f} | {quantile(waits, 0.5):.1f} /"
                    f" {quantile(waits, 0.99):.1f} / {max(waits):.1f} | {removed:,} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
