"""Long-running processes: ``serve``, ``worker``, ``migrate``.

``callhook worker --processes N`` runs N worker processes (one event loop each) under a small
supervisor: it restarts a child that dies, and on SIGTERM/SIGINT tells every child to stop (each
finishes its in-flight attempts and releases the rest of its leases at once) and exits 0 when all
have. Any number of such supervisors and ``serve --no-worker`` processes can share one database.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from callhook.cli.common import (
    DatabaseOption,
    console,
    display_url,
    fail,
    require_master_key,
    set_up_database,
    settings_from_env,
)

if TYPE_CHECKING:
    from callhook.platform import Platform
    from callhook.settings import Settings
    from callhook.store.db import Database


def migrate(database_url: str | None = DatabaseOption) -> None:
    """Create or upgrade the database schema."""
    from callhook.errors import CallhookError
    from callhook.store.db import Database
    from callhook.store.migrate import migrate_to_head

    settings = settings_from_env(database_url=database_url)
    try:
        db = Database(settings.database_url)
        try:
            before, after = migrate_to_head(db)
        finally:
            db.dispose()
    except CallhookError as exc:
        raise fail(exc.message, code=1) from exc
    console.print(migrate_summary(before, after, display_url(settings.database_url)))


def migrate_summary(before: str | None, after: str | None, where: str) -> str:
    """What ``migrate`` did, in words: created, upgraded, or nothing to do."""
    if before is None:
        return f"Created the database schema (revision {after}) in {where}"
    if before != after:
        return f"Upgraded the database schema from revision {before} to {after} in {where}"
    return f"The database schema is up to date (revision {after}) in {where}"


#: Container allocations (net) between young-generation collections; CPython's default is 700.
GC_YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Call once start-up is done: keep the garbage collector off the long-lived heap.

    ``gc.freeze`` moves everything allocated so far (modules, SQLAlchemy metadata, the app) out
    of the collector's reach, and a larger young-generation threshold makes collections rarer.
    Cycles are still collected. Measured on a draining worker (40,000 deliveries): 22 full
    collections took 1.6 s and all collections 2.5 s — a sixth of the run — with the defaults;
    one young collection (1 ms) after this.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def run_server(
    settings: Settings,
    *,
    run_worker: bool,
    platform: Platform | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve the API (and the worker) until SIGTERM/SIGINT, then drain and exit 0. If the
    worker stops by itself (``WorkerFailed``), drain and exit 1 saying why. With ``sock``, on
    that listening socket (shared by ``serve --processes N``) instead of binding
    ``settings.host``/``settings.port``."""
    import uvicorn

    from callhook.api.app import create_app
    from callhook.api.edge import server_config

    failures: list[BaseException] = []
    server: uvicorn.Server | None = None

    def worker_failed(exc: BaseException) -> None:
        failures.append(exc)
        if server is not None:
            server.should_exit = True  # drain and stop: nothing here would deliver any more

    app = create_app(
        settings, platform=platform, run_worker=run_worker, on_worker_failure=worker_failed
    )
    config = server_config(
        app,
        settings,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    # uvicorn drains on SIGTERM/SIGINT and then re-raises the signal with the previous handler
    # restored; a no-op handler there makes a clean drain exit 0, as process managers expect.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    settle_heap()
    server = uvicorn.Server(config)
    try:
        server.run(sockets=None if sock is None else [sock])
    finally:
        # Closes the pools and leaves a SQLite file's write-ahead log folded and empty.
        app.state.platform.db.dispose()
    if failures:
        raise fail(str(failures[0]), code=1)


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8000).")] = None,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run a delivery worker too.")
    ] = True,
    auto_migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations at start.")
    ] = True,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            "-p",
            min=1,
            help="API processes sharing the port, one event loop each (default 1; one per core "
            "for the most publishes per second). The worker runs in the first.",
        ),
    ] = 1,
    database_url: str | None = DatabaseOption,
) -> None:
    """The API and dashboard, with a delivery worker.

    One process by default; --no-worker leaves delivery to `callhook worker` processes.
    """
    from callhook import logs
    from callhook.platform import Platform
    from callhook.store.db import Database

    settings = settings_from_env(database_url=database_url, host=host, port=port)
    logs.configure(settings.log_level, json=settings.log_json)
    if auto_migrate:
        from callhook.store.migrate import upgrade

        db = Database(settings.database_url)
        require_master_key(settings, db)  # before migrating with a key that cannot serve it
        upgrade(db)
    else:  # every request would fail on a database without the tables
        db = set_up_database(settings.database_url)
        require_master_key(settings, db)
    delivering = "and a delivery worker" if worker else "without a worker (--no-worker)"
    plural = f" in {processes} processes" if processes > 1 else ""
    console.print(
        f"Callhook API and dashboard on http://{settings.host}:{settings.port}{plural} "
        f"{delivering}; database {display_url(settings.database_url)}; metrics on /metrics "
        "(per process). Ctrl-C or SIGTERM drains and stops.",
        highlight=False,
        soft_wrap=True,
    )
    if processes == 1:
        # On the database opened above: a second one opened and closed in the same process
        # beside it was seen to corrupt a SQLite file other processes were writing (the bench's
        # smoke run, with the worker's set-up check; docs/decisions.md).
        run_server(settings, run_worker=worker, platform=Platform.create(settings, db=db))
        return
    db.dispose()
    raise typer.Exit(serve_processes(settings, processes, run_worker=worker))


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (IPv4 or IPv6 by the host), inheritable by children."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_api_process(settings: Settings, run_worker: bool, sock: socket.socket) -> None:
    """One of ``serve --processes N``: the API on the shared socket until SIGTERM/SIGINT."""
    from callhook import logs

    logs.configure(settings.log_level, json=settings.log_json)
    run_server(settings, run_worker=run_worker, sock=sock)


