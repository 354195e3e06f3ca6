"""The health side task: warnings and automatic disabling that fall due with time alone.

Attempts feed the endpoint state machine as they are recorded; nothing does when an endpoint
is failing and only its probes run, so every worker also looks every
``health_check_interval`` seconds for failing endpoints whose next warning or disable deadline
has come (``store.endpoint_health.check_due``; a row's ``next_check_at`` says when). Several
workers doing it at once is harmless: the check runs in a write transaction and a warning
already sent is not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from callhook.platform import Platform
from callhook.store import endpoint_health

log = logging.getLogger("callhook.delivery")


class HealthChecks:
    """``run(stop)`` checks deadlines every interval; ``check_once`` for tests."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._rules = endpoint_health.rules_from(platform.settings)

    def check_once(self) -> int:
        """Apply what has fallen due; how many transitions (and warnings) it made."""
        p = self._platform
        with p.db.write() as conn:
            done = endpoint_health.check_due(conn, now=p.clock.now(), rules=self._rules)
        for endpoint_id, t in done:
            p.metrics.endpoint_transition(t.before.value, t.after.value, t.cause.value)
            log.warning(
                "endpoint %s",
                t.cause.value,
                extra={"endpoint_id": endpoint_id, "after": t.after.value},
            )
        return len(done)

    async def run(self, stop: asyncio.Event) -> None:
        interval = max(self._platform.settings.health_check_interval, 0.05)
        while not stop.is_set():
            await asyncio.to_thread(self.check_once)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
