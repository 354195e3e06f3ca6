"""delivery.attempt: what is refused without sending, and that nothing in the bookkeeping after
a response can keep an attempt from being recorded (issue 11, class 2). Pure: clock and
randomness are injected; the network paths are in tests/integration/delivery."""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core import outcome as outcomes
from callhook.core import retry
from callhook.core.clock import FakeClock
from callhook.delivery.attempt import Attempts, storable
from callhook.delivery.sender import Sender
from callhook.metrics import OTHER_ENDPOINTS, Metrics
from callhook.settings import Settings
from callhook.signing import generate_secret
from callhook.store.queue import ClaimedJob

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
JOB = ClaimedJob(
    delivery_id="dlv_1",
    claim_id="clm_1",
    event_id="evt_1",
    account_id="acc_1",
    endpoint_id="ep_1",
    event="incoming_call_start",
    attempt_number=1,
    window_start=T0,
    body=b"{}",
    url="https://example.com/hook",
    enabled=True,
    retry_policy="exponential",
    secrets=(generate_secret(),),
)


class Broken:
    """Randomness that fails: stands for any fault while scheduling."""

    def uniform(self, a: float, b: float, /) -> float:
        raise RuntimeError("no randomness today")

    def getrandbits(self, k: int, /) -> int:
        raise RuntimeError("no randomness today")


def attempts(clock: FakeClock | None = None, rng: object | None = None) -> Attempts:
    return Attempts(clock=clock or FakeClock(T0), rng=rng or random.Random(1), metrics=None)  # type: ignore[arg-type]


# --- refused without sending -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "elapsed", "error_class"),
    [
        ({}, retry.WINDOW + retry.LATE_GRACE + timedelta(seconds=1), "window_expired"),
        ({"enabled": False}, timedelta(0), "integration_disabled"),
        ({"url": None}, timedelta(0), "integration_disabled"),
        ({"secrets": ()}, timedelta(0), "no_signing_secret"),
        # The window comes first: a delivery past it is over, whatever else is wrong.
        ({"secrets": (), "enabled": False}, timedelta(days=2), "window_expired"),
        ({}, retry.WINDOW + retry.LATE_GRACE, None),
        ({}, timedelta(0), None),
    ],
)
def test_refusal(change: dict[str, object], elapsed: timedelta, error_class: str | None) -> None:
    refusal = Attempts.refusal(replace(JOB, **change), T0 + elapsed)  # type: ignore[arg-type]
    if error_class is None:
        assert refusal is None
        return
    assert refusal is not None
    assert (refusal.error_class, refusal.retryable, refusal.delivered) == (
        error_class,
        False,
        False,
    )


async def test_refused_jobs_are_recorded_as_failed_and_never_reach_the_sender() -> None:
    # The Sender is never entered: any attempt to send would fail its assertion.
    sender = Sender(Settings(), clock=FakeClock(T0))
    clock = FakeClock(T0 + timedelta(days=3))
    result = await attempts(clock).make(JOB, sender)
    assert (result.error_class, result.next_attempt_at, result.delivered) == (
        "window_expired",
        None,
        False,
    )
    assert result.error_message == "not sent: the 24 h retry window ended at 2026-01-16T10:30:00Z"
    result = await attempts().make(replace(JOB, secrets=()), sender)
    assert result.error_class == "no_signing_secret"
    assert result.error_message == "not sent: the integration has no active signing secret"


async def test_a_failure_before_sending_is_an_internal_error_on_the_schedule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A secret the signer refuses (weak: the platform never issues one) makes signing fail.
    sender = Sender(Settings(), clock=FakeClock(T0))
    with caplog.at_level(logging.ERROR, "callhook.delivery"):
        result = await attempts().make(replace(JOB, secrets=("whsec_",)), sender)
    assert result.error_class == "internal_error"
    assert result.error_message == "Callhook failed during the attempt: InvalidSecret"
    assert result.next_attempt_at is not None
    assert 4 <= (result.next_attempt_at - T0).total_seconds() <= 6
    assert "recorded as internal_error" in caplog.text
    assert "whsec_" not in result.error_message


