"""The benchmark's phases, in the order they run; each returns plain numbers for the report."""

from __future__ import annotations

import asyncio
import json
import math
import os
import resource
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from bench import load, storage
from bench.cluster import (
    ROOT,
    Accounts,
    Cluster,
    postgres_cpu_seconds,
    proc_cpu_seconds,
    proc_peak_rss_mb,
    sink_get,
    thread_cpu_seconds,
)
from callhook import simulate as sim
from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.store import endpoints as endpoint_store


@dataclass(frozen=True)
class Sizes:
    """How big each phase is (``--smoke`` shrinks all of them to seconds)."""

    prefill: int = 100_000
    single_seconds: float = 5.0
    live_seconds: float = 15.0
    latency_seconds: float = 15.0
    ceiling_seconds: float = 10.0
    isolation_events: int = 20_000
    pool_calls: int = 1_000
    drain_timeout: float = 300.0
    loads: tuple[int, ...] = (100, 1_000, 3_000)
    scale_events: int = 30_000
    scale_processes: tuple[int, ...] = (1, 2)
    #: Publish requests in flight in the single-event ingest phase (issue 16: 32).
    single_concurrency: int = 32
    #: Throttle phase: one endpoint limited to ``throttle_rate``/s, backlogged, measured over
    #: ``throttle_seconds`` with ``throttle_processes`` worker processes; the other endpoints
    #: drain ``throttle_others`` events beside it (and once alone, for comparison).
    throttle_rate: float = 50.0
    throttle_seconds: float = 30.0
    throttle_processes: int = 2
    throttle_others: int = 20_000

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            prefill=2_000,
            single_seconds=1.0,
            live_seconds=1.5,
            latency_seconds=1.0,
            ceiling_seconds=1.0,
            isolation_events=400,
            pool_calls=100,
            drain_timeout=60.0,
            scale_events=2_000,
            throttle_seconds=4.0,
            throttle_others=1_000,
        )


@dataclass
class Results:
    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, key: str, value: float) -> None:
        self.values[key] = value


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sink_count(port: int) -> int:
    count = sink_get(port, "/_stats")["count"]
    assert isinstance(count, int)
    return count


def wait_for_sink(
    port: int, target: int, timeout: float, *, during: Callable[[], None] | None = None
) -> int:
    """Poll the sink until it has ``target`` records (or time runs out); return the count."""
    deadline = time.monotonic() + timeout
    count = sink_count(port)
    while count < target and time.monotonic() < deadline:
        time.sleep(0.05)
        if during is not None:
            during()
        count = sink_count(port)
    return count


def loop_busy(samples: list[tuple[float, float]], win: dict[str, object]) -> float | None:
    """The cores a thread used between the sink's first and last arrival of ``win``, from
    ``(time.time(), thread CPU s)`` samples (the first at or after the first arrival, the last
    at or before the last); None without two such samples."""
    first, last = win.get("first"), win.get("last")
    if not isinstance(first, float) or not isinstance(last, float):
        return None
    inside = [s for s in samples if first <= s[0] <= last]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def window(port: int, start: int) -> dict[str, object]:
    return sink_get(port, f"/_window?from={start}")


def rate_of(win: dict[str, object], count: int | None = None) -> float:
    first, last = win["first"], win["last"]
    n = count if count is not None else win["count"]
    if not isinstance(first, float) or not isinstance(last, float) or last <= first:
        return 0.0
    assert isinstance(n, int)
    return float((n - 1) / (last - first))


class WalSampler:
    """The peak size of the SQLite database's write-ahead log while a phase runs (a thread
    stat-ing ``<db>-wal`` every ``interval`` seconds); use as a context manager."""

    def __init__(self, c: Cluster, interval: float = 0.05) -> None:
        self.path = c.db_path.with_name(c.db_path.name + "-wal")
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.size())
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> WalSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.size())


