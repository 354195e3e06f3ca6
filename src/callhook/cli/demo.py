"""``callhook demo`` (what ``make run`` starts): the platform on SQLite with a demo account.

One process: the API + dashboard + a delivery worker, the demo receiver on loopback, and a gentle
stream of sample events so there is something to watch. Development only: it turns on
``allow_unsafe_targets`` so the worker may deliver to the plain-HTTP loopback receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from dataclasses import dataclass
from typing import Annotated

import typer
from aiohttp import web
from rich.panel import Panel

from callhook import logs
from callhook.cli.common import console, settings_from_env
from callhook.demo import DemoReceiver
from callhook.events import SUBSCRIBABLE_EVENTS
from callhook.listeners import LIMITS
from callhook.platform import Platform
from callhook.store import accounts as account_store
from callhook.store import integrations as integration_store
from callhook.store import tokens as token_store
from callhook.store.migrate import upgrade

DEMO_ACCOUNT = "Demo PBX"
DEMO_EMAIL = "demo@callhook.local"
DEMO_PASSWORD = "callhook-demo"  # noqa: S105 - the documented demo sign-in


@dataclass(frozen=True)
class DemoSetup:
    account_id: str
    token: str
    secret: str


def prepare(platform: Platform, receiver_url: str) -> DemoSetup:
    """Migrate, then create (once) the demo account, user and integration; a fresh token."""
    upgrade(platform.db)
    now = platform.clock.now()
    with platform.db.write() as conn:
        existing = [a for a in account_store.list_all(conn) if a.name == DEMO_ACCOUNT]
        if existing:
            account = existing[0]
        else:
            account = account_store.create(conn, name=DEMO_ACCOUNT, now=now, rng=platform.rng)
            from callhook.store import users as user_store

            user_store.create(
                conn,
                account_id=account.id,
                email=DEMO_EMAIL,
                password=DEMO_PASSWORD,
                now=now,
                rng=platform.rng,
            )
        integration_store.set_url(
            conn, account.id, receiver_url, now=now, box=platform.box, rng=platform.rng
        )
        integration_store.set_enabled(conn, account.id, True, now=now)
        integration_store.subscribe(conn, account.id, SUBSCRIBABLE_EVENTS, now=now)
        _, token = token_store.create(
            conn,
            account_id=account.id,
            scopes=["webhooks.read", "webhooks.write", "events.write"],
            now=now,
            rng=platform.rng,
            name="demo (make run)",
        )
        secret = integration_store.active_secrets(conn, account.id, now=now, box=platform.box)[0]
    return DemoSetup(account_id=account.id, token=token, secret=secret.secret)


async def _trickle(platform: Platform, account_id: str, every: float) -> None:
    """A gentle endless simulation (``callhook simulate``), so the dashboard has life in it."""
    from callhook import simulate

    publish = simulate.in_process(platform.publisher, account_id)
    seed = random.SystemRandom().randrange(2**32)
    while True:
        # A call about every 4 × ``every`` seconds; gaps inside calls run 5× faster than life.
        now = platform.clock.now()
        events = simulate.plan(20, seed=seed, start=now, rate=1 / (4 * every), speed=5)
        await simulate.drive(events, publish, concurrency=1)
        seed += 1


def demo(
    port: Annotated[int, typer.Option(help="API and dashboard port.")] = 8000,
    receiver_port: Annotated[int, typer.Option(help="Demo receiver port.")] = 8001,
    traffic: Annotated[
        bool, typer.Option("--traffic/--no-traffic", help="Publish sample calls.")
    ] = True,
) -> None:
    """Run the platform with a demo account and receiver (development only)."""
    settings = settings_from_env(port=port, allow_unsafe_targets=True, log_json=False)
    logs.configure("WARNING", json=False)
    platform = Platform.create(settings)
    receiver_url = f"http://127.0.0.1:{receiver_port}/webhook"
    setup = prepare(platform, receiver_url)
    # uvicorn re-raises Ctrl-C after its clean shutdown; a no-op handler spares a traceback.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    asyncio.run(_run(platform, setup, receiver_port, traffic))


async def _run(platform: Platform, setup: DemoSetup, receiver_port: int, traffic: bool) -> None:
    import uvicorn

    from callhook.api.app import create_app
    from callhook.api.edge import server_config

    settings = platform.settings

    def secrets() -> list[str]:
        with platform.db.read() as conn:
            active = integration_store.active_secrets(
                conn, setup.account_id, now=platform.clock.now(), box=platform.box
            )
        return [s.secret for s in active]

    def shown(event: str, ok: bool, _body: bytes) -> None:
        mark = "[green]✓ verified[/green]" if ok else "[red]✗ bad signature[/red]"
        console.print(f"demo receiver: {mark} {event}")

    receiver = DemoReceiver(secrets=secrets, on_delivery=shown)
    runner = web.AppRunner(receiver.app(), access_log=None, **LIMITS.server_options())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver_port).start()

    app = create_app(settings, platform=platform, run_worker=True)
    server = uvicorn.Server(
        server_config(
            app,
            settings,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
    )
    base = f"http://{settings.host}:{settings.port}"
    console.print(
        Panel.fit(
            f"[bold]Dashboard[/bold]  {base}/dashboard\n"
            f"[bold]Sign in[/bold]    {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            f"[bold]API[/bold]        {base}/api/v2/webhooks  (docs: /api/v2/docs)\n"
            f"[bold]Ingest[/bold]     POST {base}/internal/v1/events\n"
            f"[bold]Metrics[/bold]    {base}/metrics\n"
            f"[bold]Account[/bold]    {setup.account_id}\n"
            f"[bold]Receiver[/bold]   http://127.0.0.1:{receiver_port}/webhook",
            title="Callhook demo",
        ),
        highlight=False,
    )
    # Printed outside the panel and unwrapped, so they can be copied whole.
    console.print(f"API token: {setup.token}", highlight=False, soft_wrap=True)
    console.print(f"Webhook secret: {setup.secret}", highlight=False, soft_wrap=True)
    console.print(
        f"Try: curl -H 'Authorization: Bearer {setup.token}' {base}/api/v2/webhooks",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "Development mode: plain-HTTP loopback targets are allowed. Ctrl-C to stop.\n"
        "The demo receiver verifies both signatures of every delivery:"
    )
    trickle = asyncio.create_task(_trickle(platform, setup.account_id, 1.5)) if traffic else None
    try:
        await server.serve()
    finally:
        if trickle is not None:
            trickle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await trickle
        await runner.cleanup()
        platform.db.dispose()
