"""``callhook deliveries`` and ``callhook emit``."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from callhook.cli.common import (
    DatabaseOption,
    JsonOption,
    LazyModule,
    command_group,
    console,
    fail,
    parse_time,
    platform,
    print_json,
    when,
)

if TYPE_CHECKING:
    from callhook.store import deliveries as delivery_store
else:
    delivery_store = LazyModule("callhook.store.deliveries")

deliveries_app = command_group("deliveries", "Watch, inspect and redeliver deliveries.")


def _is_pbx_id(value: str) -> bool:
    import re

    from callhook.events.models import PBX_ID_PATTERN

    return len(value) <= 128 and re.fullmatch(PBX_ID_PATTERN, value) is not None


def _check_delivery_id(delivery_id: str) -> None:
    """An id no delivery can have is "not found" without a query (PostgreSQL refuses NUL)."""
    from callhook.core.ids import has_id_shape
    from callhook.errors import NotFound

    if not has_id_shape("dlv", delivery_id):
        raise NotFound(f"Delivery '{delivery_id}' not found.")


def _delivery_json(d: delivery_store.Delivery) -> dict[str, Any]:
    import orjson

    doc = asdict(d)
    if d.body is not None:
        doc["body"] = orjson.loads(d.body)
    return doc


@deliveries_app.command("list")
def deliveries_list(
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    status: Annotated[
        str | None,
        typer.Option(
            help="pending, retrying (pending with an attempt made), waiting, delivered, failed "
            "or expired."
        ),
    ] = None,
    event: Annotated[str | None, typer.Option(help="Only this event.")] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="With --account: only this endpoint of it (ep_…).")
    ] = None,
    pbx_id: Annotated[str | None, typer.Option(help="Only this pbx_id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Created at or after (RFC 3339; no time zone: UTC).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Created before (RFC 3339).")] = None,
    before: Annotated[
        str | None,
        typer.Option(help="The next page: older than this delivery (the last id listed)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """The newest deliveries, a page at a time.

    For the next page, pass the last id listed as --before.
    """
    from callhook.events.names import is_known
    from callhook.store import accounts as account_store
    from callhook.store import endpoints as endpoint_store

    if event is not None and not is_known(event):
        raise fail(f"--event: unknown event '{event}' (callhook events list shows them)")
    if status is not None and status not in delivery_store.FILTERS:
        raise fail(f"--status must be one of {', '.join(delivery_store.FILTERS)}")
    if endpoint is not None and account is None:
        raise fail("--endpoint needs --account (the account the endpoint belongs to)")
    from callhook.core.ids import has_id_shape

    if before is not None and not has_id_shape("dlv", before):
        raise fail("--before: not a delivery id (dlv_…, the last one listed)")
    if pbx_id is not None and not _is_pbx_id(pbx_id):
        raise fail(
            "--pbx-id: 1–128 letters, digits, '.', '_', ':' or '-', the first a letter or digit"
        )
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    from callhook.core import times
    from callhook.errors import PayloadInvalid

    try:
        times.check_span(start, end)
    except PayloadInvalid as exc:
        raise fail("--until must be later than --since") from exc
    with platform(database_url) as p, p.db.read() as conn:
        if account is not None:
            account_store.get(conn, account)  # an unknown account is an error, not "none"
            if endpoint is not None:
                endpoint_store.get(conn, account, endpoint)
        rows = delivery_store.list_deliveries(
            conn,
            account_id=account,
            endpoint_id=endpoint,
            status=status,
            event=event,
            pbx_id=pbx_id,
            since=start,
            until=end,
            before_id=before,
            limit=limit,
        )
    if json:
        print_json([_delivery_json(d) for d in rows])
        return
    from rich.table import Column, Table

    from callhook.core.outcome import DeliveryStatus

    table = Table("event", "pbx_id", "status", "attempts", "last", "ms", "created")
    # Ids are for copying: never wrapped or cut, whatever the terminal width.
    table.columns.insert(0, Column("id", no_wrap=True, overflow="ignore", min_width=30))
    styles: dict[str, str] = {
        DeliveryStatus.DELIVERED: "green",
        DeliveryStatus.FAILED: "red",
        DeliveryStatus.PENDING: "yellow",
        "retrying": "yellow",
        DeliveryStatus.WAITING: "cyan",
        DeliveryStatus.EXPIRED: "magenta",
    }
    for d in rows:
        last = str(d.last_status_code or d.last_error_class or "—")
        ms = f"{d.last_latency_ms:.0f}" if d.last_latency_ms is not None else "—"
        table.add_row(
            d.id,
            d.event,
            d.pbx_id,
            f"[{styles.get(d.shown_status, 'white')}]{d.shown_status}[/]",
            str(d.attempts),
            last,
            ms,
            when(d.created_at),
        )
    console.print(table)
    if len(rows) == limit:
        console.print(f"older: --before {rows[-1].id}", highlight=False, soft_wrap=True)


@deliveries_app.command("show")
def deliveries_show(
    delivery_id: str, json: bool = JsonOption, database_url: str | None = DatabaseOption
) -> None:
    """One delivery with its body and every attempt."""
    with platform(database_url) as p, p.db.read() as conn:
        _check_delivery_id(delivery_id)
        d = delivery_store.get(conn, delivery_id)
    if json:
        print_json(_delivery_json(d))
        return
    console.print(f"[bold]{d.id}[/bold]  {d.event}  pbx_id={d.pbx_id}  account={d.account_id}")
    console.print(
        f"status: {d.shown_status}   attempts: {d.attempts}   next: {when(d.next_attempt_at)}"
    )
    console.print_json(d.body.decode() if d.body else "null")
    from rich.table import Table

    table = Table("#", "started", "ms", "status", "error", "response")
    for a in d.attempt_log:
        table.add_row(
            str(a.number),
            when(a.started_at),
            f"{a.duration_ms:.0f}",
            str(a.status_code or "—"),
            f"{a.error_class}: {a.error_message}" if a.error_class else "—",
            (a.response_body or "")[:80],
        )
    console.print(table)


@deliveries_app.command("redeliver")
def deliveries_redeliver(
    delivery_id: Annotated[str | None, typer.Argument(help="One delivery (dlv_…).")] = None,
    account: Annotated[str | None, typer.Option(help="With --since: only this account.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Deliveries created since (RFC 3339; no time zone: UTC)."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="… and before (RFC 3339).")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="With --since: failed (the default), delivered or expired ones."),
    ] = None,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Queue finished deliveries again (by default failed ones).

    Same body and event id (receivers deduplicate on it), signed afresh when sent.
    """
    if (delivery_id is None) == (since is None):
        raise fail("give either a delivery id or --since")
    if delivery_id is not None and status is not None:
        raise fail("--status goes with --since (one delivery is redelivered whatever its status)")
    from callhook.core.outcome import DeliveryStatus

    status = DeliveryStatus.FAILED.value if status is None else status
    if status not in delivery_store.REDELIVERABLE:
        raise fail(f"--status must be one of {', '.join(delivery_store.REDELIVERABLE)}")
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    from callhook import queueing
    from callhook.errors import PayloadInvalid

    with platform(database_url) as p:
        now = p.clock.now()
        # Through ``queueing``: the write and the wake of idle workers (other processes).
        if delivery_id is not None:
            _check_delivery_id(delivery_id)
            was: list[str] = []  # its status before, read in the redelivery's transaction

            def before(conn: Any) -> None:  # (the store's connection)
                was.append(delivery_store.get(conn, delivery_id).status)

            d = queueing.redeliver_one(p.publisher, delivery_id, now=now, check=before)
            # Still pending or waiting: left as it is (it will be attempted), as the API does.
            count = 0 if was[0] in delivery_store.UNFINISHED else 1
        else:
            assert start is not None
            if account is not None:
                from callhook.store import accounts as account_store

                with p.db.read() as conn:
                    account_store.get(conn, account)  # unknown: an error, not "0 queued"
            try:
                count = queueing.redeliver_window(
                    p.publisher, now=now, account_id=account, since=start, until=end, status=status
                )
            except PayloadInvalid as exc:
                if exc.field == "until":
                    raise fail("--until must be later than --since") from exc
                raise fail("--since must be earlier than now when --until is left out") from exc
    if json:
        print_json({"queued": count})
    elif delivery_id is not None and count == 0:
        console.print(f"{d.id} is {d.status}, not finished: left as it is (it will be attempted)")
    elif delivery_id is not None:
        console.print(f"Queued {d.id} again ({d.event}, event {d.event_id})")
    else:
        console.print(f"Queued {count} {status} {'delivery' if count == 1 else 'deliveries'} again")


