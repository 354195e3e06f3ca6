"""Per-token token buckets and the limits on failed authentications (fake clock): they slow a
guesser down and never refuse a valid token (issue 11, class 7), also when requests race."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event

from callhook.api.ratelimit import AUTH_FAILURE_BURST, BAD_TOKEN_BURST, RateLimits, TokenBucket
from tests.factories import make_token, sample_event
from tests.integration.api.helpers import (
    BOTH,
    Api,
    assert_error,
    assert_success,
    running_api,
)

INGEST = "/internal/v1/events"


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


def _unknown_token(i: int) -> str:
    return "chk_" + f"{i:043d}"


#: Kinds of credentials that fail, each a fresh value per request (as a guesser would send).
BAD_CREDENTIALS: dict[str, Callable[[int], str]] = {
    "unknown token": lambda i: f"Bearer {_unknown_token(i)}",
    "not our prefix": lambda i: f"Bearer xyz_{i}",
    "other scheme": lambda i: f"Basic {i}",
    "two words": lambda i: f"Bearer chk_{i} extra",
    "overlong": lambda i: f"Bearer chk_{'A' * 300}{i}",
}


@pytest.mark.parametrize("kind", sorted(BAD_CREDENTIALS))
def test_failures_from_an_address_slow_it_down_but_never_refuse_a_valid_token(
    tmp_path: Path, kind: str
) -> None:
    make = BAD_CREDENTIALS[kind]
    with running_api(tmp_path) as api:
        statuses = [
            api.get("/api/v2/webhooks", headers={"Authorization": make(i)}).status_code
            for i in range(2 * AUTH_FAILURE_BURST)
        ]
        assert statuses == [401] * AUTH_FAILURE_BURST + [429] * AUTH_FAILURE_BURST
        blocked = api.get("/api/v2/webhooks", headers={"Authorization": make(999)})
        doc = assert_error(blocked, 429, "/api/v2/webhooks")
        assert doc["errors"] == ["Too many failed authentication attempts. Try again later."]
        assert int(blocked.headers["Retry-After"]) >= 1
        # The valid token from the same address is served all along …
        for _ in range(3):
            assert_success(api.get("/api/v2/webhooks"))
        # … requests presenting no credentials are not counted (they cost nothing) …
        assert_error(api.client.get("/api/v2/webhooks"), 401)
        # … and the address's allowance refills.
        api.clock.advance(int(blocked.headers["Retry-After"]))
        assert_error(api.get("/api/v2/webhooks", headers={"Authorization": make(1000)}), 401)


def test_ingest_failures_never_refuse_a_valid_token_either(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        publisher = make_token(api.platform, None, ["events.write"])
        event = sample_event(account_id=api.account.id)
        for i in range(2 * AUTH_FAILURE_BURST):
            bad = {"Authorization": f"Bearer {_unknown_token(i)}"}
            expected = 401 if i < AUTH_FAILURE_BURST else 429
            assert api.client.post(INGEST, json=event, headers=bad).status_code == expected
        accepted = api.client.post(INGEST, json=event, headers=api.auth(publisher))
        assert accepted.status_code == 202, accepted.text


class TokenLookups:
    """Counts the statements that look API tokens up, on every engine (the real database)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM api_tokens" in statement:
            self.count += 1


@pytest.fixture
def lookups() -> Iterator[TokenLookups]:
    counter = TokenLookups()
    event.listen(Engine, "before_cursor_execute", counter)
    yield counter
    event.remove(Engine, "before_cursor_execute", counter)


def test_a_token_that_failed_repeatedly_is_refused_without_a_lookup(
    tmp_path: Path, lookups: TokenLookups
) -> None:
    with running_api(tmp_path) as api:
        bad = {"Authorization": f"Bearer {_unknown_token(1)}"}
        for _ in range(BAD_TOKEN_BURST):
            assert_error(api.get("/api/v2/webhooks", headers=bad), 401)
        looked_up = lookups.count
        refused = api.get("/api/v2/webhooks", headers=bad)
        doc = assert_error(refused, 429)
        assert doc["errors"][0].startswith("This token has failed authentication repeatedly")
        assert lookups.count == looked_up
        assert_success(api.get("/api/v2/webhooks"))  # other tokens are not affected


async def _parallel(api: Api, headers: dict[str, str], n: int) -> list[int]:
    transport = httpx.ASGITransport(app=api.app, client=("198.51.100.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        responses = await asyncio.gather(
            *(client.get("/api/v2/webhooks", headers=headers) for _ in range(n))
        )
    return [r.status_code for r in responses]


def test_parallel_requests_with_one_bad_token_look_it_up_at_most_the_limit(
    tmp_path: Path, backend: str, lookups: TokenLookups
) -> None:
    with running_api(tmp_path) as api:
        before = lookups.count
        bad = {"Authorization": f"Bearer {_unknown_token(7)}"}
        statuses = asyncio.run(_parallel(api, bad, 40))
        assert statuses.count(401) == BAD_TOKEN_BURST
        assert statuses.count(429) == 40 - BAD_TOKEN_BURST
        # One read each for the tokens let through; none for the refused ones.
        assert lookups.count - before == BAD_TOKEN_BURST
        # The valid token, 40 at once from the same address: all served.
        assert set(asyncio.run(_parallel(api, api.auth(), 40))) == {200}
