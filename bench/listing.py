"""How long does a page of the deliveries list take for a big account?
``python -m bench.listing --events N``.

A fresh SQLite database (Callhook's own migrations), one account whose primary endpoint takes
every event, ``N`` events published in-process (the simulator's calls, batches of 500); then
1 in 1,024 of the deliveries marked failed and the rest delivered, but for the 3 oldest, left
retrying. Nothing is sent: the list reads what is stored. Each kind of page
(``deliveries.list_deliveries``, as the API and the dashboard call it, 50 rows) is read
``--repeat`` times; the table gives milliseconds per page, p50 and p99.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bench import load
from bench.cluster import Cluster
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store import tables

PAGE = 50


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run(count: int, workdir: Path, repeat: int) -> list[tuple[str, float, float]]:
    """(page kind, p50 ms, p99 ms) for each kind of page (see module doc)."""
    cluster = Cluster(workdir, db_name="listing.db")
    accounts = cluster.prepare(load=1, healthy=0, dead=0, seed=17)
    account_id = accounts.load[0]
    platform = Platform.create(cluster.settings)
    try:
        load.prefill(platform.publisher, load.event_pool(1_000, seed=17), [account_id], count)
        with platform.db.write() as conn:
            conn.execute(
                update(tables.deliveries)
                .where(tables.deliveries.c.id.like("%00"))  # about 1 in 1,024: random id tails
                .values(status="failed")
            )
            # Every other one delivered, three of the oldest retrying.
            conn.execute(
                update(tables.deliveries)
                .where(tables.deliveries.c.status.in_(["pending", "waiting"]))
                .values(status="delivered", attempts=1)
            )
            oldest = conn.execute(
                select(tables.deliveries.c.id).order_by(tables.deliveries.c.created_at).limit(3)
            ).scalars()
            conn.execute(
                update(tables.deliveries)
                .where(tables.deliveries.c.id.in_(list(oldest)))
                .values(status="pending", attempts=1)
            )
            pbx_id = conn.execute(
                select(tables.events.c.pbx_id).order_by(tables.events.c.created_at).limit(1)
            ).scalar_one()
        with platform.db.read() as conn:
            primary = endpoint_store.primary(conn, account_id)
            assert primary is not None
            middle = delivery_store.list_deliveries(conn, account_id=account_id, limit=count // 2)[
                -1
            ].id
        kinds: dict[str, dict[str, Any]] = {
            "newest page": {},
            "page from a cursor halfway": {"before_id": middle},
            "one endpoint's newest page": {"endpoint_id": primary.id},
            "status=failed (1 in 1,024)": {"status": "failed"},
            "status=retrying (3, the oldest)": {"status": "retrying"},
            "pbx_id= (the oldest event's)": {"pbx_id": pbx_id},
        }
        results = []
        for name, args in kinds.items():
            samples = _time(functools.partial(_page, platform, account_id, args), repeat)
            results.append((name, *_percentiles(samples)))
        return results
    finally:
        platform.db.dispose()


def _page(platform: Platform, account_id: str, args: dict[str, Any]) -> None:
    with platform.db.read() as conn:
        rows = delivery_store.list_deliveries(conn, account_id=account_id, limit=PAGE, **args)
    assert rows, args


def _time(work: Callable[[], None], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--workdir", type=Path, help="keep the database here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="callhook-listing-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = run(args.events, workdir, args.repeat)
    print(
        f"`python -m bench.listing --events {args.events}` — one account, {args.events:,}"
        f" deliveries, {PAGE} rows a page, {args.repeat} reads each:\n"
    )
    print("| page | p50 ms | p99 ms |\n|---|---:|---:|")
    for name, p50, p99 in results:
        print(f"| {name} | {p50:,.2f} | {p99:,.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
