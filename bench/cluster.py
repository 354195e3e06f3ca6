"""The processes under test: the sink, ``callhook serve`` / ``callhook worker``, on a temp SQLite.

Everything listens on 127.0.0.1 and every child is stopped (SIGINT, then SIGKILL) by the
``Cluster`` that started it. A ``Cluster`` with a ``database_url`` (and ``master_key``) runs its
processes against that database instead, e.g. a PostgreSQL schema for the scale-out phase.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from callhook.events import SUBSCRIBABLE_EVENTS
from callhook.platform import Platform
from callhook.settings import Settings
from callhook.store import accounts as account_store
from callhook.store import endpoints as endpoint_store
from callhook.store import integrations as integration_store
from callhook.store import tokens as token_store
from callhook.store.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CALLHOOK = os.environ.get("BENCH_CALLHOOK", str(BIN / "callhook"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Accounts:
    load: list[str]  # accounts delivering to /a/<i>
    healthy: list[str]  # isolation: accounts whose primary endpoint is healthy, /i/<i>
    #: isolation: (account, endpoint) of endpoints that never answer, /hang/<i>, each a second
    #: endpoint of one of the first healthy accounts, created disabled
    dead: list[tuple[str, str]]
    token: str  # platform token, scope events.write


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """User + system CPU seconds of one live thread (Linux /proc); a process's main thread,
    which runs a ``callhook worker``'s event loop, has ``tid == pid``."""
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """User + system CPU seconds of the local PostgreSQL server's processes (every live
    process named ``postgres``, with what they reaped: the postmaster's children that ended
    count through it once reaped, so read it while the connections measured are open), from
    /proc; 0.0 where none is visible."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        if text[text.index("(") + 1 : text.rindex(")")] != "postgres":
            continue
        fields = text.rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of a live process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Cluster:
    workdir: Path
    sink_port: int = 0
    api_port: int = field(default_factory=free_port)
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    groups: set[int] = field(default_factory=set)  # pids started as process-group leaders
    database_url: str | None = None  # default: SQLite at ``db_path``
    master_key: str | None = None  # required by PostgreSQL
    db_name: str = "bench.db"

    @property
    def db_path(self) -> Path:
        return self.workdir / self.db_name

    @property
    def settings(self) -> Settings:
        return Settings(
            database_url=self.database_url or f"sqlite:///{self.db_path}",
            master_key=self.master_key,
            allow_unsafe_targets=True,
            log_level="WARNING",
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLHOOK_")}
        env.update(
            CALLHOOK_DATABASE_URL=self.settings.database_url,
            CALLHOOK_ALLOW_UNSAFE_TARGETS="1",
            CALLHOOK_LOG_LEVEL="WARNING",
            CALLHOOK_PORT=str(self.api_port),
            CALLHOOK_HOST="127.0.0.1",
            PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        )
        if self.master_key is not None:
            env["CALLHOOK_MASTER_KEY"] = self.master_key
        return env

    # --- processes ---------------------------------------------------------------------------
    def start_sink(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", "--port", "0"],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=self.env(),
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "READY":
            proc.kill()
            raise RuntimeError("the sink did not start")
        self.sink_port = int(line[1])
        self.children["sink"] = proc

    def start(self, name: str, *args: str, group: bool = False) -> subprocess.Popen[bytes]:
        """Start ``callhook *args``; with ``group``, in its own process group (a supervisor whose
        children must die with it if it has to be killed)."""
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [CALLHOOK, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=self.env(),
            start_new_session=group,
        )
        if group:
            self.groups.add(proc.pid)
        self.children[name] = proc
        return proc

    def start_api(self, *, worker: bool, timeout: float = 30.0) -> subprocess.Popen[bytes]:
        flag = "--worker" if worker else "--no-worker"
        proc = self.start("serve", "serve", flag, "--no-migrate")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"callhook serve exited: see {self.workdir / 'serve.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.api_port), timeout=0.2):
                    return proc
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("callhook serve did not start listening")

    def start_worker(self, processes: int | None = None) -> subprocess.Popen[bytes]:
        if processes is None:
            return self.start("worker", "worker")
        return self.start("worker", "worker", "--processes", str(processes), group=True)

    def run(self, *args: str, timeout: float = 120.0) -> str:
        """Run ``callhook *args`` to completion with this cluster's environment; its stdout."""
        proc = subprocess.run(
            [CALLHOOK, *args],
            capture_output=True,
            cwd=self.workdir,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"callhook {' '.join(args)} exited {proc.returncode}: "
                + (proc.stdout + proc.stderr).decode(errors="replace")[-2000:]
            )
        return proc.stdout.decode()

    def stop(self, name: str, timeout: float = 15.0) -> None:
        proc = self.children.pop(name, None)
        if proc is None:
            return
        group = proc.pid in self.groups
        self.groups.discard(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # a clean drain, like Ctrl-C
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if group:
            # Whatever the supervisor left behind (it was killed, or a child hung) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.children):
            self.stop(name)

    # --- the database ------------------------------------------------------------------------
    def prepare(self, *, load: int, healthy: int, dead: int, seed: int) -> Accounts:
        """Migrate, create accounts whose primary endpoints point at the sink (and ``dead``
        second endpoints that never answer), and a platform token."""
        platform = Platform.create(self.settings, rng=random.Random(seed))
        try:
            upgrade(platform.db)
            now = platform.clock.now()
            base = f"http://127.0.0.1:{self.sink_port}"
            made: dict[str, list[str]] = {"a": [], "i": []}
            dead_endpoints: list[tuple[str, str]] = []
            with platform.db.write() as conn:
                for prefix, count in (("a", load), ("i", healthy)):
                    for n in range(count):
                        acc = account_store.create(
                            conn, name=f"bench {prefix}{n}", now=now, rng=platform.rng
                        )
                        integration_store.ensure(
                            conn, acc.id, now=now, box=platform.box, rng=platform.rng
                        )
                        integration_store.set_url(
                            conn,
                            acc.id,
                            f"{base}/{prefix}/{n}",
                            now=now,
                            box=platform.box,
                            rng=platform.rng,
                        )
                        integration_store.subscribe(conn, acc.id, SUBSCRIBABLE_EVENTS, now=now)
                        integration_store.set_enabled(conn, acc.id, True, now=now)
                        made[prefix].append(acc.id)
                for n in range(dead):
                    owner = made["i"][n]
                    endpoint = endpoint_store.create(
                        conn,
                        owner,
                        url=f"{base}/hang/{n}",
                        subscribed_events=None,
                        enabled=False,
                        limit=platform.settings.max_endpoints_per_account,
                        allow_unsafe=True,
                        now=now,
                        box=platform.box,
                        rng=platform.rng,
                    )
                    dead_endpoints.append((owner, endpoint.id))
                _, token = token_store.create(
                    conn, account_id=None, scopes=["events.write"], now=now, rng=platform.rng
                )
        finally:
            platform.db.dispose()
        return Accounts(load=made["a"], healthy=made["i"], dead=dead_endpoints, token=token)

    def add_slow_endpoints(self, platform: Platform, accounts: int, endpoints: int) -> list[str]:
        """``accounts`` new accounts with ``endpoints`` endpoints each (the primary one
        included), every one at ``/slow/…`` of the sink and taking every event; their ids."""
        base = f"http://127.0.0.1:{self.sink_port}"
        made = []
        with platform.db.write() as conn:
            now = platform.clock.now()
            for a in range(accounts):
                acc = account_store.create(conn, name=f"bench slow{a}", now=now, rng=platform.rng)
                integration_store.set_url(
                    conn, acc.id, f"{base}/slow/{a}/0", now=now, box=platform.box, rng=platform.rng
                )
                integration_store.subscribe(conn, acc.id, SUBSCRIBABLE_EVENTS, now=now)
                for e in range(1, endpoints):
                    endpoint_store.create(
                        conn,
                        acc.id,
                        url=f"{base}/slow/{a}/{e}",
                        subscribed_events=None,
                        limit=endpoints,
                        allow_unsafe=True,
                        now=now,
                        box=platform.box,
                        rng=platform.rng,
                    )
                made.append(acc.id)
        return made

    def checkpoint(self) -> int:
        """Fold the WAL into the database file; return the database's size in bytes."""
        import sqlite3

        with sqlite3.connect(self.db_path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = self.db_path.stat().st_size
        wal = self.db_path.with_name(self.db_path.name + "-wal")
        return size + (wal.stat().st_size if wal.exists() else 0)

    def fail_pending(self) -> None:
        """Mark every pending delivery failed (between phases, with no worker running)."""
        import sqlite3

        with sqlite3.connect(self.db_path) as conn:
            conn.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'pending'")


def sink_get(port: int, path: str) -> dict[str, object]:
    """GET a sink control endpoint (tiny blocking HTTP/1.0 client: no client library needed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: sink\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(
                b":"
            )[1]
        )
        while len(body) < length:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            body += chunk
    result: dict[str, object] = orjson.loads(body)
    return result