# --- phases ------------------------------------------------------------------------------------
def ingest_and_prefill(
    c: Cluster, acc: Accounts, pool: list[sim.SimEvent], sizes: Sizes, out: Results
) -> None:
    """API without worker: single-event ingest for a while, then batches of 100 up to prefill.
    Also the write-ahead log's peak size meanwhile, and what is left of it after a clean stop."""
    wal = WalSampler(c)
    c.start_api(worker=False)
    try:
        with wal:
            _ingest(c, acc, pool, sizes, out)
    finally:
        c.stop("serve")
    out.put("wal_peak_mb_ingest", wal.peak / 2**20)
    out.put("wal_after_stop_mb", wal.size() / 2**20)


def _ingest(
    c: Cluster, acc: Accounts, pool: list[sim.SimEvent], sizes: Sizes, out: Results
) -> None:
    singles = load.bodies(pool, acc.load, 20_000 if sizes.prefill > 10_000 else 1_000, 1)
    single = asyncio.run(
        load.ingest(
            c.api_port,
            acc.token,
            singles,
            concurrency=sizes.single_concurrency,
            seconds=sizes.single_seconds,
        )
    )
    out.put("ingest_single", single.rate)
    batched = load.bodies(pool, acc.load, sizes.prefill - single.events, 100)
    result = asyncio.run(load.ingest(c.api_port, acc.token, batched, concurrency=4))
    out.put("ingest_batched", result.rate)
    out.put("ingest_errors", float(single.errors + result.errors))
    out.put("prefilled", float(single.events + result.events))


def drain_prefilled(
    c: Cluster, acc: Accounts, pool: list[sim.SimEvent], sizes: Sizes, out: Results
) -> None:
    """Worker process on the pre-filled queue: deliveries/s, CPU per delivery, peak RSS, DB size
    (the file per million events, and ``bench.storage``'s bytes per delivered event)."""
    target_total = int(out.values["prefilled"])
    out.put("db_bytes_per_event_pending", c.checkpoint() / max(target_total, 1))
    start = sink_count(c.sink_port)
    worker = c.start_worker()
    peak = 0.0
    cpu = 0.0
    loop: list[tuple[float, float]] = []  # (wall clock as the sink's, event-loop thread CPU s)

    def sample() -> None:
        nonlocal peak, cpu
        if worker.poll() is None:
            peak = max(peak, proc_peak_rss_mb(worker.pid))
            cpu = proc_cpu_seconds(worker.pid)
            loop.append((time.time(), thread_cpu_seconds(worker.pid, worker.pid)))

    got = wait_for_sink(c.sink_port, start + target_total, sizes.drain_timeout, during=sample)
    sample()
    c.stop("worker")
    win = window(c.sink_port, start)
    delivered = got - start
    out.put("delivered_prefilled", float(delivered))
    out.put("throughput_prefilled", rate_of(win))
    out.put("cpu_ms_per_delivery", cpu / max(delivered, 1) * 1000)
    busy = loop_busy(loop, win)
    if busy is not None:
        # The worker's event loop (sending, results) is one thread: when it is near a whole
        # core, the drain is bound by it, whatever the other threads and cores have left.
        out.put("loop_cores", busy)
        out.put("loop_ms_per_delivery", busy / max(rate_of(win), 1e-9) * 1000)
    out.put("peak_rss_mb", peak)
    out.put("duplicates", float(win["duplicates"]))  # type: ignore[arg-type]
    events = target_total
    out.put("db_mb_per_million", c.checkpoint() / max(events, 1) * 1e6 / 2**20)
    out.put("bytes_per_delivered_event", storage.measure(c.db_path, events).per_event_bytes)


def ceiling(
    c: Cluster, acc: Accounts, pool: list[sim.SimEvent], sizes: Sizes, out: Results
) -> None:
    """The signed-POST loop with the worker's client and concurrency, same sink, same run."""
    concurrency = c.settings.worker_max_in_flight
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ceiling",
            "--url",
            f"http://127.0.0.1:{c.sink_port}/c/0",
            "--seconds",
            str(sizes.ceiling_seconds),
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        check=True,
        cwd=ROOT,
        env=c.env(),
        timeout=sizes.ceiling_seconds + 60,
    )
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    out.put("ceiling", float(result["rate"]))
    # CPU seconds per 1,000 requests is CPU milliseconds per request.
    out.put("ceiling_cpu_ms_per_delivery", float(result["cpu_s_per_1000"]))


