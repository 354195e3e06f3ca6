"""``callhook listen``: a local receiver for developing an endpoint.

Every request is printed — nothing is dropped silently: verified deliveries as a panel with the
pretty JSON body, bad signatures in red with the reason (answered 401), malformed bodies (400),
other methods (405). Repeats of an event id or of ``event:pbx_id`` are flagged as duplicates and
call events arriving with a ``sequence`` lower than one already seen for that call are flagged
out of order. With ``--forward-to`` each verified delivery is re-sent, same headers and bytes, to
the developer's app and that app's answer is returned to the sender.
"""

from __future__ import annotations

import ssl
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from rich.console import Console
from rich.json import JSON
from rich.panel import Panel

from callhook.core import ordering
from callhook.listeners import LIMITS, ListenerLimits, limited_app, read_body
from callhook.receiver.event import Event, MalformedPayload, parse
from callhook.receiver.explain import explain
from callhook.receiver.verify import secret_list

#: Headers that describe one hop, not the delivery; never forwarded.
HOP_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade"}
)


@dataclass
class ListenState:
    """What the listener remembers to flag duplicates and ordering problems."""

    ids: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)
    last_sequence: dict[str, int] = field(default_factory=dict)

    def flags(self, event: Event, previous_sequence: str | None = None) -> list[str]:
        """Warnings for ``event`` (and remember it); ``previous_sequence`` is the request's
        ``X-Webhook-Previous-Sequence`` (docs/receiving.md §4), if any."""
        out: list[str] = []
        duplicate = event.id in self.ids
        if duplicate:
            out.append(f"duplicate: event id {event.id} was already received")
        elif event.dedup_key in self.keys:
            out.append(
                f"duplicate: {event.dedup_key} was already received as {self.keys[event.dedup_key]}"
            )
        self.ids.add(event.id)
        self.keys.setdefault(event.dedup_key, event.id)
        if event.call_id is not None and event.sequence is not None:
            last = self.last_sequence.get(event.call_id)
            if duplicate:
                pass  # a re-send of an event already flagged as such, not a second problem
            elif previous_sequence is not None:
                out.append(
                    f"sent out of order: call {event.call_id} sequence {event.sequence} went out "
                    f"before sequence {previous_sequence} finished (its head-of-line bound passed);"
                    " fetch the call's events to reconcile"
                )
            elif last is not None and event.sequence <= last:
                out.append(
                    f"out of order: call {event.call_id} sequence {event.sequence} "
                    f"arrived after {last}"
                )
            elif last is not None and event.sequence > last + 1:
                out.append(
                    f"gap: call {event.call_id} jumped from sequence {last} to {event.sequence} "
                    "(missing deliveries, or events you do not subscribe to)"
                )
            self.last_sequence[event.call_id] = max(last or 0, event.sequence)
        return out


class Listener:
    """The aiohttp handler and its state. Raises ``InvalidSecret`` for an unusable or weak
    secret, before anything listens."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        console: Console,
        forward_to: str | None = None,
        tolerance: float = 300,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.secrets = secret_list(list(secrets))
        self.console = console
        self.forward_to = forward_to
        self.tolerance = tolerance
        self.ssl_context = ssl_context
        self.state = ListenState()
        self.session: ClientSession | None = None

    def say(self, renderable: object) -> None:
        self.console.print(renderable)
        self.console.file.flush()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await read_body(request)
        where = f"{request.method} {request.path_qs}"
        if request.method != "POST":
            self.say(f"[yellow]· {where}: not a delivery (405)[/]")
            return web.json_response({"error": "POST only"}, status=405)
        result = explain(request.headers, body, self.secrets, tolerance=self.tolerance)
        if not result.verified:
            lines = [f"[red]✗ {m.message}[/]" for m in result.findings if m.level == "problem"]
            self.say(
                Panel(
                    "\n".join(lines) or str(result.error),
                    title=f"[bold red]BAD SIGNATURE[/] {where} → 401",
                    subtitle=str(result.error),
                    border_style="red",
                )
            )
            return web.json_response({"error": "invalid signature"}, status=401)
        try:
            event = parse(body)
        except MalformedPayload as exc:
            self.say(f"[red]✗ {where}: signature ok but body malformed: {exc} → 400[/]")
            return web.json_response({"error": str(exc)}, status=400)
        flags = self.state.flags(event, request.headers.get(ordering.PREVIOUS_HEADER))
        title = f"[bold]{event.event}[/] {event.id}"
        if event.sequence is not None:
            title += f"  call {event.call_id} #{event.sequence}"
        if not event.is_known:
            flags.append(f"unknown event type {event.event!r} (newer than this SDK)")
        attempt = request.headers.get("X-Webhook-Attempt", "?")
        subtitle = f"✓ {result.scheme} signature · attempt {attempt} · pbx_id {event.pbx_id}"
        self.say(
            Panel(
                JSON(body.decode("utf-8", "replace")),
                title=title,
                subtitle=subtitle,
                border_style="yellow" if flags else "green",
            )
        )
        for flag in flags:
            self.say(f"[bold yellow]⚠ {flag}[/]")
        if self.forward_to is None:
            return web.json_response({"received": True})
        return await self.forward(request, body)

    async def forward(self, request: web.Request, body: bytes) -> web.StreamResponse:
        assert self.forward_to is not None
        if self.session is None:
            self.session = ClientSession(timeout=ClientTimeout(total=10))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        started = time.monotonic()
        try:
            async with self.session.post(
                self.forward_to,
                data=body,
                headers=headers,
                ssl=self.ssl_context if self.ssl_context is not None else True,
                allow_redirects=False,
            ) as response:
                answer = await response.read()
                status = response.status
                content_type = response.headers.get("Content-Type", "application/octet-stream")
        except (ClientError, TimeoutError, OSError) as exc:
            self.say(f"[red]↪ forward to {self.forward_to} failed: {type(exc).__name__} → 502[/]")
            return web.json_response({"error": "forward failed"}, status=502)
        ms = (time.monotonic() - started) * 1000
        style = "green" if 200 <= status < 300 else "red"
        self.say(f"[{style}]↪ forwarded to {self.forward_to} → {status} ({ms:.0f} ms)[/]")
        return web.Response(body=answer, status=status, headers={"Content-Type": content_type})

    async def close(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()


def make_app(listener: Listener, limits: ListenerLimits = LIMITS) -> web.Application:
    app = limited_app(limits)
    app.router.add_route("*", "/{tail:.*}", listener.handle)
    app.on_cleanup.append(listener.close)
    return app


def serve(
    *,
    host: str,
    port: int,
    secrets: Sequence[str],
    forward_to: str | None,
    tolerance: float,
    ssl_context: ssl.SSLContext | None,
) -> None:
    """Run until interrupted."""
    console = Console(file=sys.stdout, highlight=False)
    listener = Listener(
        secrets,
        console=console,
        forward_to=forward_to,
        tolerance=tolerance,
        ssl_context=ssl_context,
    )
    target = f", forwarding to {forward_to}" if forward_to else ""
    listener.say(f"[bold]Listening on http://{host}:{port}/[/]{target} (Ctrl-C to stop)")
    web.run_app(make_app(listener), host=host, port=port, print=None, **LIMITS.server_options())
