"""A receiver behaviour that checks per-call order as it arrives (``core.ordering.OrderAudit``):
random latency, failures decided by a seeded hash of (call, sequence, attempt), and the audit told
when a delivery finished from Callhook's side (2xx, or a failure that will not be retried)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from callhook.core import ordering


@dataclass
class OrderedBehaviour:
    """``fail_rate``: share of attempts answered 500; ``final_failures``: a 500 ends the delivery
    (retry policy ``none``), so it finishes; ``poison``: (call, sequence) answered 500 always."""

    seed: int
    fail_rate: float = 0.0
    latency_ms: tuple[float, float] = (1.0, 20.0)
    final_failures: bool = False
    poison: set[tuple[str, int]] = field(default_factory=set)
    audit: ordering.OrderAudit = field(default_factory=lambda: ordering.OrderAudit(expected={}))
    attempts: dict[tuple[str, int], int] = field(default_factory=dict)

    def _draw(self, *parts: object) -> float:
        digest = hashlib.sha256(repr((self.seed, *parts)).encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        call, seq = body.get("call_id"), body.get("sequence")
        if call is None:
            return web.json_response({"received": True})
        previous = request.headers.get(ordering.PREVIOUS_HEADER)
        assert request.headers[ordering.SEQUENCE_HEADER] == str(seq)
        self.audit.arrive(ordering.Receipt(call, seq, int(previous) if previous else None))
        n = self.attempts[(call, seq)] = self.attempts.get((call, seq), 0) + 1
        low, high = self.latency_ms
        await asyncio.sleep((low + (high - low) * self._draw("latency", call, seq, n)) / 1000)
        failed = (call, seq) in self.poison or self._draw("fail", call, seq, n) < self.fail_rate
        if not failed or self.final_failures:
            # Finished from Callhook's side once this answer is recorded; the next event of the
            # call cannot be sent before then, so marking it now is exact.
            self.audit.finish(call, seq)
        if failed:
            return web.Response(status=500, text="flaky")
        return web.json_response({"received": True})

    def expected(self) -> Mapping[str, frozenset[int]]:
        """The sequences each call has for this endpoint (set by the test)."""
        assert self.audit.expected is not None
        return self.audit.expected

    def finished(self, call: str, seq: int) -> bool:
        return seq in self.audit.finished.get(call, set())