def emit(
    event: Annotated[str, typer.Argument(help="Event name.")],
    account: Annotated[str, typer.Option(help="Account to publish for.")],
    data: Annotated[
        str | None, typer.Option(help="The event's data as JSON (default: a sample).")
    ] = None,
    pbx_id: Annotated[
        str | None,
        typer.Option(help="The event's pbx_id (default: the data's id field the catalog names)."),
    ] = None,
    idempotency_key: Annotated[str | None, typer.Option()] = None,
    json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Publish one event from a shell, as the telephony core would."""
    import random

    import orjson

    from callhook.events import sample_publish_request
    from callhook.publish import parse_event

    with platform(database_url) as p:
        if data is None:
            sample = sample_publish_request(event, random.Random(), now=p.clock.now())
            item: dict[str, Any] = {
                "event": event,
                "pbx_id": sample["pbx_id"],
                "data": sample["data"],
            }
        else:
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise fail("--data is not valid JSON") from exc
            item = {"event": event, "data": parsed}
            # The catalog says which data field the pbx_id equals (validated with the rest).
            from callhook.events.models import PBX_ID_FIELD

            field = PBX_ID_FIELD.get(event)
            own_id = parsed.get(field) if field and isinstance(parsed, dict) else None
            if isinstance(own_id, str):
                item["pbx_id"] = own_id
        if pbx_id is not None:
            item["pbx_id"] = pbx_id
        item["account_id"] = account
        if idempotency_key:
            item["idempotency_key"] = idempotency_key
        result = p.publisher.publish([parse_event(item)])[0]
    if json:
        print_json(result.as_json())
    elif result.skip_reason:
        console.print(
            f"Recorded {result.id} but not delivered: {result.skip_reason}", soft_wrap=True
        )
    else:
        console.print(
            f"Published {result.id} → delivery {result.delivery_id or '(duplicate)'}",
            soft_wrap=True,
        )
