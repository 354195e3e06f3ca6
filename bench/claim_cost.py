"""What one small claim costs: ``python -m bench.claim_cost [--database-url URL] [--rounds N]``.

A live call-control event on an idle or lightly loaded worker is claimed alone (issue 14: the
claim was the largest part of its latency). This publishes one event at a time into a fresh
database with one endpoint and claims it the way the worker does (``delivery.claims.Claims``:
the plan, the claim statement, the secret check, the settling, then the read of what sending
needs), then records the attempt; it prints the claim's and the completion's wall time
percentiles in milliseconds. ``--profile`` prints the claim's 25 costliest functions instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.one_account import one_account
from bench.ordering import quantile
from callhook.core.clock import SystemClock
from callhook.delivery.claims import Claims
from callhook.events import sample_publish_request
from callhook.platform import Platform
from callhook.publish import parse_event
from callhook.settings import Settings
from callhook.store.queue import AttemptResult


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="callhook-claims-") as tmp:
        _run(Path(tmp))


def _run(tmp: Path) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2_000)
    parser.add_argument(
        "--jobs", type=int, default=1, help="events published and claimed per round"
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tmp / 'claims.db'}"
    settings = Settings(database_url=url, master_key=None if "sqlite" in url else "A" * 43)
    platform = Platform.create(settings)
    rng = random.Random(1)
    now = datetime.now(UTC)
    acc_id = one_account(platform, rng=rng, now=now)
    template = sample_publish_request("incoming_call_start", rng, now=now, account_id=acc_id)
    claims = Claims(
        platform.db, settings, clock=SystemClock(), rng=rng, box=platform.box, worker_id="bench"
    )
    claim_ms: list[float] = []
    complete_ms: list[float] = []
    profiler = cProfile.Profile() if args.profile else None
    for i in range(args.rounds):
        batch = []
        for j in range(args.jobs):
            call = f"call-{i}-{j}"
            batch.append(
                parse_event(
                    {**template, "pbx_id": call, "data": {**template["data"], "call_id": call}}
                )
            )
        platform.publisher.publish(batch)
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        jobs = claims.claim(args.jobs, set())
        if profiler is not None:
            profiler.disable()
        t1 = time.perf_counter()
        if len(jobs) != args.jobs:
            raise SystemExit(f"round {i}: claimed {len(jobs)} jobs, not {args.jobs}")
        claims.complete(
            [
                AttemptResult(
                    job=job,
                    started_at=datetime.now(UTC),
                    duration_ms=1.0,
                    delivered=True,
                    status_code=200,
                    response_body="ok",
                    error_class=None,
                    error_message=None,
                    next_attempt_at=None,
                )
                for job in jobs
            ]
        )
        t2 = time.perf_counter()
        claim_ms.append((t1 - t0) * 1000)
        complete_ms.append((t2 - t1) * 1000)
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        return
    print(f"database: {platform.db.dialect}  rounds: {args.rounds}  jobs per claim: {args.jobs}")
    for name, values in (("claim", claim_ms), ("complete", complete_ms)):
        print(
            f"{name:9} p50 {statistics.median(values):6.2f} ms"
            f"  p90 {quantile(values, 0.9):6.2f} ms  p99 {quantile(values, 0.99):6.2f} ms"
        )


if __name__ == "__main__":
    main()
