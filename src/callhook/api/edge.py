"""Resource limits at the HTTP edge: what a client may make the server hold, and for how long.

uvicorn's ``httptools`` protocol buffers a request head without limit (a 64 MiB header was
parsed and answered), waits forever for a head or a body that trickles in, and accepts any
number of connections. ``EdgeProtocol`` is that protocol with every client-controlled dimension
bounded (``EdgeLimits``, from ``Settings``), answering in the spec 002 error envelope:

========================================  ======  ========================================
request target longer than ``max_url_bytes``        414     while the target arrives
head (request line + headers) over ``max_header_bytes``  431  counted on the wire, before parsing
more than ``max_header_count`` header fields         431
declared ``Content-Length`` over ``max_body_bytes``  413     before the application runs
a chunked body growing past ``max_body_bytes``       413
head not complete ``header_timeout`` s after it      408     (an idle connection is closed
  began (or after the connection / last response)            silently)
body not complete ``body_timeout`` s after the head  408     (only while the server reads)
more than ``max_connections`` connections open       503     ``Retry-After: 1``
========================================  ======  ========================================

Each answer closes the connection. The statuses come from ``callhook.api.errors`` like every
other error (this module raises ``callhook.errors`` exceptions), and each rejection is counted
and logged as the application's are. Routes keep their own, smaller limits (ingest's body is
``Settings.max_body_bytes``; API v2 takes 16 KiB and 8 KiB of headers).

The class is built per app by ``edge_protocol`` and handed to ``uvicorn.Config(http=...)``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from callhook.api.errors import edge_response
from callhook.core.clock import Clock, rfc3339_seconds
from callhook.errors import (
    CallhookError,
    HeadersTooLarge,
    InvalidRequest,
    PayloadTooLarge,
    RequestTimeout,
    Unavailable,
    URITooLong,
)
from callhook.settings import Settings


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """Bounds on what one client may send (bytes, counts, seconds)."""

    max_url_bytes: int = 8 * 1024
    max_header_bytes: int = 32 * 1024
    max_header_count: int = 100
    max_body_bytes: int = 256 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            max_url_bytes=settings.max_url_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            max_body_bytes=settings.max_body_bytes,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            max_connections=settings.max_connections,
        )


#: After an answer that leaves part of the request unread, the connection stays open this long
#: (and for at most this many more bytes, discarded unparsed) with our side shut for writing:
#: closing at once would make the kernel reset it, and a client still sending its request
#: would lose the answer (nginx calls this a lingering close).
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


class _Rejected(Exception):
    """Raised from a parser callback to stop parsing; the reason is in ``_rejection``."""


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``limits`` enforced (see the module docstring)."""

    limits: ClassVar[EdgeLimits] = EdgeLimits()
    clock: ClassVar[Clock | None] = None
    on_reject: ClassVar[Callable[[int, str, str], None] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._url_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._rejection: CallhookError | None = None
        self._done = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._lingering = False
        self._discarded = 0

    # --- connection ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._answer(
                Unavailable("Too many connections; retry shortly.", retry_after=1), path=""
            )
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self._done = True
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self.transport.close()
            return
        while data and not self._done:
            if not self._in_head:
                self._feed(data)
                return
            if self._head_timer is None:
                self._arm_head_timer()
            # Never hand the parser more head than allowed: it would buffer all of it.
            room = self.limits.max_header_bytes - self._head_bytes
            if room <= 0:
                self._answer(HeadersTooLarge("Request header fields too large."))
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            self._feed(piece)

    def _feed(self, data: bytes) -> None:
        """uvicorn's ``data_received``, with our answers to what the parser refuses."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._done:
                return
            rejection, self._rejection = self._rejection, None
            self._answer(rejection or InvalidRequest("Invalid HTTP request."))

    # --- parser callbacks ---------------------------------------------------------------------
    def _reject(self, error: CallhookError) -> None:
        self._rejection = error
        raise _Rejected

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._url_bytes = 0
        self._header_count = 0
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.max_url_bytes:
            self._reject(
                URITooLong(f"Request target too long: at most {self.limits.max_url_bytes} bytes.")
            )
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            self._reject(
                HeadersTooLarge(
                    f"Too many request header fields: at most {self.limits.max_header_count}."
                )
            )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        declared = self._declared_length()
        if declared is not None and declared > self.limits.max_body_bytes:
            self._reject(self._too_large())  # still "in the head": no cycle of its own yet
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_too_slow)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            self._reject(self._too_large())
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()
        # The next request's head starts now; its clock starts when a response is done or its
        # first byte arrives (``data_received``), so a slow application does not count.
        self._in_head = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._in_head and not self._done and not self.transport.is_closing():
            self._cancel_head_timer()
            self._arm_head_timer()

    # --- timers -------------------------------------------------------------------------------
    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._done or not self._in_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # the server is still answering; the clock restarts when it is done
        if self._head_bytes == 0:
            self._done = True
            self.transport.close()  # idle: nothing to answer
            return
        self._answer(RequestTimeout("Request headers not received in time."))

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self._done or self._in_head:
            return
        if self.flow.read_paused:
            # We stopped reading (the application has not taken the body yet): not the
            # client's delay.
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_too_slow)
            return
        self._answer(RequestTimeout("Request body not received in time."))

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()

    # --- answers ------------------------------------------------------------------------------
    def _declared_length(self) -> int | None:
        for name, value in self.headers or ():
            if name == b"content-length":
                return int(value) if value.strip().isdigit() else None
        return None

    def _path(self) -> str:
        """The request's path as far as it is known (it may be cut short)."""
        try:
            raw = httptools.parse_url(self.url).path or b""
        except (AttributeError, httptools.HttpParserInvalidURLError):
            return ""
        return raw.decode("latin-1")

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request body exceeds {self.limits.max_body_bytes // 1024} KiB.")

    def _answer(self, error: CallhookError, *, path: str | None = None) -> None:
        """Answer ``error`` in the envelope (unless a response has begun) and close."""
        self._done = True
        self._cancel_timers()
        cycle = self.cycle
        busy = cycle is not None and not cycle.response_complete
        if self._in_head:
            # A new request's head: ``cycle`` is the previous request's. If that one is still
            # being answered (pipelining), ours cannot go out before it: just close.
            can_answer = not busy
        else:
            can_answer = cycle is not None and not cycle.response_started
            if busy and cycle is not None:
                # The application now sees a disconnect; whatever it sends is dropped.
                cycle.disconnected = True
                cycle.message_event.set()
        if can_answer and not self.transport.is_closing():
            if path is None:
                path = self._path()
            now = rfc3339_seconds(self.clock.now()) if self.clock is not None else ""
            request_id = "req_" + secrets.token_hex(12)
            self.transport.write(
                edge_response(
                    error,
                    path=path[:256],
                    timestamp=now,
                    request_id=request_id,
                    client=self.client[0] if self.client else None,
                    count=type(self).on_reject,
                )
            )
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self._lingering = True
                self.flow.resume_reading()
                self.loop.call_later(LINGER_SECONDS, self.transport.close)
                return
        self.transport.close()


def edge_protocol(
    limits: EdgeLimits,
    *,
    clock: Clock,
    on_reject: Callable[[int, str, str], None] | None = None,
) -> type[EdgeProtocol]:
    """An ``EdgeProtocol`` class bound to ``limits`` and ``clock`` (for ``uvicorn.Config``'s
    ``http``). ``on_reject(status, path, message)`` is called for every rejection."""
    return type(
        "BoundEdgeProtocol",
        (EdgeProtocol,),
        {
            "limits": limits,
            "clock": clock,
            "on_reject": staticmethod(on_reject) if on_reject else None,
        },
    )


def server_config(app: FastAPI, settings: Settings, **options: Any) -> uvicorn.Config:
    """The ``uvicorn.Config`` of every Callhook API listener (``serve``, ``demo``): httptools
    behind ``EdgeProtocol`` with the settings' limits, rejections counted in the app's
    metrics. ``options`` are passed on (host, port, loop, log level …)."""
    platform = app.state.platform

    def count(status: int, _path: str, _message: str) -> None:
        platform.metrics.rejected.labels(str(status)).inc()

    protocol = edge_protocol(
        EdgeLimits.from_settings(settings), clock=platform.clock, on_reject=count
    )
    return uvicorn.Config(app, http=protocol, **options)