def isolation(
    c: Cluster, acc: Accounts, pool: list[sim.SimEvent], sizes: Sizes, out: Results
) -> None:
    """Healthy throughput by endpoint: the same events to the healthy accounts, first with their
    dead second endpoints disabled, then enabled (10 % of the endpoints never answer; each
    shares its account with a healthy endpoint, which must keep its throughput)."""
    platform = Platform.create(c.settings)
    try:
        for label, enabled in (("baseline", False), ("with_dead", True)):
            with platform.db.write() as conn:
                for account_id, endpoint_id in acc.dead:
                    endpoint_store.update(
                        conn, account_id, endpoint_id, enabled=enabled, now=platform.clock.now()
                    )
            total = sizes.isolation_events
            load.prefill(platform.publisher, pool, acc.healthy, total)
            start = sink_count(c.sink_port)
            c.start_worker()
            # Every event reaches its account's healthy primary endpoint once.
            got = wait_for_sink(c.sink_port, start + total, sizes.drain_timeout)
            c.stop("worker")
            win = window(c.sink_port, start)
            out.put(f"isolation_{label}", rate_of(win, got - start))
    finally:
        platform.db.dispose()
    base = out.values["isolation_baseline"]
    out.put("isolation_ratio", out.values["isolation_with_dead"] / base if base else 0.0)
    # Dead-endpoint jobs left pending (retrying) must not leak into later phases.
    c.fail_pending()


def throttle(
    c: Cluster, acc: Accounts, pool: list[sim.SimEvent], sizes: Sizes, out: Results
) -> None:
    """One endpoint limited to ``throttle_rate``/s (the ``/a/0`` account's), backlogged with
    twice what it may receive in ``throttle_seconds``, while the healthy accounts' endpoints
    drain ``throttle_others`` events, with ``throttle_processes`` worker processes sharing the
    database. Measured at the sink: the limited endpoint's arrivals in the ``throttle_seconds``
    from its first one (and its busiest second), the others' throughput against a run alone."""
    from callhook.core.throttle import Caps
    from callhook.store import endpoint_health
    from callhook.store import endpoints as endpoint_store

    limited = acc.load[0]
    platform = Platform.create(c.settings)
    try:
        # The others alone: the baseline.
        load.prefill(platform.publisher, pool, acc.healthy, sizes.throttle_others)
        start = sink_count(c.sink_port)
        c.start_worker(sizes.throttle_processes)
        got = wait_for_sink(c.sink_port, start + sizes.throttle_others, sizes.drain_timeout)
        c.stop("worker")
        out.put("throttle_others_alone", rate_of(window(c.sink_port, start), got - start))

        with platform.db.write() as conn:
            endpoint = endpoint_store.primary(conn, limited)
            assert endpoint is not None
            endpoint_health.set_limits(
                conn,
                endpoint.id,
                limited,
                rate_limit=sizes.throttle_rate,
                max_in_flight=None,
                caps=Caps(),
            )
        backlog = int(sizes.throttle_rate * sizes.throttle_seconds * 2)
        load.prefill(platform.publisher, pool, [limited], backlog)
        load.prefill(platform.publisher, pool, acc.healthy, sizes.throttle_others)
        start = sink_count(c.sink_port)
        t0 = time.time()
        c.start_worker(sizes.throttle_processes)
        # Long enough for the limited endpoint's whole window and the others' drain.
        deadline = time.monotonic() + sizes.throttle_seconds + 5 + sizes.drain_timeout
        while time.monotonic() < deadline:
            times = _arrivals(c.sink_port, start, b"/a/")
            others = window(c.sink_port, start)["by_prefix"]
            assert isinstance(others, dict)
            if (
                times
                and time.time() > times[0] + sizes.throttle_seconds + 1
                and others.get("/i/", 0) >= sizes.throttle_others
            ):
                break
            time.sleep(0.5)
        c.stop("worker")
        times = _arrivals(c.sink_port, start, b"/a/")
        other_times = _arrivals(c.sink_port, start, b"/i/")
    finally:
        with platform.db.write() as conn:  # later phases run unthrottled
            endpoint = endpoint_store.primary(conn, limited)
            assert endpoint is not None
            endpoint_health.set_limits(
                conn, endpoint.id, limited, rate_limit=None, max_in_flight=None, caps=Caps()
            )
        platform.db.dispose()
    first = times[0] if times else t0
    in_window = [t for t in times if t < first + sizes.throttle_seconds]
    out.put("throttle_rate", len(in_window) / sizes.throttle_seconds)
    out.put("throttle_peak_second", float(_busiest_second(in_window)))
    out.put("throttle_limit", sizes.throttle_rate)
    out.put("throttle_seconds", sizes.throttle_seconds)
    if len(other_times) > 1:
        out.put(
            "throttle_others_beside",
            (len(other_times) - 1) / (other_times[-1] - other_times[0]),
        )
    alone = out.values.get("throttle_others_alone", 0.0)
    beside = out.values.get("throttle_others_beside", 0.0)
    out.put("throttle_others_kept", beside / alone if alone else 0.0)
    out.notes.append(
        f"throttle: {len(in_window)} deliveries to the endpoint limited to "
        f"{sizes.throttle_rate:g}/s in the {sizes.throttle_seconds:g} s from its first, "
        f"{sizes.throttle_processes} worker processes; the bound is rate × (T + 1) = "
        f"{sizes.throttle_rate * (sizes.throttle_seconds + 1):g} (docs/decisions.md)"
    )
    c.fail_pending()  # the limited endpoint's backlog must not leak into later phases


