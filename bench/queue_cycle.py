"""How fast is the durable queue itself? ``python -m bench.queue_cycle [--database-url URL]``.

Publishes N events (batches of 100) into a fresh database, then claims and completes them in
batches without any HTTP, printing publish events/s and claim→complete deliveries/s: the
database's ceiling for the worker, whatever the network does.
"""

from __future__ import annotations

import argparse
import random
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
from callhook.store.queue import AttemptResult


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = args.database_url or f"sqlite:///{tmp / 'queue.db'}"
    platform = Platform.create(
        Settings(database_url=url, master_key=None if "sqlite" in url else "A" * 43)
    )
    rng = random.Random(1)
    now = datetime.now(UTC)
    acc_id = one_account(platform, rng=rng, now=now)
    template = sample_publish_request("incoming_call_end", rng, now=now, account_id=acc_id)
    requests = [
        parse_event(
            {
                **template,
                "pbx_id": f"call-{i}",
                "data": {**template["data"], "call_id": f"call-{i}"},
            }
        )
        for i in range(100)
    ]

    t0 = time.perf_counter()
    for _ in range(args.events // 100):
        platform.publisher.publish(requests)
    publish_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    done = 0
    cache: dict[str, str] = {}
    while True:
        claim_now = datetime.now(UTC)
        with platform.db.write() as conn:
            jobs = queue.claim(
                conn,
                worker_id="bench",
                claim_id=new_id("clm", claim_now, rng),
                now=claim_now,
                lease=timedelta(seconds=30),
                limit=args.batch,
                box=platform.box,
                secret_cache=cache,
            )
        if not jobs:
            break
        results = [
            AttemptResult(
                job=j,
                started_at=claim_now,
                duration_ms=1.0,
                delivered=True,
                status_code=200,
                response_body="ok",
                error_class=None,
                error_message=None,
                next_attempt_at=None,
            )
            for j in jobs
        ]
        with platform.db.write() as conn:
            queue.complete(conn, results)
        done += len(jobs)
    cycle_s = time.perf_counter() - t0
    print(f"database: {platform.db.dialect}  events: {args.events}  claim batch: {args.batch}")
    print(f"publish (batches of 100):   {args.events / publish_s:9.0f} events/s")
    print(f"claim → complete (no HTTP): {done / cycle_s:9.0f} deliveries/s")


if __name__ == "__main__":
    main()
