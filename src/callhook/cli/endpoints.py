"""``callhook endpoints list|add|show|update|remove|pause|resume ACCOUNT …``: an account's
endpoints (operators).

The same rules as API v2's ``/api/v2/endpoints`` (``callhook.store.endpoints``): URLs vetted and
resolved, at most ``max_endpoints_per_account``, one URL per account, known events only, the
primary endpoint never removed. Unlike the API, the operator may set the primary endpoint's URL
(spec 002: "set in the dashboard or by the operator"), as ``callhook integration set-url`` does.
``--json`` prints the API's JSON of an endpoint (``callhook.endpoint_view``), its health
included (state and its times, throttling). ``pause`` and ``resume`` feed the endpoint health
machine (``callhook.store.endpoint_health``) as the API does, recorded as by ``operator``.

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
from callhook.core.typed_numbers import whole_number

if TYPE_CHECKING:
    from callhook import endpoint_view
    from callhook.platform import Platform
    from callhook.store import accounts as account_store
    from callhook.store import endpoint_health, endpoint_removal, endpoint_status
    from callhook.store import endpoints as endpoint_store
    from callhook.store.db import Connection
    from callhook.store.endpoint_secrets import SigningSecret
    from callhook.store.endpoint_status import EndpointEvent, Status
    from callhook.store.endpoints import Endpoint
else:
    account_store = LazyModule("callhook.store.accounts")
    endpoint_store = LazyModule("callhook.store.endpoints")
    endpoint_health = LazyModule("callhook.store.endpoint_health")
    endpoint_status = LazyModule("callhook.store.endpoint_status")
    endpoint_removal = LazyModule("callhook.store.endpoint_removal")
    endpoint_view = LazyModule("callhook.endpoint_view")

#: Who a change from this CLI is recorded as in the endpoint event log.
BY = "operator"

app = command_group("endpoints", "An account's webhook endpoints (operators).")

AccountArg = Annotated[str, typer.Argument(help="Account id (acc_…).")]
EndpointArg = Annotated[str, typer.Argument(help="Endpoint id (ep_…).")]
RateHelp = "Deliveries per second at most, across every worker (0: no limit)."
InFlightHelp = "Attempts under way at once at most, across every worker (0: no limit)."
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


def _statuses(conn: Connection, p: Platform, endpoints: list[Endpoint]) -> dict[str, Status]:
    return endpoint_status.statuses(
        conn,
        [e.id for e in endpoints],
        now=p.clock.now(),
        rules=endpoint_health.rules_from(p.settings),
    )


def _state_line(endpoint: Endpoint, status: Status) -> str:
    """``failing since …, next probe at …, disabled on … unless it recovers``."""
    parts = [str(endpoint.state)]
    if status.state_since is not None:
        parts[0] += f" since {when(status.state_since)}"
    if status.next_probe_at is not None:
        parts.append(f"next probe at {when(status.next_probe_at)}")
    if status.disable_at is not None:
        parts.append(f"will be disabled on {when(status.disable_at)} unless it recovers")
    if status.slowed_until is not None:
        parts.append(f"held by Retry-After until {when(status.slowed_until)}")
    return ", ".join(parts)


def _print(endpoint: Endpoint, status: Status | None = None) -> None:
    status = status or endpoint_status.Status()
    events = (
        "all (also future ones)"
        if endpoint.subscribed_events is None
        else ", ".join(endpoint.subscribed_events) or "—"
    )
    console.print(f"Endpoint:    {endpoint.id}{'  (primary)' if endpoint.primary else ''}")
    console.print(f"URL:         {endpoint.url or '— (not configured)'}", highlight=False)
    console.print(f"Description: {endpoint.description or '—'}", highlight=False)
    console.print(f"Enabled:     {'yes' if endpoint.enabled else 'no'}")
    console.print(f"State:       {_state_line(endpoint, status)}")
    rate = "none" if status.rate_limit is None else f"{status.rate_limit:g}/s"
    cap = "none" if status.max_in_flight is None else str(status.max_in_flight)
    console.print(f"Rate limit:  {rate}   Max in flight: {cap}")
    console.print(f"Replay:      {'on' if status.replay_on_recovery else 'off'} (on recovery)")
    console.print(f"Retries:     {endpoint.retry_policy}")
    console.print(f"Events:      {events}")
    console.print(
        f"Ordering:    {endpoint.ordering}, bound {endpoint.ordering_bound_seconds} s, max age "
        f"call-control {_age(endpoint.max_age_call_control_seconds)}, "
        f"bulk {_age(endpoint.max_age_bulk_seconds)}"
    )
    console.print(f"Created:     {when(endpoint.created_at)}")
    console.print(f"Updated:     {when(endpoint.updated_at)}")


def _age(seconds: int | None) -> str:
    return "none" if seconds is None else f"{seconds} s"


# Ordered delivery per call (issue 14): the endpoint fields as options.
OrderingOption = Annotated[
    str | None, typer.Option(help="per_call (a call's events one after another) or none.")
]
BoundOption = Annotated[
    str | None,
    typer.Option(help="Head-of-line bound in seconds (1-86400): later events wait this long."),
]
CallControlAgeOption = Annotated[
    str | None,
    typer.Option(help="Call-control events older than this many seconds expire; none: never."),
]
BulkAgeOption = Annotated[
    str | None,
    typer.Option(help="Bulk events (speech, summary, …) older than this expire; none: never."),
]


def _ordering_changes(
    ordering: str | None, bound: str | None, cc_age: str | None, bulk_age: str | None
) -> dict[str, Any]:
    """The ordering fields given, as the store takes them (it checks them, naming the field)."""
    out: dict[str, Any] = {}
    for name, raw in (
        ("ordering", ordering),
        ("ordering_bound_seconds", bound),
        ("max_age_call_control_seconds", cc_age),
        ("max_age_bulk_seconds", bulk_age),
    ):
        if raw is None:
            continue
        if name == "ordering":
            out[name] = raw
        elif raw.strip().lower() in ("none", "null") and name.startswith("max_age_"):
            out[name] = None  # "null": what the store's message and the API call it
        else:
            text = raw.strip()
            number = whole_number(text.removeprefix("-"))
            if number is not None and text.startswith("-"):
                number = -number  # refused for its range, not as text
            out[name] = raw if number is None else number  # the store refuses text, naming it
    return out


def _show(endpoint: Endpoint, status: Status, json: bool) -> None:
    if json:
        print_json(endpoint_view.endpoint_json(endpoint, status))
    else:
        _print(endpoint, status)


def _endpoint(conn: Connection, account: str, endpoint_id: str) -> Endpoint:
    """The account's endpoint; an unknown account is said as such ("no account …", as `list`
    says), not as an unknown endpoint."""
    account_store.get(conn, account)
    return endpoint_store.get(conn, account, endpoint_id)


@app.command("list")
def endpoints_list(
    account: AccountArg, json: bool = JsonOption, database_url: str | None = DatabaseOption
) -> None:
    """The account's endpoints: the primary one first, then oldest first."""
    with platform(database_url) as p, p.db.read() as conn:
        account_store.get(conn, account)
        rows = endpoint_store.list_for_account(conn, account)
        status = _statuses(conn, p, rows)
    if json:
        print_json([endpoint_view.endpoint_json(e, status[e.id]) for e in rows])
        return
    from rich.table import Column, Table

    table = Table("url", "enabled", "state", "events", "description")
    table.columns.insert(0, Column("id", no_wrap=True, overflow="ignore", min_width=29))
    for e in rows:
        events = "all" if e.subscribed_events is None else str(len(e.subscribed_events))
        table.add_row(
            e.id + (" *" if e.primary else ""),
            e.url or "—",
            "yes" if e.enabled else "no",
            str(e.state),
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
    rate_limit: Annotated[float | None, typer.Option(help=RateHelp)] = None,
    max_in_flight: Annotated[int | None, typer.Option(help=InFlightHelp)] = None,
    ordering: OrderingOption = None,
    ordering_bound: BoundOption = None,
    max_age_call_control: CallControlAgeOption = None,
    max_age_bulk: BulkAgeOption = None,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Add an endpoint (with its own signing secret: show --secret)."""
    names = _events(events)
    ordered = _ordering_changes(ordering, ordering_bound, max_age_call_control, max_age_bulk)
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
                rules=endpoint_health.rules_from(p.settings),
                **ordered,
            )
            if rate_limit is not None or max_in_flight is not None:
                _set_limits(
                    conn, p, endpoint, {"rate_limit": rate_limit, "max_in_flight": max_in_flight}
                )
            status = _statuses(conn, p, [endpoint])[endpoint.id]
    _show(endpoint, status, json)


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
        endpoint = _endpoint(conn, account, endpoint_id)
        status = _statuses(conn, p, [endpoint])[endpoint.id]
        log = endpoint_status.event_log(conn, endpoint.id, limit=20)
        secrets = (
            endpoint_store.active_secrets(conn, account, endpoint_id, now=p.clock.now(), box=p.box)
            if secret
            else []
        )
    if json:
        doc: dict[str, Any] = endpoint_view.endpoint_json(endpoint, status)
        if secret:
            doc.update(endpoint_view.secrets_json(secrets))
        print_json(doc)
        return
    _print(endpoint, status)
    _print_log(log)
    _print_secrets(secrets)


def _print_secrets(secrets: list[SigningSecret]) -> None:
    """The secrets signing now, in clear, each with its expiry once rotated out."""
    for s in secrets:
        note = "" if s.expires_at is None else f"  (expires {when(s.expires_at)})"
        console.print(f"Secret:      {s.secret}{note}", highlight=False)


def _print_log(log: list[EndpointEvent]) -> None:
    """The endpoint event log, newest first: time, transition, cause."""
    if not log:
        console.print("History:     no change of state yet")
        return
    console.print("History:")
    for e in log:
        change = e.after if e.before == e.after else f"{e.before} → {e.after}"
        by = f" by {e.data['by']}" if "by" in e.data else ""
        console.print(f"  {when(e.at)}  {change}  ({e.cause}{by})", highlight=False)


def _set_limits(conn: Connection, p: Platform, endpoint: Endpoint, given: dict[str, Any]) -> None:
    """Throttling options: 0 clears a limit; refused outside the operator's caps, naming the
    option, before anything is written (the caller's transaction rolls back)."""
    from callhook.core import throttle
    from callhook.settings import health_rules

    current = endpoint_health.get(conn, endpoint.id, endpoint.account_id)
    rate = given.get("rate_limit", current.rate_limit)
    in_flight = given.get("max_in_flight", current.max_in_flight)
    rate = None if rate == 0 else rate
    in_flight = None if in_flight == 0 else in_flight
    _, _, caps = health_rules(p.settings)
    for name, message in throttle.check_limits(rate, in_flight, caps).items():
        raise fail(f"--{name.replace('_', '-')}: {message.replace('null', '0')}")
    endpoint_health.set_limits(
        conn,
        endpoint.id,
        endpoint.account_id,
        rate_limit=rate,
        max_in_flight=in_flight,
        replay_on_recovery=given.get("replay_on_recovery"),
        caps=caps,
        keep_bucket=rate == current.rate_limit,
    )


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
    rate_limit: Annotated[float | None, typer.Option(help=RateHelp)] = None,
    max_in_flight: Annotated[int | None, typer.Option(help=InFlightHelp)] = None,
    replay: Annotated[
        bool | None,
        typer.Option(
            "--replay/--no-replay",
            help="On recovery, queue again what failed during the outage (in order).",
        ),
    ] = None,
    ordering: OrderingOption = None,
    ordering_bound: BoundOption = None,
    max_age_call_control: CallControlAgeOption = None,
    max_age_bulk: BulkAgeOption = None,
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
    limits: dict[str, Any] = {
        name: value
        for name, value in (
            ("rate_limit", rate_limit),
            ("max_in_flight", max_in_flight),
            ("replay_on_recovery", replay),
        )
        if value is not None
    }
    changes.update(_ordering_changes(ordering, ordering_bound, max_age_call_control, max_age_bulk))
    if not changes and not limits and url is None:
        raise fail(
            "nothing to change: give --url, --events, --description, --retry-policy, "
            "--enable or --disable, --rate-limit, --max-in-flight, --replay or --no-replay, "
            "--ordering, --ordering-bound, --max-age-call-control, --max-age-bulk"
        )
    with platform(database_url) as p:
        allow_unsafe = p.settings.allow_unsafe_targets
        vetted = None if url is None else _vetted(url, allow_unsafe)
        now = p.clock.now()
        rules = endpoint_health.rules_from(p.settings)
        with p.db.write() as conn:
            current = _endpoint(conn, account, endpoint_id)
            if vetted is not None and current.primary:
                # The operator sets the primary endpoint's URL (spec 002); the API may not.
                endpoint_store.set_primary_url(
                    conn, account, vetted, now=now, box=p.box, rng=p.rng, rules=rules
                )
            elif vetted is not None:
                changes["url"] = vetted
            # One transaction: a refusal below rolls the whole command back, URL included.
            endpoint = endpoint_store.update(
                conn,
                account,
                endpoint_id,
                allow_unsafe=allow_unsafe,
                now=now,
                rules=rules,
                by=BY,
                **changes,
            )
            if limits:
                _set_limits(conn, p, endpoint, limits)
            status = _statuses(conn, p, [endpoint])[endpoint.id]
    _show(endpoint, status, json)


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
            endpoint = _endpoint(conn, account, endpoint_id)
        if not yes:
            if not stdin_is_terminal():
                raise fail("removing an endpoint deletes its deliveries; pass --yes to confirm")
            typer.confirm(f"Remove {endpoint.id} ({endpoint.url}) and its deliveries?", abort=True)
        removal = endpoint_removal.remove_endpoint(p.db, account, endpoint_id)
    n = removal.deliveries
    console.print(f"Removed {endpoint_id} and its {n} {'delivery' if n == 1 else 'deliveries'}")


@app.command("rotate")
def endpoints_rotate_secret(
    account: AccountArg,
    endpoint_id: EndpointArg,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """A new signing secret; the old one keeps signing for 24 hours.

    Prints the secrets signing now (in clear), newest first. Also how a secret stored under
    another master key is replaced (docs/deployment.md)."""
    with platform(database_url) as p, p.db.write() as conn:
        endpoint = _endpoint(conn, account, endpoint_id)
        now = p.clock.now()
        endpoint_store.rotate_secret(conn, account, endpoint.id, now=now, box=p.box, rng=p.rng)
        secrets = endpoint_store.active_secrets(conn, account, endpoint.id, now=now, box=p.box)
    if json:
        print_json(endpoint_view.secrets_json(secrets))
        return
    _print_secrets(secrets)


@app.command("pause")
def endpoints_pause(
    account: AccountArg,
    endpoint_id: EndpointArg,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Pause deliveries: new events wait, in order.

    Nothing is attempted until `resume`; events keep being accepted and kept."""
    _change(account, endpoint_id, json, database_url, pause=True)


@app.command("resume")
def endpoints_resume(
    account: AccountArg,
    endpoint_id: EndpointArg,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Deliver again at once; what waited goes out in order.

    Works on a paused, failing or disabled endpoint."""
    _change(account, endpoint_id, json, database_url, pause=False)


def _change(
    account: str, endpoint_id: str, json: bool, database_url: str | None, *, pause: bool
) -> None:
    with platform(database_url) as p, p.db.write() as conn:
        endpoint = _endpoint(conn, account, endpoint_id)
        act = endpoint_health.pause if pause else endpoint_health.resume
        act(
            conn,
            endpoint.id,
            account,
            by=BY,
            now=p.clock.now(),
            rules=endpoint_health.rules_from(p.settings),
        )
        endpoint = endpoint_store.get(conn, account, endpoint_id)
        status = _statuses(conn, p, [endpoint])[endpoint.id]
    _show(endpoint, status, json)