# --- after the response ------------------------------------------------------------------------
def test_a_retry_after_that_is_not_understood_is_logged_and_the_schedule_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "callhook.delivery"):
        result = attempts().result(
            JOB, outcomes.from_status(503), started_at=T0, duration_ms=1.0, retry_after="①"
        )
    assert result.next_attempt_at is not None
    assert 4 <= (result.next_attempt_at - T0).total_seconds() <= 6
    assert "Retry-After not understood" in caplog.text
    [record] = caplog.records
    assert record.__dict__["retry_after"] == "'\\u2460'"  # the value, escaped
    assert record.__dict__["delivery_id"] == "dlv_1"


def test_a_fault_while_scheduling_falls_back_to_the_plain_schedule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, "callhook.delivery"):
        result = attempts(rng=Broken()).result(
            JOB, outcomes.from_status(503), started_at=T0, duration_ms=1.0, retry_after="120"
        )
    assert result.next_attempt_at == T0 + timedelta(seconds=5)  # no jitter, no hint
    assert "scheduling the next attempt failed" in caplog.text


def test_an_unknown_policy_falls_back_to_the_exponential_schedule() -> None:
    result = attempts().result(
        replace(JOB, retry_policy="linear"),
        outcomes.from_status(500),
        started_at=T0,
        duration_ms=1.0,
    )
    assert result.next_attempt_at == T0 + timedelta(seconds=5)


def test_crashed_never_raises_even_when_scheduling_fails() -> None:
    result = attempts(rng=Broken()).crashed(JOB, ValueError("boom"))
    assert result.error_class == "internal_error"
    assert result.next_attempt_at == T0 + timedelta(seconds=5)
    assert attempts().crashed(replace(JOB, retry_policy="none"), KeyError()).next_attempt_at is None


@given(
    status=st.integers(0, 999),
    value=st.one_of(
        st.none(),
        st.text(max_size=60),
        st.binary(max_size=60).map(lambda b: b.decode("utf-8", "surrogateescape")),
    ),
    attempt=st.integers(1, 30),
    elapsed=st.floats(0, 30 * 3600),
)
def test_any_answer_gives_a_recordable_result(
    status: int, value: str | None, attempt: int, elapsed: float
) -> None:
    now = T0 + timedelta(seconds=elapsed)
    job = replace(JOB, attempt_number=attempt)
    result = attempts(FakeClock(now)).result(
        job, outcomes.from_status(status), started_at=now, duration_ms=1.0, retry_after=value
    )
    assert result.delivered is (200 <= status < 300)
    if result.next_attempt_at is not None:
        assert now < result.next_attempt_at <= T0 + retry.WINDOW


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        (None, None),
        ("HTTP 503", "HTTP 503"),
        ("bad \udcff\udcfe bytes", "bad ?? bytes"),
        ("nul\x00here", "nulhere"),
        ("é" * 600, "é" * 500),
    ],
)
def test_storable(text: str | None, stored: str | None) -> None:
    assert storable(text) == stored


# --- counted ------------------------------------------------------------------------------------
def test_attempts_are_counted_per_endpoint_within_the_series_bound() -> None:
    # The kept metric children count what ``labels()`` would: the first endpoints under their
    # own value, later ones as "other", every verdict apart, however often each comes back.
    metrics = Metrics(max_endpoint_series=2)
    made = Attempts(clock=FakeClock(T0), rng=random.Random(1), metrics=metrics)
    ok = outcomes.from_status(200)
    failed = outcomes.failure("connect_error", "refused", retryable=False)
    for round_ in range(3):
        for n in range(4):
            job = replace(JOB, endpoint_id=f"ep_{n}")
            made.result(job, ok, started_at=T0, duration_ms=1.0)
            if round_ == 0:
                made.result(job, failed, started_at=T0, duration_ms=1.0)
    samples = {
        (s.labels["endpoint"], s.labels["result"]): s.value
        for family in metrics.registry.collect()
        if family.name == "callhook_endpoint_attempts"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert samples == {
        ("ep_0", "delivered"): 3.0,
        ("ep_1", "delivered"): 3.0,
        (OTHER_ENDPOINTS, "delivered"): 6.0,
        ("ep_0", "failed"): 1.0,
        ("ep_1", "failed"): 1.0,
        (OTHER_ENDPOINTS, "failed"): 2.0,
    }
