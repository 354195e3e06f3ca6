"""Issue 14's bench: ordered delivery beside unordered, and call-control priority under load.

``python -m bench.ordering [--smoke]`` (also a phase of ``python -m bench``):

1. **Ordered vs unordered.** One pre-filled queue of realistic calls from the simulator (every
   event of ``calls`` conversations over 10 endpoints), delivered by one ``callhook worker`` to
   ``bench.order_sink`` (answers after 1–20 ms at random, checks each call's order as requests
   arrive). Each drain runs on a copy of that queue; in the unordered copies every endpoint is
   set to ``ordering: none`` and the waiting deliveries made pending — the baseline. Each kind
   is drained twice, unordered, ordered, ordered, unordered (``DRAINS``). Reports deliveries/s
   of each (both drains together, and each), the ratio, and the violations the sink counted
   (ordered must be 0).
2. **Priority.** One endpoint whose queue is full of bulk events (sms), a worker draining it,
   and call-control events (``incoming_call_start``) published one at a time meanwhile; then
   the same on an empty queue. Reports the call-control p50/p99 of both (latency measured at the
   sink from each event's ``created_at``), and how much bulk was still queued after the last
   call-control event (it must be some: else the last ones met an empty queue).
3. **Flaky receiver, several workers** (issue 14's "done when"). The drains of part 1 again, by
   two worker processes, with the sink answering 500 to 5 % of first arrivals (each retried by
   the schedule, 5 s later): the sending rate of each kind over the first 3.5 s of a drain
   (before any retry is due), the whole drains' rate (the retries' wait included), their
   ratios, and the violations (ordered must be 0). On SQLite, then on PostgreSQL (the server
   at ``BENCH_POSTGRES_URL``, whose role needs ``CREATEDB`` and ``CHECKPOINT`` rights; each
   drain on a compacted copy of the pre-filled database, dropped after:
   ``bench.queue_copies``): several workers is the deployment PostgreSQL is for.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import load
from bench.cluster import ROOT, Accounts, Cluster, proc_cpu_seconds, sink_get
from bench.queue_copies import QueueCopies
from callhook.events import sample_publish_request
from callhook.platform import Platform
from callhook.publish import PublishRequest


@dataclass(frozen=True)
class OrderSizes:
    calls: int = 3_000  # conversations in the pre-filled queue (about 10 events each)
    # The priority phase: sms in its full queue, enough to outlast the call-control events
    # published during each run (one endpoint takes at most about 3,000/s: 32 in flight at
    # 1–20 ms); 600 of them, so that the p99 is not one or two unlucky samples.
    bulk: int = 60_000
    live: int = 600
    live_interval: float = 0.02
    timeout: float = 600.0

    @classmethod
    def smoke(cls) -> OrderSizes:
        return cls(calls=150, bulk=6_000, live=30, live_interval=0.03, timeout=120.0)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class OrderCluster(Cluster):
    """A cluster whose sink is ``bench.order_sink`` (answering 500 to that share of first
    arrivals: ``fail_first``)."""

    fail_first = 0.0

    def start_sink(self) -> None:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.order_sink",
                "--port",
                "0",
                "--fail-first",
                str(self.fail_first),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=self.env(),
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "READY":
            proc.kill()
            raise RuntimeError("the ordering sink did not start")
        self.sink_port = int(line[1])
        self.children["sink"] = proc


def _drain(c: Cluster, total: int, timeout: float, processes: int | None) -> dict[str, Any]:
    """Start a worker on ``c``'s database (``processes`` of them under one supervisor, or the
    plain ``callhook worker``), wait until the sink has answered ``total`` requests 200, stop."""
    sink_get(c.sink_port, "/_reset")
    worker = c.start_worker(processes)
    deadline = time.monotonic() + timeout
    stats = sink_get(c.sink_port, "/_stats")
    cpu = 0.0
    while int(stats["count"]) < total and time.monotonic() < deadline:  # type: ignore[call-overload]
        time.sleep(0.2)
        stats = sink_get(c.sink_port, "/_stats")
        if worker.poll() is None:
            cpu = proc_cpu_seconds(worker.pid)
    c.stop("worker")
    out: dict[str, Any] = dict(sink_get(c.sink_port, "/_stats"))
    first_pass = sink_get(c.sink_port, f"/_answered?within={FIRST_PASS_SECONDS}")
    out["first_pass"] = int(first_pass["count"])  # type: ignore[call-overload]
    # Over the time it took, up to the window: a first pass done in 1 s is not spread over 3.5.
    last = first_pass["last"]
    out["first_pass_span"] = max(float(last) - float(out["first"] or 0), 1e-9) if last else 1e-9  # type: ignore[arg-type]
    out["complete"] = int(out["count"]) >= total
    out["cpu_per_1000"] = cpu / max(int(out["count"]), 1) * 1000
    return out


#: Issue 14's "done when": the simulator's calls through a slow and flaky receiver (1–20 ms, this
#: share of first arrivals answered 500 and retried, 5 s later by the schedule) by several
#: worker processes.
FLAKY_FAIL_FIRST = 0.05
FLAKY_PROCESSES = 2
#: The sending rate is read over the drain's first seconds, before any retry is due (the
#: schedule's first delay is 5 s, less 20 % jitter): after that an ordered call may wait for
#: its failed event's retry — the price of order, reported apart as the whole drain's rate.
FIRST_PASS_SECONDS = 3.5

#: The drains, in order: each kind twice, in an A B B A pattern, so a machine that slows down or
#: speeds up during the phase (a shared VM's neighbours) weighs on both kinds alike.
DRAINS = (("unordered", 1), ("ordered", 1), ("ordered", 2), ("unordered", 2))


def ordered_vs_unordered(
    workdir: Path,
    sizes: OrderSizes,
    *,
    prefix: str = "order",
    processes: int | None = None,
    fail_first: float = 0.0,
    database: str = "sqlite",
) -> dict[str, float]:
    """The drains (``DRAINS``) of one pre-filled queue; the numbers' keys start with
    ``prefix`` (``order``: one worker, a receiver that never fails; ``flaky``: issue 14's
    "done when", several worker processes and a receiver refusing ``fail_first`` of first
    arrivals). ``database``: ``sqlite`` (each drain on a copy of the file) or ``postgresql``
    (each drain on a database made from the pre-filled one as its template, on the server
    at ``phases.POSTGRES_URL``, dropped after)."""
    runs: dict[str, list[dict[str, Any]]] = {"ordered": [], "unordered": []}
    with QueueCopies(database) as queues:
        source = OrderCluster(workdir / f"{prefix}-source", database_url=queues.source_url)
        source.fail_first = fail_first
        source.workdir.mkdir(parents=True, exist_ok=True)
        # One master key for every copy of the database (its secrets are encrypted with it).
        source.master_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        try:
            source.start_sink()
            accounts = source.prepare(load=10, healthy=0, dead=0, seed=14)
            pool = load.event_pool(sizes.calls, seed=14)
            platform = Platform.create(source.settings)
            try:
                load.prefill(platform.publisher, pool, accounts.load, len(pool))
            finally:
                platform.db.dispose()
            total = queues.seal(source)
            for kind, n in DRAINS:
                copy = OrderCluster(workdir / f"{prefix}-{kind}{n}")
                copy.workdir.mkdir(parents=True, exist_ok=True)
                copy.master_key, copy.sink_port = source.master_key, source.sink_port
                copy.database_url = queues.copy(source, copy, unordered=kind == "unordered")
                try:
                    runs[kind].append(_drain(copy, total, sizes.timeout, processes))
                finally:
                    copy.stop_all()
                queues.discard(copy.database_url)  # (after a failure: on leaving the block)
        finally:
            source.stop_all()
    out = {f"{prefix}_events": float(total)}
    for kind, key in (("unordered", f"{prefix}_unordered"), ("ordered", prefix)):
        got = runs[kind]
        out[f"{key}_rate"] = sum(r["count"] for r in got) / sum(_span(r) for r in got)
        out[f"{key}_violations"] = float(sum(r["violations"] for r in got))
        if processes is None:  # (a supervisor's own CPU says nothing of its workers')
            out[f"{key}_cpu_per_1000"] = sum(r["cpu_per_1000"] for r in got) / len(got)
        out[f"{key}_refused"] = float(sum(r["refused"] for r in got))
        out[f"{key}_first_pass_rate"] = sum(r["first_pass"] for r in got) / sum(
            r["first_pass_span"] for r in got
        )
        out[f"{key}_incomplete"] = float(sum(not r["complete"] for r in got))
        out[f"{key}_duplicates"] = float(sum(r["duplicates"] for r in got))
        for n, r in enumerate(got, start=1):
            out[f"{key}_rate_{n}"] = r["count"] / _span(r)
    out[f"{prefix}_gaps"] = float(sum(r["gaps"] for r in runs["ordered"]))
    out[f"{prefix}_delivered"] = float(sum(r["count"] for r in runs["ordered"]))
    out[f"{prefix}_ratio"] = out[f"{prefix}_rate"] / max(out[f"{prefix}_unordered_rate"], 1e-9)
    out[f"{prefix}_first_pass_ratio"] = out[f"{prefix}_first_pass_rate"] / max(
        out[f"{prefix}_unordered_first_pass_rate"], 1e-9
    )
    return out


def _span(stats: dict[str, Any]) -> float:
    """Seconds from the first request the sink saw to the last answer."""
    return max(float(stats["last"] or 0) - float(stats["first"] or 0), 1e-9)


def priority(workdir: Path, sizes: OrderSizes) -> dict[str, float]:
    c = OrderCluster(workdir / "priority")
    c.workdir.mkdir(parents=True, exist_ok=True)
    try:
        c.start_sink()
        accounts = c.prepare(load=1, healthy=0, dead=0, seed=15)
        platform = Platform.create(c.settings)
        try:
            full, left = _priority_run(c, platform, accounts, sizes, backlog=sizes.bulk)
            empty, _ = _priority_run(c, platform, accounts, sizes, backlog=0)
        finally:
            platform.db.dispose()
    finally:
        c.stop_all()
    return {
        "prio_full_p50": quantile(full, 0.5),
        "prio_full_p99": quantile(full, 0.99),
        "prio_empty_p50": quantile(empty, 0.5),
        "prio_empty_p99": quantile(empty, 0.99),
        "prio_samples": float(len(full)),
        "prio_bulk_left": float(left),
    }


def _priority_run(
    c: Cluster, platform: Platform, accounts: Accounts, sizes: OrderSizes, *, backlog: int
) -> tuple[list[float], int]:
    """The call-control latencies (ms) of one run, and how many bulk deliveries were still
    queued when the last call-control event was published (with a backlog it must be > 0: else
    the last ones met an empty queue)."""
    account = accounts.load[0]
    rng = random.Random(backlog)
    now = platform.clock.now()
    for start in range(0, backlog, 500):
        platform.publisher.publish(
            [
                PublishRequest(
                    **_req(sample_publish_request("sms", rng, now=now, account_id=account))
                )
                for _ in range(min(500, backlog - start))
            ]
        )
    warm = sample_publish_request("outgoing_call_start", rng, now=now, account_id=account)
    platform.publisher.publish([PublishRequest(**_req(warm))])
    sink_get(c.sink_port, "/_reset")
    c.start_worker()
    # Measure once the worker is up (the warm-up event arrived) and, with a backlog, busy on it.
    deadline = time.monotonic() + sizes.timeout
    while time.monotonic() < deadline and int(sink_get(c.sink_port, "/_stats")["count"]) < (  # type: ignore[call-overload]
        min(backlog // 10, 200) + 1
    ):
        time.sleep(0.05)
    since = time.time()
    for _ in range(sizes.live):
        item = sample_publish_request(
            "incoming_call_start", rng, now=platform.clock.now(), account_id=account
        )
        platform.publisher.publish([PublishRequest(**_req(item))])
        time.sleep(sizes.live_interval)
    with sqlite3.connect(c.db_path) as conn:
        left = int(
            conn.execute(
                "SELECT count(*) FROM deliveries WHERE status = 'pending' AND event = 'sms'"
            ).fetchone()[0]
        )
    deadline = time.monotonic() + sizes.timeout
    got: list[float] = []
    while time.monotonic() < deadline:
        got = list(sink_get(c.sink_port, f"/_latency?from={since}")["call_control"])  # type: ignore[call-overload]
        if len(got) >= sizes.live:
            break
        time.sleep(0.1)
    c.stop("worker")
    with sqlite3.connect(c.db_path) as conn:  # the rest of the backlog is not measured
        conn.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'pending'")
    return got, left


def _req(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": item["event"],
        "pbx_id": item["pbx_id"],
        "account_id": item["account_id"],
        "data": item["data"],
    }


def report(values: dict[str, float], *, command: str) -> str:
    """The numbers as Markdown list lines (for docs/performance.md and the console)."""
    v = values
    full_vs_empty = v["prio_full_p99"] / max(v["prio_empty_p99"], 1e-9)
    lines = [
        f"#### Ordered delivery per call (issue 14), `{command}`",
        "",
        f"- Ordering, pre-filled queue: {v['order_events']:.0f} deliveries of simulator calls "
        "to 10 endpoints, receiver latency 1–20 ms at random, one worker process; each kind "
        "drained twice (unordered, ordered, ordered, unordered)",
        f"- Ordering, unordered (`ordering: none`): {v['order_unordered_rate']:.0f} deliveries/s "
        f"({v['order_unordered_rate_1']:.0f}, {v['order_unordered_rate_2']:.0f}), "
        f"{v['order_unordered_violations']:.0f} order violations at the sink",
        f"- Ordering, ordered (`per_call`): {v['order_rate']:.0f} deliveries/s "
        f"({v['order_rate_1']:.0f}, {v['order_rate_2']:.0f}), "
        f"{v['order_violations']:.0f} order violations at the sink (must be 0)",
        f"- Ordering, ordered / unordered throughput: {v['order_ratio']:.2f} (target ≥ 0.90)",
        f"- Ordering, worker CPU s per 1,000 deliveries (incl. start-up): unordered "
        f"{v['order_unordered_cpu_per_1000']:.3f}, ordered {v['order_cpu_per_1000']:.3f}",
        f"- Ordering, call-control p50/p99 with the queue full of bulk: "
        f"{v['prio_full_p50']:.0f}/{v['prio_full_p99']:.0f} ms; on an empty queue: "
        f"{v['prio_empty_p50']:.0f}/{v['prio_empty_p99']:.0f} ms; full/empty p99 "
        f"{full_vs_empty:.2f} (target ≤ 2); {v['prio_samples']:.0f} events each way, "
        f"{v['prio_bulk_left']:,.0f} bulk deliveries still queued after the last",
        *_flaky_lines(v, "flaky", "SQLite"),
        *_flaky_lines(v, "flaky_pg", "PostgreSQL"),
    ]
    return "\n".join(lines) + "\n"


def _flaky_lines(v: dict[str, float], p: str, backend: str) -> list[str]:
    """Part 3's lines for one backend (its keys start with ``p``)."""
    return [
        f"- Flaky receiver, {backend}, {FLAKY_PROCESSES} worker processes ({FLAKY_FAIL_FIRST:.0%} "
        f"of first arrivals answered 500, retried after ~5 s; same queue and drains; first "
        f"attempts refused: {v[f'{p}_refused']:.0f} ordered, {v[f'{p}_unordered_refused']:.0f} "
        f"unordered): order violations {v[f'{p}_violations']:.0f} ordered (must be 0), "
        f"{v[f'{p}_unordered_violations']:.0f} unordered; gaps announced "
        f"{v[f'{p}_gaps']:.0f}; duplicates {v[f'{p}_duplicates']:.0f}",
        f"- Flaky receiver, {backend}, sending rate over the first {FIRST_PASS_SECONDS:g} s "
        f"(before any retry is due): unordered {v[f'{p}_unordered_first_pass_rate']:.0f} "
        f"deliveries/s, ordered {v[f'{p}_first_pass_rate']:.0f}, ratio "
        f"{v[f'{p}_first_pass_ratio']:.2f} (target ≥ 0.90)",
        f"- Flaky receiver, {backend}, whole drains (a call's later events wait for its failed "
        f"event's retry when ordered): unordered {v[f'{p}_unordered_rate']:.0f} deliveries/s "
        f"({v[f'{p}_unordered_rate_1']:.0f}, {v[f'{p}_unordered_rate_2']:.0f}), ordered "
        f"{v[f'{p}_rate']:.0f} ({v[f'{p}_rate_1']:.0f}, {v[f'{p}_rate_2']:.0f}), ratio "
        f"{v[f'{p}_ratio']:.2f}",
    ]


