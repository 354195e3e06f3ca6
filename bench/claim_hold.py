"""How long does a claim hold SQLite's one writer? ``python -m bench.claim_hold [--claims N]``.

A fresh SQLite file with 20,000 pending sms deliveries to one endpoint; claims of 32 in turn
two ways: everything in the write transaction (``queue.claim``), and the worker's way
(``queue.claim_rows`` in the write transaction, ``queue.load_claimed`` after it commits, in a
read transaction). Prints the median milliseconds each way holds the writer, and the read.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.one_account import one_account
from callhook.core.ids import new_id
from callhook.events import sample_publish_request
from callhook.platform import Platform
from callhook.publish import parse_event
from callhook.settings import Settings
from callhook.store import queue

LEASE = timedelta(seconds=30)
BATCH = 32


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.claim_hold", description=__doc__)
    parser.add_argument("--claims", type=int, default=300, help="claims in all (half each way)")
    args = parser.parse_args(argv)
    platform = Platform.create(
        Settings(database_url=f"sqlite:///{Path(tempfile.mkdtemp()) / 'claims.db'}")
    )
    rng = random.Random(1)
    now = datetime.now(UTC)
    account_id = one_account(platform, rng=rng, now=now)
    batch = [
        parse_event(sample_publish_request("sms", rng, now=now, account_id=account_id))
        for _ in range(100)
    ]
    for _ in range(200):
        platform.publisher.publish(batch)

    cache: dict[str, str] = {}
    together: list[float] = []
    split: list[float] = []
    reads: list[float] = []
    for n in range(args.claims):
        at = datetime.now(UTC)
        claim_id = new_id("clm", at, rng)
        start = time.perf_counter()
        if n % 2 == 0:
            with platform.db.write() as conn:
                jobs = queue.claim(
                    conn,
                    worker_id="bench",
                    claim_id=claim_id,
                    now=at,
                    lease=LEASE,
                    limit=BATCH,
                    box=platform.box,
                    secret_cache=cache,
                )
            together.append((time.perf_counter() - start) * 1000)
        else:
            with platform.db.write() as conn:
                rows = queue.claim_rows(
                    conn, worker_id="bench", claim_id=claim_id, now=at, lease=LEASE, limit=BATCH
                )
            committed = time.perf_counter()
            with platform.db.read() as conn:
                jobs = queue.load_claimed(
                    conn,
                    [r.id for r in rows],
                    claim_id=claim_id,
                    box=platform.box,
                    now=at,
                    cache=cache,
                )
            split.append((committed - start) * 1000)
            reads.append((time.perf_counter() - committed) * 1000)
        if len(jobs) != BATCH:
            raise SystemExit(f"claimed {len(jobs)}, expected {BATCH}: too few pending")
    platform.db.dispose()
    print(f"claims of {BATCH}, median ms holding the writer (n={args.claims // 2} each way):")
    print(f"  bodies read inside the write:  {statistics.median(together):6.2f}")
    print(
        f"  bodies read after the commit:  {statistics.median(split):6.2f}"
        f"  (then a read of {statistics.median(reads):.2f})"
    )


if __name__ == "__main__":
    main()
