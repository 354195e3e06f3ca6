"""Limits of the development listeners (aiohttp): the demo receiver of ``make run`` and
``callhook listen``. Both are servers a stranger can reach if bound beyond loopback, so what a
client may send is bounded here as at the API's edge (``callhook.api.edge``):

============================  =============  ============================================
request line (method, URL)    8 KiB          400 (aiohttp's parser; it has no 414/431)
one header field              8 KiB          400
header fields                 100            400
body                          1 MiB          413 (deliveries are far smaller)
head                          10 s           connection closed (from its opening or the
                                             last answer, whatever trickles in meanwhile)
body                          30 s           408
============================  =============  ============================================
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    max_line_bytes: int = 8 * 1024
    max_field_bytes: int = 8 * 1024
    max_headers: int = 100
    max_body_bytes: int = 1024 * 1024
    head_timeout: float = 10.0
    body_timeout: float = 30.0

    def server_options(self) -> dict[str, Any]:
        """Keyword arguments for ``web.AppRunner`` / ``web.run_app``."""
        return {
            "keepalive_timeout": self.head_timeout,
            "max_line_size": self.max_line_bytes,
            "max_field_size": self.max_field_bytes,
            "max_headers": self.max_headers,
        }


LIMITS = ListenerLimits()
_LIMITS_KEY = web.AppKey("callhook_listener_limits", ListenerLimits)


def limited_app(limits: ListenerLimits = LIMITS) -> web.Application:
    """An application that refuses bodies over ``limits.max_body_bytes`` (413)."""
    app = web.Application(client_max_size=limits.max_body_bytes)
    app[_LIMITS_KEY] = limits
    return app


async def read_body(request: web.Request) -> bytes:
    """The body, within the app's body deadline: ``web.HTTPRequestTimeout`` (408) when it does
    not arrive in time, ``web.HTTPRequestEntityTooLarge`` (413) when it is too large."""
    limits = request.app.get(_LIMITS_KEY, LIMITS)
    try:
        async with asyncio.timeout(limits.body_timeout):
            return await request.read()
    except TimeoutError as exc:
        raise web.HTTPRequestTimeout(text="request body not received in time") from exc
