"""One attempt of a claimed job: sign, send, classify, decide the retry, count and log it.

Everything after the request leaves is text the endpoint controls (status line, headers in any
encoding, body bytes): none of it may keep the attempt from being recorded. The sender turns
what the endpoint does into an ``Outcome``; here an unusable ``Retry-After`` falls back to the
normal schedule (logged), and any failure of our own is recorded as ``internal_error`` on the
normal schedule (logged with its traceback) instead of escaping to the worker.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from callhook.core import ordering, retry, stored_headers
from callhook.core import outcome as outcomes
from callhook.core.clock import Clock, rfc3339_seconds
from callhook.core.ids import Randomness
from callhook.delivery.sender import Sender, request_headers
from callhook.events.names import TEST_EVENT
from callhook.metrics import Metrics
from callhook.store.queue import AttemptResult, ClaimedJob

log = logging.getLogger("callhook.delivery")


class Attempts:
    """Makes attempts for one worker. ``make`` never raises (short of cancellation): whatever
    the endpoint sends, and whatever fails in Callhook's own bookkeeping, ends as an
    ``AttemptResult`` to record, so no attempt can go unrecorded and leave its delivery to be
    re-sent when the lease runs out."""

    def __init__(self, *, clock: Clock, rng: Randomness, metrics: Metrics | None) -> None:
        self._clock = clock
        self._rng = rng
        self._metrics = metrics
        self._counted: dict[tuple[str, str], Any] = {}  # metric children by (verdict, event)
        self._per_endpoint: dict[tuple[str, str], Any] = {}  # by (endpoint label, verdict)
        self.made = 0
        self.delivered = 0

    async def make(self, job: ClaimedJob, sender: Sender) -> AttemptResult:
        """One signed POST of ``job``, with the retry decision taken — or, without sending, a
        failed result when it cannot or must not be sent (window over, integration disabled or
        without URL, no signing secret)."""
        now = self._clock.now()
        refusal = self.refusal(job, now)
        if refusal is not None:
            return self.result(job, refusal, started_at=now, duration_ms=0.0)
        try:
            assert job.url is not None  # refusal() said so
            headers = request_headers(
                body=job.body,
                event_id=job.event_id,
                event=job.event,
                attempt=job.attempt_number,
                timestamp=int(now.timestamp()),
                secrets=job.secrets,
            )
            if job.sequence is not None:
                headers[ordering.SEQUENCE_HEADER] = str(job.sequence)
            if job.previous_sequence is not None:
                headers[ordering.PREVIOUS_HEADER] = str(job.previous_sequence)
            sent = await sender.send(url=job.url, body=job.body, headers=headers)
            sent_headers = stored_headers.pack(
                sent.request_headers,
                event_id=job.event_id,
                event=job.event,
                attempt=job.attempt_number,
            )
        except Exception as exc:
            return self.crashed(job, exc, started_at=now)
        if sent.note is not None:
            log.info("response excerpt incomplete", extra={**self._ids(job), "reason": sent.note})
        return self.result(
            job,
            sent.outcome,
            started_at=sent.started_at,
            duration_ms=sent.duration_ms,
            response_body=sent.response_body,
            retry_after=sent.retry_after,
            headers=sent_headers,
        )

    @staticmethod
    def refusal(job: ClaimedJob, now: datetime) -> outcomes.Outcome | None:
        """Why ``job`` must fail without being sent at ``now``, or None to send it.

        The retry window is checked here as well as when scheduling, so no path (a lease that
        ran out, a backlog, a stopped worker) makes an attempt after it ended. So is the
        endpoint's maximum age for the event's group (issue 14): too old is ``expired``."""
        if ordering.is_expired(job.window_start, now, job.max_age):
            return outcomes.failure(
                "expired",
                "not sent: older than the endpoint's maximum age for this event",
                retryable=False,
            )
        if retry.window_expired(job.window_start, now):
            end = job.window_start + retry.WINDOW
            return outcomes.failure(
                outcomes.ErrorClass.WINDOW_EXPIRED,
                f"not sent: the 24 h retry window ended at {rfc3339_seconds(end)}",
                retryable=False,
            )
        # A test event is sent to a disabled endpoint too: the customer asked for it (docs/api.md).
        if job.url is None or (not job.enabled and job.event != TEST_EVENT):
            return outcomes.failure(
                outcomes.ErrorClass.INTEGRATION_DISABLED,
                "the integration has no URL or is disabled",
                retryable=False,
            )
        if not job.secrets:
            return outcomes.failure(
                outcomes.ErrorClass.NO_SIGNING_SECRET,
                "not sent: the integration has no active signing secret",
                retryable=False,
            )
        return None

    def crashed(
        self, job: ClaimedJob, exc: BaseException, *, started_at: datetime | None = None
    ) -> AttemptResult:
        """The result of an attempt Callhook itself failed to make (logged here with its
        traceback): ``internal_error``, retried on the normal schedule. Never raises."""
        log.error(
            "attempt failed inside Callhook; recorded as internal_error",
            exc_info=exc,
            extra=self._ids(job),
        )
        outcome = outcomes.failure(
            outcomes.ErrorClass.INTERNAL_ERROR,
            f"Callhook failed during the attempt: {type(exc).__name__}",
        )
        return self.result(
            job, outcome, started_at=started_at or self._clock.now(), duration_ms=0.0
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
        headers: bytes | None = None,
    ) -> AttemptResult:
        """The result to record for ``outcome``, with the next attempt scheduled. Never raises:
        ``retry_after`` is the raw header, ``headers`` the stored form of the request headers
        (``core.stored_headers``), and a value that is not understood, like any failure
        while scheduling or counting, is logged and falls back to the normal schedule."""
        next_at, wait = self._schedule(job, outcome, retry_after)
        result = AttemptResult(
            job=job,
            started_at=started_at,
            duration_ms=duration_ms,
            delivered=outcome.delivered,
            status_code=outcome.status_code,
            response_body=response_body,
            error_class=outcome.error_class,
            error_message=storable(outcome.message),
            next_attempt_at=next_at,
            request_headers=headers,
            retry_after=wait,
        )
        try:
            self.observe(result)
        except Exception:
            log.exception("counting the attempt failed", extra=self._ids(job))
        return result

    def _schedule(
        self, job: ClaimedJob, outcome: outcomes.Outcome, retry_after: str | None
    ) -> tuple[datetime | None, float | None]:
        """(the next attempt or None, the understood Retry-After in seconds or None)."""
        if outcome.delivered or not outcome.retryable:
            return None, None
        now = self._clock.now()
        wait = None
        try:
            if outcome.honours_retry_after and retry_after is not None:
                wait = retry.parse_retry_after(retry_after, now=now)
                if wait is None and retry_after.strip():
                    log.warning(
                        "Retry-After not understood; using the normal schedule",
                        extra={**self._ids(job), "retry_after": ascii(retry_after[:80])},
                    )
            next_at = retry.next_attempt_at(
                policy=job.retry_policy,
                attempt_number=job.attempt_number,
                created_at=job.window_start,
                now=now,
                rng=self._rng,
                retry_after=wait,
            )
            return next_at, wait
        except Exception:
            log.exception(
                "scheduling the next attempt failed; using the normal schedule",
                extra=self._ids(job),
            )
        return normal_schedule(job, now), wait

    @staticmethod
    def _ids(job: ClaimedJob) -> dict[str, object]:
        return {
            "delivery_id": job.delivery_id,
            "event_id": job.event_id,
            "account_id": job.account_id,
            "attempt": job.attempt_number,
        }

    def observe(self, res: AttemptResult) -> None:
        if res.delivered:
            verdict = outcomes.DeliveryStatus.DELIVERED.value
        elif res.next_attempt_at is not None:
            verdict = "retrying"
        else:
            verdict = outcomes.DeliveryStatus.FAILED.value
        self.made += 1
        self.delivered += res.delivered
        if self._metrics is not None:
            counter = self._counted.get((verdict, res.job.event))
            if counter is None:
                counter = self._metrics.deliveries.labels(verdict, res.job.event)
                self._counted[(verdict, res.job.event)] = counter
            counter.inc()
            # Children kept, like ``_counted``: ``labels()`` costs more than ``inc()``, and
            # every attempt's GIL time is taken from the claim's thread (docs/performance.md).
            # By label value: at most ``max_endpoint_series + 1`` of them per verdict.
            endpoint = self._metrics.endpoint_labels.of(res.job.endpoint_id)
            per_endpoint = self._per_endpoint.get((endpoint, verdict))
            if per_endpoint is None:
                per_endpoint = self._metrics.endpoint_attempts.labels(endpoint, verdict)
                self._per_endpoint[(endpoint, verdict)] = per_endpoint
            per_endpoint.inc()
            self._metrics.attempt_seconds.observe(res.duration_ms / 1000)
        if not log.isEnabledFor(logging.INFO):
            return
        log.info(
            "attempt",
            extra={
                "delivery_id": res.job.delivery_id,
                "event_id": res.job.event_id,
                "account_id": res.job.account_id,
                "endpoint_id": res.job.endpoint_id,
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


def storable(text: str | None, limit: int = 500) -> str | None:
    """``text`` as both databases store it: valid UTF-8 (lone surrogates, which is how
    undecodable bytes an endpoint sent can reach an error message, become ``?``), no NUL
    (PostgreSQL refuses it), at most ``limit`` characters."""
    if text is None:
        return None
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")[:limit]


class _NoJitter:
    """The middle of every range: the schedule's plain delays, with no randomness to fail."""

    def uniform(self, a: float, b: float, /) -> float:
        return (a + b) / 2


def normal_schedule(job: ClaimedJob, now: datetime) -> datetime | None:
    """The next attempt by the plain schedule (no jitter, no Retry-After), for when computing
    it the usual way failed; an unknown policy counts as ``exponential``."""
    policy = (
        job.retry_policy
        if job.retry_policy in retry.RETRY_POLICIES
        else retry.RetryPolicy.EXPONENTIAL.value
    )
    return retry.next_attempt_at(
        policy=policy,
        attempt_number=max(job.attempt_number, 1),
        created_at=job.window_start,
        now=now,
        rng=_NoJitter(),
    )
