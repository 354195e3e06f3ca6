"""``callhook events``: the event catalog from the command line (schema, samples, reference)."""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Annotated

import typer

from callhook.cli.common import command_group

app = command_group("events", "The event catalog: names, JSON Schema, sample payloads.")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


def _parse_time(value: str) -> datetime:
    from callhook.core import times

    try:
        return times.parse_rfc3339(value)
    except times.TimeInvalid as exc:
        raise _fail(f"--at {exc}, got '{value}'") from None


@app.command("list")
def list_events() -> None:
    """Print every event name with its description."""
    from callhook.events import ALL_EVENTS, DESCRIPTIONS

    width = max(map(len, ALL_EVENTS))
    for name in ALL_EVENTS:
        typer.echo(f"{name:<{width}}  {DESCRIPTIONS[name]}")


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of events and deliveries.

    Event payloads, publish requests and delivery bodies.
    """
    from callhook.events import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


@app.command("sample")
def sample(
    event: Annotated[str, typer.Argument(help="Event name, e.g. incoming_call_start.")],
    account: Annotated[
        str | None, typer.Option("--account", help="Add this account_id to the request.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed for reproducible output.")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="When the event happens (RFC 3339); default now.")
    ] = None,
) -> None:
    """Print a realistic, valid publish request for EVENT as JSON."""
    from callhook.core.clock import SystemClock
    from callhook.errors import CallhookError
    from callhook.events import ALL_EVENTS, sample_publish_request

    if event not in ALL_EVENTS:
        raise _fail(f"unknown event '{event}'. Valid events: {', '.join(ALL_EVENTS)}.")
    now = _parse_time(at) if at is not None else SystemClock().now()
    # Unseeded runs draw from the OS; the CLI is an edge, so choosing randomness here is fine.
    rng = random.Random(seed)
    try:
        request = sample_publish_request(event, rng, now=now, account_id=account)
    except CallhookError as exc:
        raise _fail(exc.message) from exc
    typer.echo(json.dumps(request, indent=2, ensure_ascii=False))


@app.command("docs")
def docs() -> None:
    """Print the Markdown event reference.

    docs/events.md is this output.
    """
    from callhook.events.docs import render_markdown

    typer.echo(render_markdown(), nl=False)
