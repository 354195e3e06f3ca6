"""One attempt of a claimed job: sign, send, classify, decide the retry, count and log it."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from callhook.core import outcome as outcomes
from callhook.core import retry
from callhook.core.clock import Clock
from callhook.core.ids import Randomness
from callhook.delivery.sender import Sender, headers_json, request_headers
from callhook.metrics import Metrics
from callhook.store.queue import AttemptResult, ClaimedJob

log = logging.getLogger("callhook.delivery")


class Attempts:
    """Makes attempts for one worker; ``make`` never raises for what an endpoint does."""

    def __init__(self, *, clock: Clock, rng: Randomness, metrics: Metrics | None) -> None:
        self._clock = clock
        self._rng = rng
        self._metrics = metrics
        self._counted: dict[tuple[str, str], Any] = {}  # metric children by (verdict, event)
        self.made = 0
        self.delivered = 0

    async def make(self, job: ClaimedJob, sender: Sender) -> AttemptResult:
        """One signed POST of ``job`` (or an immediate failure if its integration cannot
        receive), with the retry decision taken."""
        if job.url is None or not job.enabled or not job.secrets:
            outcome = outcomes.failure(
                "integration_disabled",
                "the integration has no URL or is disabled",
                retryable=False,
            )
            now = self._clock.now()
            return self.result(job, outcome, started_at=now, duration_ms=0.0)
        headers = request_headers(
            body=job.body,
            event_id=job.event_id,
            event=job.event,
            attempt=job.attempt_number,
            timestamp=int(self._clock.now().timestamp()),
            secrets=job.secrets,
        )
        sent = await sender.send(url=job.url, body=job.body, headers=headers)
        return self.result(
            job,
            sent.outcome,
            started_at=sent.started_at,
            duration_ms=sent.duration_ms,
            response_body=sent.response_body,
            retry_after=sent.retry_after,
            headers=headers_json(sent.request_headers),
        )

    def result(
        self,
        job: ClaimedJob,
        outcome: outcomes.Outcome,
        *,
        started_at: datetime,
        duration_ms: float,
        response_body: str | None = None,
        retry_after: str | None = None,
        headers: str | None = None,
    ) -> AttemptResult:
        next_at = None
        if not outcome.delivered and outcome.retryable:
            now = self._clock.now()
            wait = (
                retry.parse_retry_after(retry_after, now=now)
                if outcome.honours_retry_after
                else None
            )
            next_at = retry.next_attempt_at(
                policy=job.retry_policy,
                attempt_number=job.attempt_number,
                created_at=job.window_start,
                now=now,
                rng=self._rng,
                retry_after=wait,
            )
        result = AttemptResult(
            job=job,
            started_at=started_at,
            duration_ms=duration_ms,
            delivered=outcome.delivered,
            status_code=outcome.status_code,
            response_body=response_body,
            error_class=outcome.error_class,
            error_message=outcome.message,
            next_attempt_at=next_at,
            request_headers=headers,
        )
        self.observe(result)
        return result

    def observe(self, res: AttemptResult) -> None:
        if res.delivered:
            verdict = "delivered"
        elif res.next_attempt_at is not None:
            verdict = "retrying"
        else:
            verdict = "failed"
        self.made += 1
        self.delivered += res.delivered
        if self._metrics is not None:
            counter = self._counted.get((verdict, res.job.event))
            if counter is None:
                counter = self._metrics.deliveries.labels(verdict, res.job.event)
                self._counted[(verdict, res.job.event)] = counter
            counter.inc()
            self._metrics.attempt_seconds.observe(res.duration_ms / 1000)
        if not log.isEnabledFor(logging.INFO):
            return
        log.info(
            "attempt",
            extra={
                "delivery_id": res.job.delivery_id,
                "event_id": res.job.event_id,
                "account_id": res.job.account_id,
                "event": res.job.event,
                "attempt": res.job.attempt_number,
                "result": verdict,
                "status_code": res.status_code,
                "error_class": res.error_class,
                "error": res.error_message,
                "duration_ms": round(res.duration_ms, 2),
                "next_attempt_at": res.next_attempt_at.isoformat() if res.next_attempt_at else None,
            },
        )
