"""Operator commands: accounts, tokens, integration (the operator's path to the webhook setting).

Heavy modules (the store, SQLAlchemy, Rich tables) are imported inside the commands, so that
``callhook --help`` stays fast (see :mod:`callhook.cli.common`).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from callhook.cli.common import (
    DatabaseOption,
    JsonOption,
    LazyModule,
    command_group,
    console,
    err_console,
    fail,
    platform,
    print_json,
    stdin_is_terminal,
    when,
)

if TYPE_CHECKING:
    from callhook.store import accounts as account_store
    from callhook.store import endpoint_health
    from callhook.store import integrations as integration_store
    from callhook.store import tokens as token_store
else:
    account_store = LazyModule("callhook.store.accounts")
    endpoint_health = LazyModule("callhook.store.endpoint_health")
    integration_store = LazyModule("callhook.store.integrations")
    token_store = LazyModule("callhook.store.tokens")

accounts_app = command_group("accounts", "Create and list accounts.")
tokens_app = command_group("tokens", "Create, list and revoke API tokens.")
keys_app = command_group("keys", "Master keys for secrets at rest.")
integration_app = command_group("integration", "An account's webhook setting (operators).")


@accounts_app.command("create")
def accounts_create(
    name: Annotated[str, typer.Argument(help="Display name.")],
    email: Annotated[str | None, typer.Option(help="First dashboard user's email.")] = None,
    password: Annotated[
        str | None,
        typer.Option(help="First user's password (visible to other users of this machine)."),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the first user's password from standard input."
        ),
    ] = False,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Create an account (and, with --email, its first dashboard user).

    With --email the password comes from --password-stdin (for scripts:
    `printf '%s' "$PW" | callhook accounts create NAME --email E --password-stdin`), from
    --password, or from a prompt when run in a terminal.
    """
    password = _first_password(email, password, password_stdin)
    with platform(database_url) as p, p.db.write() as conn:
        account = account_store.create(conn, name=name, now=p.clock.now(), rng=p.rng)
        integration_store.ensure(conn, account.id, now=p.clock.now(), box=p.box, rng=p.rng)
        user_email = None
        if email is not None and password is not None:
            from callhook.store import users as user_store

            user_email = user_store.create(
                conn,
                account_id=account.id,
                email=email,
                password=password,
                now=p.clock.now(),
                rng=p.rng,
            ).email
    if json:
        print_json({**asdict(account), "user": user_email})
    else:
        console.print(f"Created account [bold]{account.id}[/bold] ({account.name})")
        if user_email:
            console.print(f"Dashboard user: {user_email}")


def _first_password(email: str | None, password: str | None, from_stdin: bool) -> str | None:
    """The first user's password, from exactly one source; a clear refusal otherwise.

    Refusals happen before anything is written, so a refused command creates nothing.
    """
    if email is None:
        if password is not None or from_stdin:
            raise fail("a password is for the first dashboard user: give --email too")
        return None
    if password is not None and from_stdin:
        raise fail("give the password once: --password or --password-stdin, not both")
    if from_stdin:
        # One line, as `echo`/`printf` and secret stores write it; the newline is not part of it.
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if password is not None:
        return password
    if not stdin_is_terminal():
        raise fail(
            "--email needs the user's password: pipe it with --password-stdin "
            "(no terminal here to prompt in)"
        )
    prompted: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return prompted


@accounts_app.command("list")
def accounts_list(json: bool = JsonOption, database_url: str | None = DatabaseOption) -> None:
    """List accounts."""
    with platform(database_url) as p, p.db.read() as conn:
        rows = account_store.list_all(conn)
    if json:
        print_json([asdict(a) for a in rows])
        return
    from rich.table import Table

    table = Table("id", "name", "created")
    for a in rows:
        table.add_row(a.id, a.name, when(a.created_at))
    console.print(table)


@tokens_app.command("create")
def tokens_create(
    scopes: Annotated[
        str,
        typer.Option(
            help="Comma-separated: events.write, webhooks.read, webhooks.write, endpoints.write "
            "(only the scopes named are granted)."
        ),
    ],
    account: Annotated[
        str | None, typer.Option(help="Bind to this account (omit for a platform token).")
    ] = None,
    name: Annotated[str, typer.Option(help="A label for people.")] = "",
    expires_in_days: Annotated[
        int | None, typer.Option(help="Expire after this many days.")
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print only the token, for scripts: TOKEN=$(callhook tokens …)."
        ),
    ] = False,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Create a token. It is printed once; only its hash is stored."""
    with platform(database_url) as p, p.db.write() as conn:
        now = p.clock.now()
        if account is not None:
            account_store.get(conn, account)
        token, plaintext = token_store.create(
            conn,
            account_id=account,
            scopes=scopes.split(","),
            now=now,
            rng=p.rng,
            name=name,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        )
    if json:
        print_json({**asdict(token), "token": plaintext})
        return
    if quiet:
        typer.echo(plaintext)
        return
    console.print(f"Token [bold]{token.id}[/bold] ({', '.join(sorted(token.scopes))})")
    console.print("Copy it now; it will not be shown again:")
    console.print(plaintext, highlight=False, soft_wrap=True)


@tokens_app.command("list")
def tokens_list(
    account: Annotated[str | None, typer.Option(help="Account (omit for platform tokens).")] = None,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """List tokens (never their values)."""
    with platform(database_url) as p, p.db.read() as conn:
        rows = token_store.list_for(conn, account)
    if json:
        print_json([asdict(t) for t in rows])
        return
    from rich.table import Table

    table = Table("id", "name", "prefix", "scopes", "created", "expires", "last used", "revoked")
    for t in rows:
        table.add_row(
            t.id,
            t.name or "—",
            t.prefix + "…",
            ",".join(sorted(t.scopes)),
            when(t.created_at),
            when(t.expires_at),
            when(t.last_used_at),
            when(t.revoked_at),
        )
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id (tok_…).")],
    database_url: str | None = DatabaseOption,
) -> None:
    """Revoke a token at once."""
    with platform(database_url) as p, p.db.write() as conn:
        token_store.revoke(conn, token_id, now=p.clock.now(), account_id=None)
    console.print(f"Revoked {token_id}")


def _show_integration(integration: integration_store.Integration, json: bool) -> None:
    if json:
        print_json(asdict(integration))
        return
    console.print(f"Account:   {integration.account_id}")
    console.print(f"URL:       {integration.url or '— (not configured)'}")
    console.print(f"Enabled:   {'yes' if integration.enabled else 'no'}")
    console.print(f"Retries:   {integration.retry_policy}")
    console.print(f"Events:    {', '.join(integration.subscribed_events) or '—'}")


@integration_app.command("show")
def integration_show(
    account: str, json: bool = JsonOption, database_url: str | None = DatabaseOption
) -> None:
    """Show an account's webhook setting."""
    with platform(database_url) as p, p.db.read() as conn:
        account_store.get(conn, account)
        integration = integration_store.get(conn, account)
    if integration is None:
        console.print("No integration yet.")
        return
    _show_integration(integration, json)