def serve_processes(settings: Settings, processes: int, *, run_worker: bool) -> int:
    """``serve --processes N``: N API processes accepting on one listening socket.

    The socket is bound here, once, and handed to each child (as uvicorn's ``--workers`` does;
    whichever process is free accepts the next connection). Children are supervised like
    ``worker --processes`` (restarted when they die, drained on SIGTERM/SIGINT). Each has its
    own group commit and pools; on SQLite they take turns writing (``Database.writer_slot``).
    The delivery worker, when asked for, runs in the first process only.
    """
    sock = listening_socket(settings.host, settings.port)
    try:
        return supervise(
            processes,
            target=run_api_process,
            args=lambda i: (settings, run_worker and i == 0, sock),
        )
    finally:
        sock.close()


async def run_worker_until_signalled(platform: Platform) -> None:
    """Run one worker until SIGTERM/SIGINT: stop claiming, finish in-flight, release the rest."""
    import asyncio

    from callhook.delivery.worker import Worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker.for_platform(platform)
    await worker.run(stop)


def run_worker_process(settings: Settings, db: Database | None = None) -> None:
    """One worker process (on ``db`` when given, already open): one event loop, until
    SIGTERM/SIGINT (exit 0 once drained), or until the worker stops by itself
    (``WorkerFailed``: exit 1, the reason on stderr)."""
    import asyncio

    from callhook import logs
    from callhook.errors import WorkerFailed
    from callhook.platform import Platform

    logs.configure(settings.log_level, json=settings.log_json)
    platform = Platform.create(settings, db=db)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    settle_heap()
    try:
        asyncio.run(run_worker_until_signalled(platform))
    except WorkerFailed as exc:
        # Logged with its traceback where it happened; a supervisor restarts the process.
        # SystemExit, not typer.Exit: this is also a multiprocessing child's whole life.
        raise SystemExit(fail(exc.message, code=1).exit_code) from exc
    finally:
        platform.db.dispose()


#: Seconds the supervisor waits for children to drain after a stop signal before killing them.
DRAIN_TIMEOUT = 30.0
#: A child that dies within this many seconds of starting is restarted after a pause.
CRASH_LOOP_SECONDS = 5.0


def supervise(
    processes: int,
    *,
    target: Callable[..., None],
    args: Callable[[int], tuple[Any, ...]],
) -> int:
    """Run ``processes`` children (``target(*args(i))`` for child ``i``) until SIGTERM/SIGINT;
    restart any that die."""
    import multiprocessing

    log = logging.getLogger("callhook.supervisor")
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def start(i: int) -> Any:
        child = ctx.Process(target=target, args=args(i), daemon=False)
        child.start()
        return child

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    children = [start(i) for i in range(processes)]
    started = [time.monotonic()] * processes
    while not stopping:
        time.sleep(0.2)
        for i, child in enumerate(children):
            if child.is_alive() or stopping:
                continue
            log.warning("child process exited; restarting", extra={"exitcode": child.exitcode})
            if time.monotonic() - started[i] < CRASH_LOOP_SECONDS:
                time.sleep(1.0)  # do not spin on a child that cannot start
            children[i], started[i] = start(i), time.monotonic()
    for child in children:
        if child.is_alive() and child.pid is not None:
            # SIGTERM: the child stops claiming, finishes in-flight attempts, releases the rest.
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join()
    return 0


def worker(
    processes: Annotated[
        int,
        typer.Option(
            "--processes", "-p", min=1, help="Worker processes, one event loop each (default 1)."
        ),
    ] = 1,
    database_url: str | None = DatabaseOption,
) -> None:
    """Delivery workers only (run as many as you like).

    On any machines, against one database.
    """
    from callhook import logs

    settings = settings_from_env(database_url=database_url)
    logs.configure(settings.log_level, json=settings.log_json)
    # Checked here, before any process starts (a supervisor would restart children that
    # refused, one a second, for ever); one process works on the database it checked (see
    # ``serve`` on a second one).
    db = set_up_database(settings.database_url)
    require_master_key(settings, db)
    console.print(worker_banner(settings, processes, os.getpid()), highlight=False, soft_wrap=True)
    if processes == 1:
        run_worker_process(settings, db=db)
        return
    db.dispose()
    raise typer.Exit(supervise(processes, target=run_worker_process, args=lambda _i: (settings,)))


def worker_banner(settings: Settings, processes: int, pid: int) -> str:
    """The line ``callhook worker`` prints at start: what it serves and how to stop it."""
    plural = "process" if processes == 1 else "processes"
    return (
        f"Callhook worker (pid {pid}): {processes} delivery {plural} on "
        f"{display_url(settings.database_url)}, up to {settings.worker_max_in_flight} attempts "
        f"in flight each. No HTTP port: queue metrics are on the API's /metrics "
        "(callhook serve). SIGTERM or Ctrl-C drains and stops."
    )
