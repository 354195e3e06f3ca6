"""``callhook endpoints list|add|show|update|remove ACCOUNT …``: an account's endpoints (operators).

The same rules as API v2's ``/api/v2/endpoints`` (``callhook.store.endpoints``): URLs vetted and
resolved, at most ``max_endpoints_per_account``, one URL per account, known events only, the
primary endpoint never removed. Unlike the API, the operator may set the primary endpoint's URL
(spec 002: "set in the dashboard or by the operator"), as ``callhook integration set-url`` does.
``--json`` prints the API's JSON of an endpoint (``callhook.endpoint_view``).

Heavy modules are imported inside the commands (see :mod:`callhook.cli.common`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from callhook.cli.common import (
    DatabaseOption,
    JsonOption,
    LazyModule,
    command_group,
    console,
    fail,
    platform,
    print_json,
    stdin_is_terminal,
    when,
)

if TYPE_CHECKING:
    from callhook import endpoint_view
    from callhook.store import accounts as account_store
    from callhook.store import endpoints as endpoint_store
    from callhook.store.endpoints import Endpoint
else:
    account_store = LazyModule("callhook.store.accounts")
    endpoint_store = LazyModule("callhook.store.endpoints")
    endpoint_view = LazyModule("callhook.endpoint_view")

app = command_group("endpoints", "An account's webhook endpoints (operators).")

AccountArg = Annotated[str, typer.Argument(help="Account id (acc_…).")]
EndpointArg = Annotated[str, typer.Argument(help="Endpoint id (ep_…).")]
EventsHelp = "Comma-separated event names, 'all' for every event (also future ones), '' for none."


def _events(raw: str) -> list[str] | None:
    """``--events``: None for 'all', else the names (duplicates and blanks dropped)."""
    if raw.strip().lower() == "all":
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


def _vetted(url: str, allow_unsafe: bool) -> str:
    """The URL parsed, resolved and vetted as the dashboard and the API do; normalized."""
    import asyncio

    from callhook.delivery.resolver import check_url

    return asyncio.run(check_url(url, allow_unsafe=allow_unsafe)).url


def _print(endpoint: Endpoint) -> None:
    events = (
        "all (also future ones)"
        if endpoint.subscribed_events is None
        else ", ".join(endpoint.subscribed_events) or "—"
    )
    console.print(f"Endpoint:    {endpoint.id}{'  (primary)' if endpoint.primary else ''}")
    console.print(f"URL:         {endpoint.url or '— (not configured)'}", highlight=False)
    console.print(f"Description: {endpoint.description or '—'}", highlight=False)
    console.print(f"Enabled:     {'yes' if endpoint.enabled else 'no'}")
    console.print(f"State:       {endpoint.state}")
    console.print(f"Retries:     {endpoint.retry_policy}")
    console.print(f"Events:      {events}")
    console.print(f"Created:     {when(endpoint.created_at)}")
    console.print(f"Updated:     {when(endpoint.updated_at)}")


def _show(endpoint: Endpoint, json: bool) -> None:
    if json:
        print_json(endpoint_view.endpoint_json(endpoint))
    else:
        _print(endpoint)


@app.command("list")
def endpoints_list(
    account: AccountArg, json: bool = JsonOption, database_url: str | None = DatabaseOption
) -> None:
    """The account's endpoints: the primary one first, then oldest first."""
    with platform(database_url) as p, p.db.read() as conn:
        account_store.get(conn, account)
        rows = endpoint_store.list_for_account(conn, account)
    if json:
        print_json([endpoint_view.endpoint_json(e) for e in rows])
        return
    from rich.table import Column, Table

    table = Table("url", "enabled", "events", "description")
    table.columns.insert(0, Column("id", no_wrap=True, overflow="ignore", min_width=29))
    for e in rows:
        events = "all" if e.subscribed_events is None else str(len(e.subscribed_events))
        table.add_row(
            e.id + (" *" if e.primary else ""),
            e.url or "—",
            "yes" if e.enabled else "no",
            events,
            e.description or "—",
        )
    console.print(table)
    console.print("* primary: the webhook setting of `callhook integration` and /api/v2/webhooks")