#: The prefixes of every part's numbers whose ordered drains must see no violation.
ORDERED_PARTS = ("order", "flaky", "flaky_pg")


def violations(values: dict[str, float]) -> float:
    """Order violations the sink counted in every ordered drain (must be 0)."""
    return sum(values.get(f"{p}_violations", 0.0) for p in ORDERED_PARTS)


def run(workdir: Path, smoke: bool) -> dict[str, float]:
    sizes = OrderSizes.smoke() if smoke else OrderSizes()
    values = ordered_vs_unordered(workdir, sizes)
    values.update(priority(workdir, sizes))
    values.update(
        ordered_vs_unordered(
            workdir,
            sizes,
            prefix="flaky",
            processes=FLAKY_PROCESSES,
            fail_first=FLAKY_FAIL_FIRST,
        )
    )
    values.update(
        ordered_vs_unordered(
            workdir,
            sizes,
            prefix="flaky_pg",
            processes=FLAKY_PROCESSES,
            fail_first=FLAKY_FAIL_FIRST,
            database="postgresql",
        )
    )
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ordering", description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    command = "python -m bench.ordering" + (" --smoke" if args.smoke else "")
    with tempfile.TemporaryDirectory(prefix="callhook-order-") as tmp:
        workdir = args.workdir or Path(tmp)
        values = run(workdir, args.smoke)
    print(report(values, command=command))
    ok = violations(values) == 0 and values["prio_bulk_left"] > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
