"""``callhook demo`` (what ``make run`` starts): the platform on SQLite with a demo account.

One process: the API + dashboard + a delivery worker, the demo receiver on loopback, and a gentle
stream of sample events so there is something to watch. Development only: it turns on
``allow_unsafe_targets`` so the worker may deliver to the plain-HTTP loopback receiver.

Created once, then kept: the first run creates the demo account, its dashboard user, its webhook
pointing at the built-in receiver with every event subscribed, and one API token. Later runs
change none of it — a URL, events, retry policy or secret the user changed stay as they are —
and print what it is. The token is the same on every run (kept encrypted in the demo's state
file, see :mod:`callhook.demo`); when it is lost or revoked a new one replaces it, and any other
demo token still active is revoked, so there is only ever one.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from callhook.cli.common import console, fail, settings_from_env

if TYPE_CHECKING:
    from callhook.demo import DemoState
    from callhook.platform import Platform
    from callhook.settings import Settings
    from callhook.store.accounts import Account
    from callhook.store.db import Connection

DEMO_ACCOUNT = "Demo PBX"
DEMO_EMAIL = "demo@callhook.local"
DEMO_PASSWORD = "callhook-demo"  # noqa: S105 - the documented demo sign-in
DEMO_TOKEN_NAME = "demo (make run)"  # noqa: S105 - a label, not a secret
DEMO_SCOPES = ("events.write", "webhooks.read", "webhooks.write")
CA_BUNDLE_VARIABLE = "CALLHOOK_CA_BUNDLE"


@dataclass(frozen=True)
class DemoSetup:
    """What the demo runs with, and whether this run made it or found it."""

    account_id: str
    token: str
    token_id: str
    secret: str
    url: str | None
    created: bool  # the account was made by this run
    new_token: bool  # the token was made by this run (first run, or the old one was lost)


def prepare(platform: Platform, receiver_url: str, state: DemoState) -> tuple[DemoSetup, DemoState]:
    """Migrate; create the demo once; reuse it (as the user left it) on later runs."""
    from callhook.store import accounts as account_store
    from callhook.store import integrations as integration_store
    from callhook.store.migrate import upgrade

    upgrade(platform.db)
    now = platform.clock.now()
    with platform.db.write() as conn:
        existing = [a for a in account_store.list_all(conn) if a.name == DEMO_ACCOUNT]
        created = not existing
        account = existing[0] if existing else _create_account(conn, platform, receiver_url)
        token_id, token, new_token = _the_one_token(conn, platform, account.id, state)
        integration = integration_store.get(conn, account.id)
        secrets = integration_store.active_secrets(conn, account.id, now=now, box=platform.box)
    setup = DemoSetup(
        account_id=account.id,
        token=token,
        token_id=token_id,
        secret=secrets[0].secret,
        url=integration.url if integration is not None else None,
        created=created,
        new_token=new_token,
    )
    return setup, state.with_token(token_id, token, platform.box)


def _create_account(conn: Connection, platform: Platform, receiver_url: str) -> Account:
    from callhook.events import SUBSCRIBABLE_EVENTS
    from callhook.store import accounts as account_store
    from callhook.store import integrations as integration_store
    from callhook.store import users as user_store

    now = platform.clock.now()
    account = account_store.create(conn, name=DEMO_ACCOUNT, now=now, rng=platform.rng)
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
    return account


def _the_one_token(
    conn: Connection, platform: Platform, account_id: str, state: DemoState
) -> tuple[str, str, bool]:
    """``(token id, plaintext, made now)``: the kept demo token while it is still active, else a
    new one; every other active demo token of the account is revoked."""
    from callhook.store import tokens as token_store

    now = platform.clock.now()
    plaintext = state.token(platform.box)
    demo_tokens = [t for t in token_store.list_for(conn, account_id) if t.name == DEMO_TOKEN_NAME]
    kept = next(
        (
            t
            for t in demo_tokens
            if plaintext is not None
            and t.id == state.token_id
            and t.prefix == plaintext[: len(t.prefix)]
            and t.active(now)
        ),
        None,
    )
    made = kept is None
    if kept is None or plaintext is None:
        kept, plaintext = token_store.create(
            conn,
            account_id=account_id,
            scopes=DEMO_SCOPES,
            now=now,
            rng=platform.rng,
            name=DEMO_TOKEN_NAME,
        )
    for other in demo_tokens:
        if other.id != kept.id and other.active(now):
            token_store.revoke(conn, other.id, now=now, account_id=account_id)
    return kept.id, plaintext, made


def _ca_bundle(settings: Settings, state: DemoState) -> tuple[Path | None, str]:
    """The CA bundle for this run and where it came from. ``CALLHOOK_CA_BUNDLE`` when set
    (empty: none), else the one remembered from an earlier run."""
    if CA_BUNDLE_VARIABLE in os.environ:
        return settings.ca_bundle, CA_BUNDLE_VARIABLE
    if state.ca_bundle is not None:
        return state.ca_bundle, "remembered from an earlier run"
    return None, ""


def _activate_hint() -> str | None:
    """``. .venv/bin/activate`` (relative when below this directory) when running from a venv."""
    if sys.prefix == sys.base_prefix:
        return None
    venv = Path(sys.prefix).resolve()
    cwd = Path.cwd()
    if (cwd / ".venv").resolve() == venv:  # `make run` from the repository
        return ". .venv/bin/activate"
    try:
        return f". {venv.relative_to(cwd.resolve()) / 'bin' / 'activate'}"
    except ValueError:
        return f". {venv / 'bin' / 'activate'}"


def demo(
    port: Annotated[
        int | None, typer.Option(help="API and dashboard port (default: $CALLHOOK_PORT or 8000).")
    ] = None,
    receiver_port: Annotated[
        int,
        typer.Option(help="The built-in receiver's port.", envvar="CALLHOOK_DEMO_RECEIVER_PORT"),
    ] = 8001,
    traffic: Annotated[
        bool, typer.Option("--traffic/--no-traffic", help="Publish sample calls.")
    ] = True,
) -> None:
    """The platform with a demo account (development).

    API, dashboard and worker on SQLite, a built-in receiver that verifies every delivery,
    and sample calls. The demo is created on the first run and kept as you change it.
    """
    import asyncio

    from callhook import logs
    from callhook.demo import load_state, save_state, state_path
    from callhook.errors import CallhookError
    from callhook.platform import Platform

    settings = settings_from_env(port=port, allow_unsafe_targets=True, log_json=False)
    logs.configure("WARNING", json=False)
    path = state_path(settings.database_url)
    state = load_state(path)
    ca_bundle, ca_source = _ca_bundle(settings, state)
    if ca_bundle is not None and not ca_bundle.is_file():
        raise fail(f"the CA bundle {ca_bundle} ({ca_source}) is not a file")
    settings = settings.with_(ca_bundle=ca_bundle)
    receiver_url = f"http://127.0.0.1:{receiver_port}/webhook"
    try:
        platform = Platform.create(settings)
        setup, state = prepare(platform, receiver_url, state)
    except CallhookError as exc:
        raise fail(exc.message, code=1) from exc
    save_state(path, state.with_ca_bundle(ca_bundle))
    stop = StopRequest()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop.handle)
    banner = functools.partial(_print_setup, settings, setup, receiver_url, ca_bundle, ca_source)
    failure = asyncio.run(_run(platform, setup, receiver_port, traffic, stop, banner))
    if failure is not None:
        raise fail(str(failure), code=1)


@dataclass
class StopRequest:
    """Ctrl-C / SIGTERM from now on stops the demo, whenever it comes.

    uvicorn handles both signals only while it serves: one arriving earlier (the demo is still
    starting) would otherwise be lost and the demo never stop. This handler remembers it and
    tells the server once there is one. After a clean shutdown uvicorn re-raises the signal it
    caught; landing here, it changes nothing (and prints no traceback).
    """

    requested: bool = False
    server: Any = None  # the uvicorn.Server, once made

    def handle(self, _sig: int, _frame: object) -> None:
        self.requested = True
        if self.server is not None:
            self.server.should_exit = True

    def attach(self, server: Any) -> None:
        self.server = server
        if self.requested:
            server.should_exit = True


def _print_setup(
    settings: Settings,
    setup: DemoSetup,
    receiver_url: str,
    ca_bundle: Path | None,
    ca_source: str,
) -> None:
    from rich.markup import escape
    from rich.panel import Panel

    base = f"http://{settings.host}:{settings.port}"
    if setup.url == receiver_url:
        target = f"{receiver_url} (the built-in receiver)"
    elif setup.url is None:
        target = "— no URL set: nothing is delivered"
    else:
        target = f"{escape(setup.url)} (yours; the built-in receiver still listens)"
    made = "created now" if setup.created else "from an earlier run, as you left it"
    token_note = "new" if setup.new_token else "the same as on earlier runs"
    console.print(
        Panel.fit(
            f"[bold]Dashboard[/bold]  {base}/dashboard\n"
            f"[bold]Sign in[/bold]    {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            f"[bold]API[/bold]        {base}/api/v2/webhooks\n"
            f"[bold]API docs[/bold]   {base}/api/v2/docs\n"
            f"[bold]Ingest[/bold]     POST {base}/internal/v1/events\n"
            f"[bold]Metrics[/bold]    {base}/metrics\n"
            f"[bold]Account[/bold]    {setup.account_id} ({DEMO_ACCOUNT}, {made})\n"
            f"[bold]Webhook[/bold]    {target}\n"
            f"[bold]Token[/bold]      {setup.token_id} ({token_note}; the demo's only token)",
            title="Callhook demo",
        ),
        highlight=False,
    )
    # Printed outside the panel and unwrapped, so they can be copied whole.
    lines = [
        f"API token: {setup.token}",
        f"Webhook secret: {setup.secret}",
        "",
        "In another terminal, in this directory (the README's commands expect these):",
    ]
    activate = _activate_hint()
    if activate is not None:
        lines.append(f"  {activate}")
    lines += [
        f"  export CALLHOOK={base} ACCOUNT={setup.account_id} TOKEN={setup.token} "
        f"SECRET={setup.secret}",
        '  curl -H "Authorization: Bearer $TOKEN" "$CALLHOOK/api/v2/webhooks"',
        "",
        "Your own receiver instead of the built-in one (kept across restarts): set its URL on",
        f"the dashboard's Webhook page ({base}/dashboard/webhook), or",
        "  CALLHOOK_ALLOW_UNSAFE_TARGETS=1 callhook integration set-url $ACCOUNT "
        "https://localhost:4000/webhook",
        "A local HTTPS receiver with its own CA: stop, then start with the CA file",
        f"  {CA_BUNDLE_VARIABLE}=/path/to/ca.pem make run      (remembered for later runs; "
        f"{CA_BUNDLE_VARIABLE}= forgets it)",
        "Back to the built-in receiver:",
        f"  CALLHOOK_ALLOW_UNSAFE_TARGETS=1 callhook integration set-url $ACCOUNT {receiver_url}",
    ]
    if ca_bundle is not None:
        lines.append(f"CA bundle: {ca_bundle} ({ca_source})")
    lines += [
        "",
        "Development mode: plain-HTTP and loopback targets are allowed. Ctrl-C to stop.",
        "The built-in receiver verifies both signatures of every delivery it gets:",
    ]
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


async def _trickle(platform: Platform, account_id: str, every: float) -> None:
    """A gentle endless simulation (``callhook simulate``), so the dashboard has life in it."""
    import random

    from callhook import simulate

    publish = simulate.in_process(platform.publisher, account_id)
    seed = random.SystemRandom().randrange(2**32)
    while True:
        # A call about every 4 × ``every`` seconds; gaps inside calls run 5× faster than life.
        now = platform.clock.now()
        events = simulate.plan(20, seed=seed, start=now, rate=1 / (4 * every), speed=5)
        await simulate.drive(events, publish, concurrency=1)
        seed += 1


async def _run(
    platform: Platform,
    setup: DemoSetup,
    receiver_port: int,
    traffic: bool,
    stop: StopRequest,
    banner: Callable[[], None],
) -> BaseException | None:
    """Serve until stopped; ``banner`` is printed once the server answers (not before: what it
    tells people to open and run must work when they read it). Returns why the delivery worker
    stopped by itself, if it did (the server then stops too)."""
    import asyncio
    import contextlib

    import uvicorn
    from aiohttp import web

    from callhook.api.app import create_app
    from callhook.api.edge import server_config
    from callhook.demo import DemoReceiver
    from callhook.listeners import LIMITS
    from callhook.store import integrations as integration_store

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

    failures: list[BaseException] = []

    def worker_failed(exc: BaseException) -> None:
        failures.append(exc)
        stop.handle(0, None)  # drain and stop, as on Ctrl-C

    app = create_app(settings, platform=platform, run_worker=True, on_worker_failure=worker_failed)
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
    stop.attach(server)
    trickle = asyncio.create_task(_trickle(platform, setup.account_id, 1.5)) if traffic else None
    try:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        if server.started:
            banner()
        await serving
    finally:
        if trickle is not None:
            trickle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await trickle
        await runner.cleanup()
        platform.db.dispose()
    return failures[0] if failures else None