@app.command("add")
def endpoints_add(
    account: AccountArg,
    url: Annotated[str, typer.Argument(help="HTTPS URL (vetted: public addresses only).")],
    events: Annotated[str, typer.Option(help=EventsHelp)],
    description: Annotated[str, typer.Option(help="A note for people.")] = "",
    retry_policy: Annotated[str, typer.Option(help="exponential or none.")] = "exponential",
    enabled: Annotated[bool, typer.Option("--enabled/--disabled")] = True,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Add an endpoint (with its own signing secret: show --secret)."""
    names = _events(events)
    with platform(database_url) as p:
        allow_unsafe = p.settings.allow_unsafe_targets
        vetted = _vetted(url, allow_unsafe)
        with p.db.write() as conn:
            account_store.get(conn, account)
            endpoint = endpoint_store.create(
                conn,
                account,
                url=vetted,
                subscribed_events=names,
                description=description,
                retry_policy=retry_policy,
                enabled=enabled,
                limit=p.settings.max_endpoints_per_account,
                allow_unsafe=allow_unsafe,
                now=p.clock.now(),
                box=p.box,
                rng=p.rng,
            )
    _show(endpoint, json)


@app.command("show")
def endpoints_show(
    account: AccountArg,
    endpoint_id: EndpointArg,
    secret: Annotated[
        bool, typer.Option("--secret", help="Also print the signing secrets (in clear).")
    ] = False,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """One endpoint (with --secret, its signing secrets too)."""
    with platform(database_url) as p, p.db.read() as conn:
        endpoint = endpoint_store.get(conn, account, endpoint_id)
        secrets = (
            endpoint_store.active_secrets(conn, account, endpoint_id, now=p.clock.now(), box=p.box)
            if secret
            else []
        )
    if json:
        doc: dict[str, Any] = endpoint_view.endpoint_json(endpoint)
        if secret:
            doc.update(endpoint_view.secrets_json(secrets))
        print_json(doc)
        return
    _print(endpoint)
    for s in secrets:
        note = "" if s.expires_at is None else f"  (expires {when(s.expires_at)})"
        console.print(f"Secret:      {s.secret}{note}", highlight=False)


@app.command("update")
def endpoints_update(
    account: AccountArg,
    endpoint_id: EndpointArg,
    url: Annotated[str | None, typer.Option(help="A new HTTPS URL (vetted).")] = None,
    events: Annotated[str | None, typer.Option(help=EventsHelp)] = None,
    description: Annotated[str | None, typer.Option(help="A note for people.")] = None,
    retry_policy: Annotated[str | None, typer.Option(help="exponential or none.")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Deliver to it, or stop.")
    ] = None,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Change the options given; the others stay."""
    changes: dict[str, Any] = {}
    if events is not None:
        changes["subscribed_events"] = _events(events)
    if description is not None:
        changes["description"] = description
    if retry_policy is not None:
        changes["retry_policy"] = retry_policy
    if enabled is not None:
        changes["enabled"] = enabled
    if not changes and url is None:
        raise fail(
            "nothing to change: give --url, --events, --description, --retry-policy, "
            "--enable or --disable"
        )
    with platform(database_url) as p:
        allow_unsafe = p.settings.allow_unsafe_targets
        vetted = None if url is None else _vetted(url, allow_unsafe)
        now = p.clock.now()
        with p.db.write() as conn:
            current = endpoint_store.get(conn, account, endpoint_id)
            if vetted is not None and current.primary:
                # The operator sets the primary endpoint's URL (spec 002); the API may not.
                endpoint_store.set_primary_url(conn, account, vetted, now=now, box=p.box, rng=p.rng)
            elif vetted is not None:
                changes["url"] = vetted
            # One transaction: a refusal below rolls the whole command back, URL included.
            endpoint = endpoint_store.update(
                conn, account, endpoint_id, allow_unsafe=allow_unsafe, now=now, **changes
            )
    _show(endpoint, json)


@app.command("remove")
def endpoints_remove(
    account: AccountArg,
    endpoint_id: EndpointArg,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (needed when not on a terminal).")
    ] = False,
    database_url: str | None = DatabaseOption,
) -> None:
    """Remove an endpoint and its deliveries (not the primary one)."""
    with platform(database_url) as p:
        with p.db.read() as conn:
            endpoint = endpoint_store.get(conn, account, endpoint_id)
        if not yes:
            if not stdin_is_terminal():
                raise fail("removing an endpoint deletes its deliveries; pass --yes to confirm")
            typer.confirm(f"Remove {endpoint.id} ({endpoint.url}) and its deliveries?", abort=True)
        with p.db.write() as conn:
            endpoint_store.delete_endpoint(conn, account, endpoint_id)
    console.print(f"Removed {endpoint_id}")
