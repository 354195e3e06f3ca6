"""Developer tools for people who *receive* Callhook webhooks: ``trigger``, ``listen``, ``verify``.

* ``callhook trigger EVENT --url URL --secret S`` sends one realistic, correctly signed sample;
  ``callhook trigger call --scenario answered --url URL --secret S`` plays a whole call's events
  in order with realistic gaps (``--speed 10`` plays ten times faster).
* ``callhook listen --port P --secret S [--forward-to URL]`` runs a local receiver that verifies,
  pretty-prints and flags every delivery (see :mod:`callhook.cli.devtools_listen`).
* ``callhook verify --secret S --headers FILE --body FILE`` explains why a captured request does
  or does not verify.

``register(app)`` adds the three commands to the root Typer app.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from callhook.cli.common import make_console

if TYPE_CHECKING:
    import ssl

    from rich.console import Console

SecretOpt = Annotated[
    list[str],
    typer.Option(
        "--secret",
        help="Signing secret (whsec_…). Repeat during a rotation.",
        envvar="CALLHOOK_WEBHOOK_SECRET",
    ),
]
TRIGGER_TIMEOUT = 2.0  # seconds: the sender's own limit (spec 000), so slow endpoints show up


def checked_secrets(secrets: Sequence[str]) -> list[str]:
    """The ``--secret`` values, or a usage error (exit 2) naming what is wrong with them: an
    empty, malformed or weak secret (key material under 16 bytes) is refused by every command,
    as the receiver SDK refuses it."""
    from callhook.errors import InvalidSecret
    from callhook.receiver.verify import secret_list

    try:
        return secret_list(list(secrets))
    except InvalidSecret as exc:
        raise typer.BadParameter(exc.message, param_hint="--secret") from exc


def register(app: typer.Typer) -> None:
    """Add ``trigger``, ``listen`` and ``verify`` to the root app."""
    app.command("trigger")(trigger)
    app.command("listen")(listen)
    app.command("verify")(verify_capture)


# --- trigger ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery the trigger sends, ``offset`` seconds after the first."""

    offset: float
    event: str
    body: bytes


def build_deliveries(
    event: str,
    scenario: str | None,
    rng: random.Random,
    *,
    now: datetime,
    account_id: str = "acc_local",
) -> list[Outgoing]:
    """Delivery bodies exactly as Callhook would POST them, from the event catalog's samples.

    ``event == "call"`` plays ``scenario``; anything else is one sample of that event. Call
    events get ``call_id`` and a per-call ``sequence`` (1, 2, 3… in publish order).
    """
    from callhook.core.clock import rfc3339
    from callhook.core.ids import new_id
    from callhook.events import (
        ALL_EVENTS,
        SCENARIOS,
        call_id_of,
        call_scenario,
        sample_publish_request,
    )

    if event == "call":
        if scenario not in SCENARIOS:
            raise typer.BadParameter(
                f"--scenario must be one of {', '.join(SCENARIOS)}", param_hint="--scenario"
            )
        items = [
            (s.offset, s.event, s.pbx_id, s.data) for s in call_scenario(scenario, rng, start=now)
        ]
    elif event in ALL_EVENTS:
        req = sample_publish_request(event, rng, now=now)
        items = [(0.0, req["event"], req["pbx_id"], req["data"])]
    else:
        raise typer.BadParameter(
            f"unknown event {event!r}; one of: call, {', '.join(ALL_EVENTS)}", param_hint="EVENT"
        )
    sequences: dict[str, int] = {}
    out: list[Outgoing] = []
    for offset, name, pbx_id, data in items:
        created = now + timedelta(seconds=offset)
        body: dict[str, Any] = {
            "id": new_id("evt", created, rng),
            "event": name,
            "pbx_id": pbx_id,
            "account_id": account_id,
            "created_at": rfc3339(created),
        }
        call_id = call_id_of(name, pbx_id, data)
        if call_id is not None:
            sequences[call_id] = sequences.get(call_id, 0) + 1
            body["call_id"] = call_id
            body["sequence"] = sequences[call_id]
        body["data"] = data
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        out.append(Outgoing(offset, name, raw))
    return out


def client_ssl(insecure: bool, ca_bundle: Path | None) -> ssl.SSLContext:
    """Verify certificates (system store or ``ca_bundle``) unless ``insecure``."""
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _send_all(
    deliveries: Sequence[Outgoing],
    url: str,
    secrets: Sequence[str],
    speed: float,
    ctx: ssl.SSLContext,
    console: Console,
) -> int:
    import asyncio

    import aiohttp

    from callhook.delivery.sender import request_headers

    failures = 0
    timeout = aiohttp.ClientTimeout(total=TRIGGER_TIMEOUT)
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for item in deliveries:
            delay = started + item.offset / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            event_id = json.loads(item.body)["id"]
            headers = request_headers(
                body=item.body,
                event_id=event_id,
                event=item.event,
                attempt=1,
                timestamp=int(time.time()),
                secrets=tuple(secrets),
            )
            sent = time.monotonic()
            try:
                async with session.post(
                    url, data=item.body, headers=headers, ssl=ctx, allow_redirects=False
                ) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                failures += 1
                console.print(f"[red]✗[/] {item.event:<40} {event_id}  {type(exc).__name__}: {exc}")
                continue
            ms = (time.monotonic() - sent) * 1000
            ok = 200 <= status < 300
            failures += not ok
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            console.print(f"{mark} {item.event:<40} {event_id}  → {status} ({ms:.0f} ms)")
    return failures


