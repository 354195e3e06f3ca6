"""The request gate every framework adapter shares. Standard library only.

An adapter calls :meth:`Gate.check_headers` before reading the body (an unsigned or stale
request is refused without buffering it), then :meth:`Gate.admit` with the raw body. Both raise
:class:`Rejection` carrying the HTTP status and a small JSON body to answer with:

* 401 — the signature does not verify (``WebhookVerificationError``);
* 400 — it verifies but the body is not a delivery (``MalformedPayload``);
* 200 — a duplicate, when a :class:`Deduplicator` is configured (already processed; the
  sender must not retry, so it is acknowledged, and the app never sees it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from callhook.receiver.dedup import Deduplicator
from callhook.receiver.event import Event, MalformedPayload, parse
from callhook.receiver.verify import Secrets, precheck, secret_list, verify
from callhook.signing import DEFAULT_TOLERANCE, WebhookVerificationError

logger = logging.getLogger("callhook.receiver")

#: What a handler answers once an event is accepted for processing (spec 004's shape).
ACCEPTED: dict[str, object] = {"received": True}


class Rejection(Exception):
    """Answer the request with ``status`` and JSON ``body`` instead of calling the app."""

    def __init__(self, status: int, body: dict[str, object]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Gate:
    """Verification settings for one endpoint: secret(s), tolerance, optional dedup, clock.

    Construction raises :class:`~callhook.errors.InvalidSecret` for a missing, malformed or weak
    secret (so every adapter refuses it when the app starts, not on the first request)."""

    secret: Secrets
    tolerance: float = DEFAULT_TOLERANCE
    dedup: Deduplicator | None = None
    clock: Callable[[], float] = time.time
    _secrets: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._secrets = secret_list(self.secret)

    def check_headers(self, headers: Mapping[str, str]) -> None:
        """Refuse (401) a request whose headers alone already fail."""
        try:
            precheck(headers, tolerance=self.tolerance, now=self.clock())
        except WebhookVerificationError as exc:
            logger.warning("webhook rejected before reading the body: %s", exc)
            raise Rejection(401, {"error": type(exc).__name__, "detail": str(exc)}) from exc

    def admit(self, headers: Mapping[str, str], body: bytes) -> Event:
        """Verify, parse and (optionally) deduplicate; return the event for the app."""
        try:
            verify(headers, body, self._secrets, tolerance=self.tolerance, now=self.clock())
        except WebhookVerificationError as exc:
            logger.warning("webhook signature rejected: %s", exc)
            raise Rejection(401, {"error": type(exc).__name__, "detail": str(exc)}) from exc
        try:
            event = parse(body)
        except MalformedPayload as exc:
            logger.warning("webhook body malformed: %s", exc)
            raise Rejection(400, {"error": "MalformedPayload", "detail": str(exc)}) from exc
        logger.info(
            "webhook received",
            extra={"event": event.event, "pbx_id": event.pbx_id, "event_id": event.id},
        )
        if self.dedup is not None and not self.dedup.first_time(event, now=self.clock()):
            logger.info("webhook duplicate ignored: %s %s", event.event, event.pbx_id)
            raise Rejection(200, {"received": True, "duplicate": True})
        return event

    def release(self, event: Event) -> None:
        """Undo the dedup claim (the app failed before acknowledging)."""
        if self.dedup is not None:
            self.dedup.release(event)
