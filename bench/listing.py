"""How long does a page of the deliveries list take for a big account?
``python -m bench.listing --events N``.

A fresh SQLite database (Callhook's own migrations), one account whose primary endpoint takes
every event, ``N`` events published in-process (the simulator's calls, batches of 500), 1 in 1,000
of the deliveries then marked failed. Nothing is delivered: the list reads what is stored. Each
kind of page (``deliveries.list_deliveries``, as the API and the dashboard call it, 50 rows) is
read ``--repeat`` times; the table gives milliseconds per page, p50 and p99.
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

from sqlalchemy import update

from bench import load
from bench.cluster import Cluster
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store.tables import deliveries

PAGE = 50


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run(events: int, workdir: Path, repeat: int) -> list[tuple[str, float, float]]:
    """(page kind, p50 ms, p99 ms) for each kind of page (see module doc)."""
    cluster = Cluster(workdir, db_name="listing.db")
    accounts = cluster.prepare(load=1, healthy=0, dead=0, seed=17)
    account_id = accounts.load[0]
    platform = Platform.create(cluster.settings)
    try:
        load.prefill(platform.publisher, load.event_pool(1_000, seed=17), [account_id], events)
        with platform.db.write() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.like("%00"))  # about 1 in 1,024: random id tails
                .values(status="failed")
            )
        with platform.db.read() as conn:
            primary = endpoint_store.primary(conn, account_id)
            assert primary is not None
            middle = delivery_store.list_deliveries(conn, account_id=account_id, limit=events // 2)[
                -1
            ].id
        kinds: dict[str, dict[str, Any]] = {
            "newest page": {},
            "page from a cursor halfway": {"before_id": middle},
            "one endpoint's newest page": {"endpoint_id": primary.id},
            "status=failed (1 in 1,024)": {"status": "failed"},
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