def _arrivals(port: int, start: int, prefix: bytes) -> list[float]:
    got = sink_get(port, f"/_times?from={start}&prefix={prefix.decode()}")["times"]
    assert isinstance(got, list)
    return [float(t) for t in got]


def _busiest_second(times: Sequence[float]) -> int:
    """The most arrivals in any one-second window (a sliding window over sorted times)."""
    best, lo = 0, 0
    ordered = sorted(times)
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _healthy_share(
    pool: Sequence[sim.SimEvent], accounts: Sequence[str], healthy: Sequence[str], total: int
) -> int:
    wanted = set(healthy)
    source = load.requests(pool, accounts)
    return sum(1 for _ in range(total) if next(source)["account_id"] in wanted)


#: The fairness phase: accounts × endpoints answering after 1.9 s, each with this backlog.
SLOW_ACCOUNTS, SLOW_ENDPOINTS, SLOW_BACKLOG = 3, 20, 25


def fairness(
    c: Cluster, acc: Accounts, pool: list[sim.SimEvent], sizes: Sizes, out: Results
) -> None:
    """A healthy endpoint's latency, idle and while 60 slow-but-answering endpoints (1.9 s, no
    breaker trips) each have a backlog of 25 (issue 13): the claim takes every endpoint's oldest
    due delivery in turn, so the healthy one's event does not wait for 1,500 older ones."""
    platform = Platform.create(c.settings)
    try:
        slow = c.add_slow_endpoints(platform, SLOW_ACCOUNTS, SLOW_ENDPOINTS)
        healthy = load.requests(pool, acc.healthy[:1])
        c.start_worker()
        _latency_of_one(c, platform, next(healthy))  # the worker is up (its start is not timed)
        idle = [_latency_of_one(c, platform, next(healthy)) for _ in range(3)]
        # Each event of a slow account fans out to its 20 endpoints.
        load.prefill(platform.publisher, pool, slow, SLOW_ACCOUNTS * SLOW_BACKLOG)
        # Before any slow endpoint has answered once, nothing tells them from healthy ones:
        # every lane may be waiting on one (first contact, at most one slow answer's time).
        time.sleep(0.5)
        first = _latency_of_one(c, platform, next(healthy))
        time.sleep(2.0)  # every slow endpoint has answered (slowly) at least once
        busy = [_latency_of_one(c, platform, next(healthy)) for _ in range(3)]
        c.stop("worker")
    finally:
        platform.db.dispose()
    out.notes.append(
        f"fairness samples (ms): idle {idle}; with backlogs, first contact {first}, then {busy}"
    )
    out.put("fairness_idle_ms", max(idle))
    out.put("fairness_first_contact_ms", first)
    out.put("fairness_backlog_ms", max(busy))
    c.fail_pending()


