"""``python -m bench.ingest``: the ingest path alone, against a real ``callhook serve --no-worker``.

Two loads, each for ``--seconds``: single-event publishes with ``--concurrency`` requests in
flight (default 32, the PBX case), then batches of 100 with ``--batch-concurrency`` in flight.
Reported per load: events/s, requests/s, latency p50/p99 (ms, request sent to answer read), the
server's CPU ms per request (user + system of the serve process and its children, from /proc)
and the load generator's own (aiohttp; it shares the machine's cores with the server).
``--profile`` attaches ``py-spy record`` to the server during the single-event load and writes
its raw stacks (``ingest-profile.txt``, collapsed format) to ``$BENCH_PROFILE_DIR`` or the work
directory; ``$BENCH_PYSPY_FLAGS`` adds flags (``--gil``: only the thread holding the GIL, i.e.
the CPU view; ``--idle``: waits too). ``--processes`` passes ``serve --processes N``.
``--database postgresql`` runs against a fresh schema of the local PostgreSQL.

Nothing is recorded in docs/performance.md automatically: the table is printed, with the command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import load
from bench.cluster import Cluster, proc_cpu_seconds
from bench.phases import quantile


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live children (``serve --processes N`` forks workers)."""
    total = proc_cpu_seconds(pid)
    for child in _children(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += proc_cpu_seconds(child)
    return total


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


@dataclass(frozen=True)
class Run:
    label: str
    events: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_s: float
    client_cpu_s: float

    def row(self) -> str:
        rate = self.events / self.seconds
        p50 = quantile(self.latencies_ms, 0.5)
        p99 = quantile(self.latencies_ms, 0.99)
        cpu = 1000 * self.server_cpu_s / max(1, self.requests)
        client = 1000 * self.client_cpu_s / max(1, self.requests)
        return (
            f"| {self.label} | {rate:,.0f} | {self.requests / self.seconds:,.0f} | {p50:.1f} | "
            f"{p99:.1f} | {cpu:.3f} | {client:.3f} | {self.errors} |"
        )


async def _drive(
    port: int, token: str, bodies: list[load.Body], concurrency: int, seconds: float
) -> tuple[int, int, int, float, list[float]]:
    url = f"http://127.0.0.1:{port}/internal/v1/events"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    source = iter(bodies)
    latencies: list[float] = []
    events = requests = errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def lane() -> None:
            nonlocal events, requests, errors
            for body, n in source:
                if time.monotonic() >= deadline:
                    return
                t = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        ok = response.status == 202
                except aiohttp.ClientError:
                    ok = False
                latencies.append(1000 * (time.perf_counter() - t))
                requests += 1
                if ok:
                    events += n
                else:
                    errors += 1

        t0 = time.monotonic()
        deadline = t0 + seconds
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        elapsed = time.monotonic() - t0
    return events, requests, errors, elapsed, latencies


def measure(
    c: Cluster,
    pid: int,
    token: str,
    label: str,
    bodies: list[load.Body],
    concurrency: int,
    seconds: float,
) -> Run:
    cpu0 = _tree_cpu_seconds(pid)
    own0 = time.process_time()
    events, requests, errors, elapsed, lat = asyncio.run(
        _drive(c.api_port, token, bodies, concurrency, seconds)
    )
    cpu = _tree_cpu_seconds(pid) - cpu0
    return Run(label, events, requests, errors, elapsed, lat, cpu, time.process_time() - own0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-concurrency", type=int, default=4)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--profile", action="store_true", help="py-spy the single-event load")
    parser.add_argument("--no-batches", action="store_true")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument(
        "--server-src",
        type=Path,
        help="serve the callhook package from this src/ directory instead (e.g. an exported "
        "older commit: `git archive main src | tar -x -C /tmp/base`), for before/after runs",
    )
    args = parser.parse_args(argv)
    command = "python -m bench.ingest " + " ".join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="callhook-ingest-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        cluster = Cluster(workdir)
        if args.server_src is not None:
            plain_env = cluster.env

            def env() -> dict[str, str]:
                out = plain_env()
                out["PYTHONPATH"] = f"{args.server_src.resolve()}:{out['PYTHONPATH']}"
                return out

            cluster.env = env  # type: ignore[method-assign]
        drop = None
        if args.database == "postgresql":
            from bench.phases import _drop_schema, _postgres_schema

            drop, cluster.database_url = _postgres_schema()
            cluster.master_key = cluster.run("keys", "generate").strip()
        try:
            rows = _run(cluster, args)
        finally:
            cluster.stop_all()
            if drop is not None:
                _drop_schema(drop)
    print(f"\n`{command.strip()}`\n")
    print(
        "| load | events/s | requests/s | p50 ms | p99 ms | server CPU ms/request "
        "| client CPU ms/request | errors |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in rows:
        print(run.row())
    return 0


def _run(cluster: Cluster, args: argparse.Namespace) -> list[Run]:
    cluster.sink_port = 9  # never delivered to: no worker runs
    accounts = cluster.prepare(load=10, healthy=0, dead=0, seed=6)
    pool = load.event_pool(200, seed=6)
    extra = ["--processes", str(args.processes)] if args.processes > 1 else []
    proc = cluster.start("serve", "serve", "--no-worker", "--no-migrate", *extra)
    _wait_listening(cluster, proc)
    singles = load.bodies(pool, accounts.load, 200_000, 1)
    # Warm up (connections, imports, the token's last-use write).
    measure(cluster, proc.pid, accounts.token, "warm-up", singles[:2000], 8, 1.0)
    spy = None
    if args.profile:
        spy = _start_py_spy(proc.pid, cluster.workdir, args.seconds)
    rows = [
        measure(
            cluster,
            proc.pid,
            accounts.token,
            f"single events, {args.concurrency} in flight",
            singles,
            args.concurrency,
            args.seconds,
        )
    ]
    if spy is not None:
        spy.wait(timeout=args.seconds + 60)
    if not args.no_batches:
        batched = load.bodies(pool, accounts.load, 400_000, 100)
        rows.append(
            measure(
                cluster,
                proc.pid,
                accounts.token,
                f"batches of 100, {args.batch_concurrency} in flight",
                batched,
                args.batch_concurrency,
                args.seconds,
            )
        )
    return rows


def _wait_listening(cluster: Cluster, proc: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"callhook serve exited: see {cluster.workdir / 'serve.log'}")
        try:
            with socket.create_connection(("127.0.0.1", cluster.api_port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("callhook serve did not start listening")


def _start_py_spy(pid: int, workdir: Path, seconds: float) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(os.environ.get("BENCH_PROFILE_DIR", str(workdir)))
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out / "ingest-profile.txt"),
            "--subprocesses",
            "--nonblocking",
            *os.environ.get("BENCH_PYSPY_FLAGS", "").split(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    sys.exit(main())