@integration_app.command("set-url")
def integration_set_url(
    account: str, url: str, json: bool = JsonOption, database_url: str | None = DatabaseOption
) -> None:
    """Set the webhook URL (HTTPS; vetted against SSRF)."""
    from callhook.core.urlvet import parse_webhook_url

    with platform(database_url) as p:
        vetted = parse_webhook_url(url, allow_unsafe=p.settings.allow_unsafe_targets)
        _check_resolves(vetted.url, p.settings.allow_unsafe_targets)
        with p.db.write() as conn:
            account_store.get(conn, account)
            integration = integration_store.set_url(
                conn,
                account,
                vetted.url,
                now=p.clock.now(),
                box=p.box,
                rng=p.rng,
                rules=endpoint_health.rules_from(p.settings),
            )
    _show_integration(integration, json)


def _check_resolves(url: str, allow_unsafe: bool) -> None:
    import asyncio

    from callhook.delivery.resolver import check_url

    asyncio.run(check_url(url, allow_unsafe=allow_unsafe))


@integration_app.command("enable")
def integration_enable(
    account: str, json: bool = JsonOption, database_url: str | None = DatabaseOption
) -> None:
    """Enable deliveries."""
    with platform(database_url) as p, p.db.write() as conn:
        _show_integration(
            integration_store.set_enabled(
                conn,
                account,
                True,
                now=p.clock.now(),
                rules=endpoint_health.rules_from(p.settings),
                by="operator",
            ),
            json,
        )


@integration_app.command("disable")
def integration_disable(
    account: str, json: bool = JsonOption, database_url: str | None = DatabaseOption
) -> None:
    """Disable deliveries (events are still recorded).

    Events published meanwhile are kept, marked as not delivered.
    """
    with platform(database_url) as p, p.db.write() as conn:
        _show_integration(
            integration_store.set_enabled(
                conn,
                account,
                False,
                now=p.clock.now(),
                rules=endpoint_health.rules_from(p.settings),
                by="operator",
            ),
            json,
        )


@integration_app.command("subscribe")
def integration_subscribe(
    account: str,
    events: Annotated[list[str], typer.Argument(help="Event names, or 'all'.")],
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Subscribe events (idempotent)."""
    from callhook.events import SUBSCRIBABLE_EVENTS

    names = list(SUBSCRIBABLE_EVENTS) if events == ["all"] else events
    with platform(database_url) as p, p.db.write() as conn:
        _show_integration(
            integration_store.subscribe(conn, account, names, now=p.clock.now()), json
        )


@integration_app.command("unsubscribe")
def integration_unsubscribe(
    account: str,
    events: Annotated[list[str], typer.Argument(help="Event names.")],
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Unsubscribe events (idempotent)."""
    with platform(database_url) as p, p.db.write() as conn:
        _show_integration(
            integration_store.unsubscribe(conn, account, events, now=p.clock.now()), json
        )


@integration_app.command("retry-policy")
def integration_retry_policy(
    account: str,
    policy: Annotated[str, typer.Argument(help="exponential or none.")],
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Choose the retry policy."""
    with platform(database_url) as p, p.db.write() as conn:
        _show_integration(
            integration_store.set_retry_policy(conn, account, policy, now=p.clock.now()), json
        )


@integration_app.command("secret")
def integration_secret(
    account: str,
    rotate: Annotated[
        bool, typer.Option(help="Rotate: new secret, old one valid 24 h more.")
    ] = False,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Show (or rotate) the signing secret."""
    with platform(database_url) as p, p.db.write() as conn:
        now = p.clock.now()
        if rotate:
            integration_store.rotate_secret(conn, account, now=now, box=p.box, rng=p.rng)
        active = integration_store.active_secrets(conn, account, now=now, box=p.box)
    if json:
        print_json([asdict(s) for s in active])
        return
    if not active or active[0].expires_at is not None:
        # Its current secret was stored under another master key: only a rotation replaces it.
        err_console.print(
            "No current secret this Callhook's master key can read: rotate it with --rotate.",
            highlight=False,
        )
    for s in active:
        note = "" if s.expires_at is None else f"  (expires {when(s.expires_at)})"
        console.print(f"{s.secret}{note}", highlight=False)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new master key for CALLHOOK_MASTER_KEY.

    The master key encrypts signing secrets at rest; use the same one on every machine.
    """
    from callhook.store.secretbox import new_master_key

    typer.echo(new_master_key())