def _latency_of_one(c: Cluster, platform: Platform, request: dict[str, Any]) -> float:
    """Publish one event for a healthy endpoint; its latency at the sink, in ms."""
    start = sink_count(c.sink_port)
    platform.publisher.publish(
        [
            PublishRequest(
                request["event"], request["pbx_id"], request["account_id"], request["data"]
            )
        ]
    )
    wait_for_sink(c.sink_port, start + 1, 30.0)
    latencies = window(c.sink_port, start)["latencies_ms"]
    assert isinstance(latencies, list)
    assert latencies, "the healthy event never arrived"
    return float(latencies[0])


def live(c: Cluster, acc: Accounts, pool: list[sim.SimEvent], sizes: Sizes, out: Results) -> None:
    """The API (``serve --no-worker``) and a ``callhook worker``, each in its own process (the
    worker woken by the publishing process): publish flat out (batches of 100), then paced
    loads for latency."""
    c.start_api(worker=False)
    c.start_worker()
    wal = WalSampler(c).__enter__()
    try:
        start = sink_count(c.sink_port)
        n = int(sizes.live_seconds * 12_000)
        bodies = load.bodies(pool, acc.load, n, 100)
        result = asyncio.run(
            load.ingest(c.api_port, acc.token, bodies, concurrency=2, seconds=sizes.live_seconds)
        )
        mid = sink_count(c.sink_port)
        out.put("live_ingest", result.rate)
        out.put("throughput_live", (mid - start) / max(result.seconds, 1e-9))
        wait_for_sink(c.sink_port, start + result.events, sizes.drain_timeout)
        # Calls interleaved as a PBX carrying many at once publishes them; then once with each
        # call's events back to back, where per-call order makes each wait for the delivery of
        # the one before it (docs/performance.md, "Live latency and per-call order").
        calls_in_turns = load.live_pool(sizes.pool_calls, seed=7, calls_per_second=100.0)
        runs = [(rate, calls_in_turns, f"{rate}") for rate in sizes.loads]
        runs.append((1_000, pool, "burst_1000"))
        for rate, events, key in runs:
            per_tick = max(rate // 100, 1)
            interval = per_tick / rate
            ticks = int(sizes.latency_seconds / interval)
            payloads = load.bodies(events, acc.load, ticks * per_tick, per_tick)
            begin = sink_count(c.sink_port)
            sent = asyncio.run(load.paced(c.api_port, acc.token, payloads, interval))
            wait_for_sink(c.sink_port, begin + sent.events, 30.0)
            latencies = window(c.sink_port, begin)["latencies_ms"]
            assert isinstance(latencies, list)
            out.put(f"offered_{key}", sent.rate)
            for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"), (1.0, "max")):
                out.put(f"lat_{key}_{name}", quantile(latencies, q))
    finally:
        wal.__exit__()
        c.stop("worker")
        c.stop("serve")
    out.put("wal_peak_mb_live", wal.peak / 2**20)


# --- scale-out: SQLite and PostgreSQL, 1 and 2 worker processes --------------------------------
#: The PostgreSQL server of the scale-out phase (each run gets a fresh schema there, dropped after).
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCALE_BACKENDS = ("sqlite", "postgresql")


def scale_out(
    c: Cluster, acc: Accounts, pool: list[sim.SimEvent], sizes: Sizes, out: Results
) -> None:
    """``callhook worker --processes K`` draining the same pre-filled queue, per backend and K.

    Every (backend, K) run starts from a fresh database (a new SQLite file; a new PostgreSQL
    schema), migrated with ``callhook migrate``, with 10 accounts pointing at the shared sink and
    ``scale_events`` events published in-process in batches of 100. Deliveries/s are measured at
    the sink, first to last arrival. An unreachable PostgreSQL server fails the phase.
    """
    master_key = c.run("keys", "generate").strip()
    for backend in SCALE_BACKENDS:
        prefilled = 0
        prefill_seconds = 0.0
        for k in sizes.scale_processes:
            n, seconds = _scale_run(c, backend, k, master_key, pool, sizes, out)
            prefilled += n
            prefill_seconds += seconds
        out.put(f"scale_prefill_{backend}", prefilled / prefill_seconds if prefill_seconds else 0)


def _postgres_schema() -> tuple[str, str]:
    """Create a fresh schema on the benchmark's server; its name and a URL that uses it."""
    import psycopg

    schema = f"bench_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"scale-out phase: PostgreSQL at {POSTGRES_URL} is unreachable"
            " (start it, or point BENCH_POSTGRES_URL at one)"
        ) from exc
    sep = "&" if "?" in POSTGRES_URL else "?"
    return schema, f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}')}"


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _scale_run(
    c: Cluster,
    backend: str,
    k: int,
    master_key: str,
    pool: list[sim.SimEvent],
    sizes: Sizes,
    out: Results,
) -> tuple[int, float]:
    """One drain; returns (events pre-filled, seconds the pre-fill took)."""
    schema: str | None = None
    if backend == "postgresql":
        schema, url = _postgres_schema()
        sub = Cluster(c.workdir, sink_port=c.sink_port, database_url=url, master_key=master_key)
    else:
        sub = Cluster(c.workdir, sink_port=c.sink_port, db_name=f"scale-out-{k}.db")
    try:
        sub.run("migrate")
        accounts = sub.prepare(load=10, healthy=0, dead=0, seed=7)
        platform = Platform.create(sub.settings)
        try:
            t0 = time.monotonic()
            load.prefill(platform.publisher, pool, accounts.load, sizes.scale_events, batch=100)
            prefill_seconds = time.monotonic() - t0
        finally:
            platform.db.dispose()
        sink_pid = c.children["sink"].pid
        start = sink_count(c.sink_port)
        sink_cpu = proc_cpu_seconds(sink_pid)
        server_cpu = postgres_cpu_seconds() if backend == "postgresql" else 0.0
        workers_cpu = _children_cpu_seconds()
        sub.start_worker(processes=k)
        got = wait_for_sink(c.sink_port, start + sizes.scale_events, sizes.drain_timeout)
        win = window(c.sink_port, start)
        sink_cpu = proc_cpu_seconds(sink_pid) - sink_cpu
        if backend == "postgresql":
            server_cpu = postgres_cpu_seconds() - server_cpu
        # A supervisor reaps its children before exiting: their CPU counts once it is waited for.
        sub.stop("worker", timeout=45.0)
        workers_cpu = _children_cpu_seconds() - workers_cpu
    finally:
        sub.stop_all()
        if schema is not None:
            _drop_schema(schema)
    delivered = got - start
    rate = rate_of(win)
    out.put(f"scale_{backend}_{k}", rate)
    out.put(f"scale_cpu_ms_{backend}_{k}", workers_cpu / max(delivered, 1) * 1000)
    drain = (delivered - 1) / rate if rate else math.nan
    out.notes.append(
        f"Scale-out, {backend}, {k} worker process{'es' if k > 1 else ''}: "
        f"{delivered:,} of {sizes.scale_events:,} delivered in {drain:.1f} s "
        f"(first to last arrival), {win['duplicates']} duplicates at the sink in total; "
        f"workers {workers_cpu:.1f} CPU s incl. start-up "
        f"({workers_cpu / max(delivered, 1) * 1000:.3f} per 1,000), "
        f"sink {sink_cpu / drain if drain else math.nan:.2f} cores while draining"
        + (
            f"; the PostgreSQL server {server_cpu:.1f} CPU s from the workers' start "
            f"({server_cpu / max(delivered, 1) * 1000:.3f} per 1,000)"
            if backend == "postgresql"
            else ""
        )
    )
    return sizes.scale_events, prefill_seconds
