"""Long-running processes: ``serve``, ``worker``, ``migrate``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer

from callhook import logs
from callhook.cli.common import DatabaseOption, console, settings_from_env
from callhook.platform import Platform
from callhook.settings import Settings
from callhook.store.db import Database
from callhook.store.migrate import upgrade


def migrate(database_url: str | None = DatabaseOption) -> None:
    """Create or upgrade the database schema."""
    settings = settings_from_env(database_url=database_url)
    db = Database(settings.database_url)
    try:
        upgrade(db)
    finally:
        db.dispose()
    console.print(f"Database is up to date ({settings.database_url})")


def run_server(settings: Settings, *, run_worker: bool, platform: Platform | None = None) -> None:
    """Serve the API (and the worker) until SIGTERM/SIGINT, then drain and exit 0."""
    import uvicorn

    from callhook.api.app import create_app

    app = create_app(settings, platform=platform, run_worker=run_worker)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    # uvicorn drains on SIGTERM/SIGINT and then re-raises the signal with the previous handler
    # restored; a no-op handler there makes a clean drain exit 0, as process managers expect.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.Server(config).run()


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8000).")] = None,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run a delivery worker too.")
    ] = True,
    auto_migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations at start.")
    ] = True,
    database_url: str | None = DatabaseOption,
) -> None:
    """The HTTP API and (unless --no-worker) a delivery worker, in one process."""
    settings = settings_from_env(database_url=database_url, host=host, port=port)
    logs.configure(settings.log_level, json=settings.log_json)
    if auto_migrate:
        db = Database(settings.database_url)
        upgrade(db)
        db.dispose()
    console.print(f"Callhook API on http://{settings.host}:{settings.port}  (worker: {worker})")
    run_server(settings, run_worker=worker)


async def run_worker_until_signalled(platform: Platform) -> None:
    """Run one worker until SIGTERM/SIGINT: stop claiming, finish in-flight, release the rest."""
    from callhook.delivery.worker import Worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        platform.db,
        platform.settings,
        clock=platform.clock,
        rng=platform.rng,
        box=platform.box,
        metrics=platform.metrics,
    )
    await worker.run(stop)


def worker(database_url: str | None = DatabaseOption) -> None:
    """A delivery worker only (run as many as you like against one database)."""
    settings = settings_from_env(database_url=database_url)
    logs.configure(settings.log_level, json=settings.log_json)
    platform = Platform.create(settings)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        asyncio.run(run_worker_until_signalled(platform))
    finally:
        platform.db.dispose()