def trigger(
    event: Annotated[str, typer.Argument(help="An event name, or 'call' with --scenario.")],
    url: Annotated[str, typer.Option(help="Your endpoint, e.g. https://localhost:8000/webhook.")],
    secret: SecretOpt,
    scenario: Annotated[
        str | None, typer.Option(help="answered | missed-to-voicemail | chain-hunt | outbound")
    ] = None,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Play a call this many times faster.")
    ] = 1.0,
    insecure: Annotated[bool, typer.Option(help="Skip TLS certificate checks.")] = False,
    ca_bundle: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Trust this CA file.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed the sample generator.")] = None,
) -> None:
    """Send signed sample deliveries to your endpoint.

    Realistic, correctly signed samples of one event, or a whole call in order (like
    `stripe trigger`).
    """
    console = make_console(highlight=False)
    secret = checked_secrets(secret)
    rng = random.Random(seed)
    deliveries = build_deliveries(event, scenario, rng, now=datetime.now(UTC))
    ctx = client_ssl(insecure, ca_bundle)
    import asyncio

    failures = asyncio.run(_send_all(deliveries, url, secret, speed, ctx, console))
    if failures:
        console.print(f"[red]{failures} of {len(deliveries)} deliveries were not accepted[/]")
        raise typer.Exit(code=1)


# --- listen ----------------------------------------------------------------------------------
def listen(
    port: Annotated[int, typer.Option(help="Port to listen on.")],
    secret: SecretOpt,
    forward_to: Annotated[
        str | None, typer.Option(help="Also send each verified delivery to this URL.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    tolerance: Annotated[float, typer.Option(help="Timestamp tolerance, seconds.")] = 300,
    insecure: Annotated[bool, typer.Option(help="Skip TLS checks when forwarding.")] = False,
    ca_bundle: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
) -> None:
    """A local receiver that verifies each delivery.

    Pretty-prints and flags every delivery (bad signature, duplicate, out of order) and
    optionally forwards it to your app.
    """
    from callhook.cli.devtools_listen import serve

    secret = checked_secrets(secret)
    serve(
        host=host,
        port=port,
        secrets=secret,
        forward_to=forward_to,
        tolerance=tolerance,
        ssl_context=client_ssl(insecure, ca_bundle),
    )


# --- verify ----------------------------------------------------------------------------------
def read_headers(text: str) -> dict[str, str]:
    """Headers from a JSON object or ``Name: value`` lines (curl ``-v`` ``> `` prefixes and a
    request line are tolerated)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        obj = json.loads(stripped)
        if not isinstance(obj, dict):
            raise ValueError("the headers JSON must be an object")
        return {str(k): str(v) for k, v in obj.items()}
    headers: dict[str, str] = {}
    for line in text.splitlines():
        line = line.removeprefix("> ").strip()
        if not line or " HTTP/" in line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"not a 'Name: value' header line: {line[:60]!r}")
        headers[name.strip()] = value.strip()
    return headers


def _parse_now(value: str | None) -> float | None:
    if value is None:
        return None
    if value.isdigit():
        return float(value)  # Unix seconds, as in the signature headers
    from callhook.core import times

    try:
        return times.parse_rfc3339(value).timestamp()
    except times.TimeInvalid as exc:
        raise typer.BadParameter(f"must be Unix seconds, or {exc}", param_hint="--now") from None


STYLE = {"ok": "[green]✓[/]", "info": "[dim]·[/]", "problem": "[red]✗[/]"}


def verify_capture(
    secret: SecretOpt,
    headers: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Headers file.")],
    body: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Raw body file.")],
    now: Annotated[
        str | None, typer.Option(help="Check as of this time (Unix seconds or RFC 3339).")
    ] = None,
    tolerance: Annotated[float, typer.Option(help="Timestamp tolerance, seconds.")] = 300,
) -> None:
    """Explain whether a captured request verifies.

    Names the usual mistakes (a changed body, a stale capture, the wrong secret or key
    derivation). Exits 1 when it does not verify.
    """
    from callhook.receiver.explain import explain

    secret = checked_secrets(secret)
    console = make_console(highlight=False)
    try:
        captured = read_headers(headers.read_text("utf-8"))
    except ValueError as exc:
        console.print(f"[red]Cannot read {headers}: {exc}[/]")
        raise typer.Exit(code=2) from exc
    result = explain(captured, body.read_bytes(), secret, tolerance=tolerance, now=_parse_now(now))
    for finding in result.findings:
        console.print(f"{STYLE[finding.level]} {finding.message}")
    if result.verified:
        console.print(f"[bold green]VERIFIED[/] ({result.scheme} scheme)")
        return
    console.print(f"[bold red]NOT VERIFIED[/]: {result.error}")
    raise typer.Exit(code=1)
