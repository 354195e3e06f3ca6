"""The demo receiver of ``make run``: a local endpoint that verifies every delivery it gets.

It stands in for a customer's server so a first run shows events arriving end to end. It listens
on plain HTTP on loopback, which only the development setting ``allow_unsafe_targets`` permits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from callhook.listeners import LIMITS, ListenerLimits, limited_app, read_body
from callhook.signing import WebhookVerificationError, verify_callhook, verify_standard

MAX_SEEN = 10_000


@dataclass
class DemoReceiver:
    """Counts what arrives; ``secrets`` returns the secrets currently valid for the account."""

    secrets: Callable[[], list[str]]
    on_delivery: Callable[[str, bool, bytes], None] | None = None
    received: int = 0
    rejected: int = 0
    #: The last ``MAX_SEEN`` delivery ids (bounded: the demo runs for as long as you like).
    seen_ids: dict[str, None] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        headers = dict(request.headers)
        now = time.time()
        try:
            known = self.secrets()
            verify_callhook(headers, body, known, now=now)
            verify_standard(headers, body, known, now=now)
        except WebhookVerificationError as exc:
            self.rejected += 1
            if self.on_delivery:
                self.on_delivery(request.headers.get("X-Webhook-Event", "?"), False, body)
            return web.json_response({"error": str(exc)}, status=401)
        self.received += 1
        self.seen_ids[request.headers.get("webhook-id", "")] = None
        while len(self.seen_ids) > MAX_SEEN:
            del self.seen_ids[next(iter(self.seen_ids))]
        if self.on_delivery:
            self.on_delivery(request.headers.get("X-Webhook-Event", "?"), True, body)
        return web.json_response({"received": True})

    def app(self, limits: ListenerLimits = LIMITS) -> web.Application:
        application = limited_app(limits)
        application.router.add_post("/webhook", self.handle)
        return application
