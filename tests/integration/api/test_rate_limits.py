"""Per-token token buckets and the per-client limit on failed authentications (fake clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callhook.api.ratelimit import AUTH_FAILURE_BURST, RateLimits, TokenBucket
from tests.factories import make_token
from tests.integration.api.helpers import BOTH, assert_error, assert_success, running_api


def test_token_bucket_refills_at_rate_up_to_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, now=lambda: now[0])
    assert [bucket.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.take("k") == 0.0
    now[0] += 100
    assert [bucket.take("k") for _ in range(4)][-1] > 0  # never more than the burst
    now[0] -= 50  # a clock stepping back adds nothing
    assert bucket.take("k") > 0


def test_token_bucket_keeps_a_bounded_number_of_keys() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=lambda: 0.0, max_keys=2)
    for key in ("a", "b", "c"):
        bucket.take(key)
    assert bucket.take("c") > 0
    assert bucket.take("a") == 0.0  # evicted, starts full again


def test_defaults_come_from_settings(tmp_path: Path) -> None:
    with running_api(tmp_path, rate_limit_per_token=7.0, rate_limit_burst=9) as api:
        limits = api.app.state.rate_limits
    assert isinstance(limits, RateLimits)
    assert (limits.tokens.rate, limits.tokens.burst) == (7.0, 9)


def test_per_token_limit_is_429_with_retry_after_and_refills(tmp_path: Path) -> None:
    with running_api(tmp_path, rate_limit_per_token=0.5, rate_limit_burst=3) as api:
        for _ in range(3):
            assert_success(api.get("/api/v2/webhooks"))
        limited = api.post("/api/v2/webhooks/sms")
        doc = assert_error(limited, 429, "/api/v2/webhooks/sms")
        assert limited.headers["Retry-After"] == "2"
        assert "sms" not in api.subscribed()
        other = make_token(api.platform, api.account.id, BOTH)
        assert_success(api.get("/api/v2/webhooks", headers=api.auth(other)))
        api.clock.advance(2)
        assert_success(api.post("/api/v2/webhooks/sms"))
    assert doc["errors"][0].startswith("Rate limit exceeded")


def test_failed_authentications_are_limited_per_client(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        bad = {"Authorization": "Bearer chk_" + "Z" * 43}
        for _ in range(AUTH_FAILURE_BURST):
            assert_error(api.get("/api/v2/webhooks", headers=bad), 401)
        blocked = api.get("/api/v2/webhooks", headers=bad)
        assert_error(blocked, 429)
        assert int(blocked.headers["Retry-After"]) >= 1
        # Even the right token is refused from that client until the allowance refills …
        assert_error(api.get("/api/v2/webhooks"), 429)
        # … while requests presenting no credentials are not throttled (they cost nothing).
        assert_error(api.client.get("/api/v2/webhooks"), 401)
        api.clock.advance(int(blocked.headers["Retry-After"]))
        assert_success(api.get("/api/v2/webhooks"))
