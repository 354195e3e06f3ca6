"""The demo receiver of ``make run``: a local endpoint that verifies every delivery it gets.

It stands in for a customer's server so a first run shows events arriving end to end. It listens
on plain HTTP on loopback, which only the development setting ``allow_unsafe_targets`` permits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from callhook.signing import WebhookVerificationError, verify_callhook, verify_standard


@dataclass
class DemoReceiver:
    """Counts what arrives; ``secrets`` returns the secrets currently valid for the account."""

    secrets: Callable[[], list[str]]
    on_delivery: Callable[[str, bool, bytes], None] | None = None
    received: int = 0
    rejected: int = 0
    seen_ids: set[str] = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
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
        self.seen_ids.add(request.headers.get("webhook-id", ""))
        if self.on_delivery:
            self.on_delivery(request.headers.get("X-Webhook-Event", "?"), True, body)
        return web.json_response({"received": True})

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_post("/webhook", self.handle)
        return application
